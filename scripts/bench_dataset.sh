#!/usr/bin/env bash
# Data-set throughput: Grad-CAM over a folder of generated images with
# `vizkit explain --image DIR` (cnnviz, Go backend) beside pytorch-grad-cam's
# batch loop in PyTorch (scripts/bench_dataset_torch.py), and the peak RSS at
# two folder sizes (it must not grow with the number of images).
#
# Usage: scripts/bench_dataset.sh [--archs "vgg11 resnet50"] [--sizes "64 256"]
#                                 [--batch-size 8] [--no-torch] [--out DIR]
#
# Images: JPEGs of 320x240 pixels (smooth random patterns, seeded), generated
# once into DIR/images_N. Both sides decode, Resize(256)+CenterCrop(224),
# run Grad-CAM (VGG11: features.20; ResNet-50: layer4) on the top-1 class in
# batches of --batch-size and write the overlay of every image as a PNG (the Go
# side writes its full per-image folder, report and gallery too). Random
# weights on both sides. An architecture that models/zoo does not know is
# skipped with a note.
#
# Output: one line per (arch, images, side):
#   side arch images loop_s img_per_s peak_MB
# loop_s excludes building the model (and, for Go, compiling the graph before
# the first batch is not excluded: it is part of the loop). The machine's load
# average is printed before and after: on a shared machine, state it with the
# numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

archs="vgg11 resnet50"
sizes="64 256"
batch=8
torch=1
out="out/bench_dataset/$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
  case "$1" in
    --archs) archs="$2"; shift ;;
    --sizes) sizes="$2"; shift ;;
    --batch-size) batch="$2"; shift ;;
    --no-torch) torch=0 ;;
    --out) out="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
bin="$out/vizkit"
go build -o "$bin" ./vizkit/cmd/vizkit

gen() { # gen N DIR
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
n, d = int(sys.argv[1]), sys.argv[2]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:240, 0:320] / 40.0
for i in range(n):
    f = rng.uniform(0.5, 2, size=(3, 2))
    img = np.stack([np.sin(xx * f[c, 0] + i) * np.cos(yy * f[c, 1]) for c in range(3)], -1)
    img = (127 + 120 * img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(d, f"img{i:04d}.jpg"), quality=90)
EOF
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "side arch images loop_s img_per_s peak_MB"
for n in $sizes; do
  [ -d "$out/images_$n" ] || gen "$n" "$out/images_$n"
done
for arch in $archs; do
  if ! "$bin" layers --model "$arch" --random-init 0 >/dev/null 2>"$out/$arch.check"; then
    echo "# $arch: skipped ($(head -c 200 "$out/$arch.check" | tr '\n' ' '))"
    continue
  fi
  for n in $sizes; do
    rm -rf "$out/go_${arch}_$n"
    /usr/bin/time -f "%M" -o "$out/go_${arch}_$n.rss" "$bin" explain --model "$arch" --random-init 0 \
      --image "$out/images_$n" --methods gradcam --batch-size "$batch" --out "$out/go_${arch}_$n" \
      >/dev/null 2>"$out/go_${arch}_$n.log"
    # The progress bar's last line has the loop's rate; the loop time follows from it.
    rate=$(grep -o '[0-9.]* img/s' "$out/go_${arch}_$n.log" | tail -1 | cut -d' ' -f1)
    loop=$(awk -v n="$n" -v r="$rate" 'BEGIN{printf "%.2f", n/r}')
    rss=$(awk '{printf "%.0f", $1/1024}' "$out/go_${arch}_$n.rss")
    echo "go $arch $n $loop $rate $rss"
    if [ "$torch" = 1 ]; then
      rm -rf "$out/torch_${arch}_$n"
      /usr/bin/python3 scripts/bench_dataset_torch.py --arch "$arch" --images "$out/images_$n" \
        --out "$out/torch_${arch}_$n" --batch-size "$batch" | tee "$out/torch_${arch}_$n.log" |
        sed -E 's/^torch ([^ ]+) images=([0-9]+) seconds=([0-9.]+) img_per_s=([0-9.]+) peak_MB=([0-9]+).*/torch \1 \2 \3 \4 \5/'
    fi
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
