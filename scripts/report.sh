#!/usr/bin/env bash
# Builds the vizkit CLI and writes a self-contained HTML report for each sample
# photo (or the images given) into out/report/<name>/index.html.
#   scripts/report.sh [--methods LIST|all] [--model vgg11] [IMAGE...]
# Weights: $VIZKIT_WEIGHTS if set (a .safetensors/.pth file or hub:ORG/REPO),
# else "auto" — torchvision's pretrained weights from the Hugging Face cache or
# hub, falling back to random weights with a visible warning when offline.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
methods=features,kernels,gradcam,gradcampp,layercam,eigencam,saliency,guided,guidedgradcam,smoothgrad
model=vgg11
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --methods) methods="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) images+=("$1"); shift ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(testdata/images/*.jpg)
mkdir -p out/bin out/report
go build -o out/bin/vizkit ./vizkit/cmd/vizkit
if [ "$methods" = all ]; then
  methods=$(out/bin/vizkit methods | awk '{print $1}' | paste -sd, -)
fi
for img in "${images[@]}"; do
  name=$(basename "${img%.*}")
  out/bin/vizkit explain --model "$model" --weights "${VIZKIT_WEIGHTS:-auto}" --image "$img" \
    --methods "$methods" --out "out/report/$name" --npy
done
echo "reports: $(ls -d out/report/*/index.html | tr '\n' ' ')"
