#!/usr/bin/env bash
# Side-by-side benchmark: cnnviz (Go backend) and PyTorch doing the same work
# on the same machine, in one invocation. Full-size networks (random init) at
# 224x224, batch 1 and 8: VGG11, then each architecture of --archs that
# models/zoo registers (default "vgg11 resnet50"; an unregistered one is
# listed as skipped). Rows:
#   sgemm        the machine's reference, once: a 2048^3 float32 product on
#                the Go backend and in PyTorch; peak = the faster of the two
#   forward      logits
#   gradcam      Grad-CAM map at input resolution, features.20, top-1 class;
#                compared with pytorch-grad-cam's GradCAM call (reimplemented:
#                full backward with weight gradients, as the library) and with
#                PyTorch's bare forward + gradient to features.20 (gradcam_bare)
#   saliency     vanilla gradient w.r.t. the input
#   guided       guided backpropagation w.r.t. the input
#   scorecam     Score-CAM, 512 channels of features.20, batches of 16
#                (batch 1 only unless --scorecam-b8: 4096 masked inputs a side)
#   startup      the whole CLI process, per architecture: `vizkit explain
#                --weights ARCH.safetensors --image testdata/images/chelsea.jpg
#                --methods gradcam --out DIR` (load the weights, Grad-CAM, write
#                PNGs + index.html) vs scripts/bench_startup_torch.py (torch.load
#                of the same weights as .pth into torchvision's model, the same
#                Grad-CAM as the gradcam row, write .npy + PNGs); weights
#                generated once by that script (torchvision random init, seed 0)
#                under out/bench/weights, read once beforehand so both sides
#                load from the page cache; wall time and peak RSS from
#                /usr/bin/time, best of --rounds (the default 1: one run)
# Each (row, batch) runs in its own process on each side, Go then PyTorch, so
# that both see the same machine load; peak RSS is per process (getrusage).
# PyTorch uses torch.set_num_threads(nproc); Go uses GOMAXPROCS = nproc.
# On a loaded machine PyTorch's OpenMP threads can lose much more than the Go
# scheduler does, so PyTorch is also timed with 1 thread (torch1_s) and
# go/best compares with the faster of the two (the conservative ratio).
#
# Usage: scripts/bench.sh [--quick] [--reps N] [--rounds N] [--rows "forward gradcam ... startup"]
#                         [--batches "1 8"] [--archs "vgg11 resnet50"] [--no-scorecam]
#                         [--scorecam-b8] [--no-torch1] [--out DIR]
#   --quick      rows forward gradcam saliency startup, batch 1, 3 repetitions
#   --reps N     timed repetitions per process (default 5; Score-CAM: 1)
#   --rounds N   run each row's processes N times, alternating sides, and keep
#                each side's best (lowest) median: load only ever slows a
#                process down, so on a shared machine the best round is the
#                closest to the unloaded figure, for both sides alike (default 1)
#   --no-torch1  skip the 1-thread PyTorch runs (always skipped for Score-CAM)
#   --archs A    architectures (torchvision names) after the sgemm row
# Output: machine description, the sgemm peak, then one table line per row (stable format):
#   arch row batch go_s torch_s torch1_s go/torch go/best go_first_s torch_first_s go_peak_MB torch_peak_MB go_%pk torch_%pk
# medians in seconds (torch1_s "-" when not run); ratios < 1 mean Go is
# faster; first_s and peak_MB come from each side's best round. go_%pk and
# torch_%pk are each side's effective rate as a share of the machine's peak
# (the faster sgemm): rate = k · F · batch / time with F the architecture's
# forward FLOP per image (2 × multiply-adds: vgg11 15.2 G, resnet50 8.2 G)
# and k the forward passes the method needs at the least (forward, gradcam 1;
# saliency, guided 2; scorecam 513), torch at its best thread count. Raw
# outputs go to DIR (default out/bench/<date>): go.txt is benchstat-compatible.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

reps=5
rounds=1
rows="forward gradcam saliency guided scorecam startup"
batches="1 8"
archs="vgg11 resnet50"
scorecam=1
scorecam_b8=0
torch1=1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rows="forward gradcam saliency startup"; batches="1"; reps=3; shift ;;
    --reps) reps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --archs) archs="$2"; shift 2 ;;
    --no-scorecam) scorecam=0; shift ;;
    --scorecam-b8) scorecam_b8=1; shift ;;
    --no-torch1) torch1=0; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,55p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
out="${out:-out/bench/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
threads=$(nproc)

echo "== machine"
echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(grep -o -m1 -w 'avx512f' /proc/cpuinfo || echo no-avx512))"
echo "nproc       $threads"
echo "memory      $(awk '/MemTotal/ {printf "%.1f GB", $2/1e6}' /proc/meminfo)"
echo "load avg    $(cut -d' ' -f1-3 /proc/loadavg) (start)"
echo "go          $(go version | cut -d' ' -f3-) GOEXPERIMENT=$GOEXPERIMENT GOMLX_BACKEND=$GOMLX_BACKEND"
echo "torch       $($PY -c 'import torch; print(torch.__version__)') (set_num_threads($threads), and 1)"
echo "settings    reps=$reps rounds=$rounds"

echo "== building the Go benchmark binary"
go test -c -o "$out/vizkit.test" ./vizkit

# go_row ROW BATCH REPS: one Go process ($arch); prints "median first peak",
# or nothing when the benchmark skipped (architecture not registered).
go_row() {
  local f="$out/go_${arch}_$1_b$2.txt"
  CNNVIZ_BENCH_ARCH="$arch" "$out/vizkit.test" -test.run '^$' -test.bench "^BenchmarkPerf\$/^$1\$/^b$2\$" -test.benchtime "${3}x" \
    -test.count 1 >"$f" 2>&1 || { cat "$f" >&2; return 1; }
  grep '^BenchmarkPerf/.*ns/op' "$f" | sed "s/^BenchmarkPerf/BenchmarkPerf_$arch/" >>"$out/go.txt" || true
  grep '^BenchmarkPerf/.*ns/op' "$f" | tail -1 |
    awk '{for (i = 1; i < NF; i++) m[$(i+1)] = $i; printf "%s %s %s %s\n", m["median-s"], m["first-s"], m["peak-MB"], m["gflops"]}'
}

# torch_row ROW BATCH REPS THREADS: one PyTorch process ($arch); prints "median first peak gflops".
torch_row() {
  local f="$out/torch_${arch}_$1_b$2_t$4.txt"
  $PY scripts/bench_torch.py --arch "$arch" --row "$1" --batch "$2" --reps "$3" --threads "$4" >"$f" 2>&1 || { cat "$f" >&2; return 1; }
  cat "$f" >>"$out/torch.txt"
  sed -n 's/.*median_s=\([^ ]*\).*first_s=\([^ ]*\).*peak_rss_mb=\([^ ]*\)\( gflops=\([^ ]*\)\)\{0,1\}$/\1 \2 \3 \5/p' "$f"
}

# best A B: of two "median first peak" triples, the one with the lower median (A may be empty).
best() {
  if [ -z "$1" ]; then echo "$2"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, A, " "); split(b, B, " "); print (B[1] + 0 < A[1] + 0) ? b : a }'
}

# Forward GFLOP per image (2 x multiply-adds) and forward passes per method.
fwd_gflop() { case "$1" in vgg11) echo 15.2 ;; vgg13) echo 22.6 ;; vgg16) echo 30.9 ;; vgg19) echo 39.3 ;;
  resnet18) echo 3.6 ;; resnet34) echo 7.3 ;; resnet50) echo 8.2 ;; resnet101) echo 15.7 ;; alexnet) echo 1.4 ;; *) echo 0 ;; esac; }
passes() { case "$1" in saliency|guided) echo 2 ;; scorecam) echo 513 ;; *) echo 1 ;; esac; }

echo "== peak: 2048^3 float32 product (sgemm)"
arch=none
gs=$(go_row sgemm 1 "$reps")
ts=$(torch_row sgemm 1 "$reps" "$threads")
ts1=""
[ "$threads" -gt 1 ] && ts1=$(torch_row sgemm 1 "$reps" 1)
peak=$(awk -v g="$gs" -v t="$ts" -v t1="$ts1" 'BEGIN { split(g, G, " "); split(t, T, " "); split(t1, T1, " ");
  p = G[4] + 0; if (T[4] + 0 > p) p = T[4] + 0; if (T1[4] + 0 > p) p = T1[4] + 0; print p }')
printf 'sgemm       go %.1f GFLOP/s (%.3f s)   torch %.1f GFLOP/s (%s threads), %s GFLOP/s (1 thread)   peak %.1f GFLOP/s\n' \
  "$(cut -d' ' -f4 <<<"$gs")" "$(cut -d' ' -f1 <<<"$gs")" "$(cut -d' ' -f4 <<<"$ts")" "$threads" "$(cut -d' ' -f4 <<<"$ts1")" "$peak" | tee "$out/peak.txt"

table="$out/table.txt"
printf '%-9s %-20s %5s %8s %8s %8s %8s %7s %10s %13s %10s %13s %6s %9s\n' arch row batch go_s torch_s torch1_s go/torch go/best go_first_s torch_first_s go_peak_MB torch_peak_MB go_%pk torch_%pk | tee "$table"
line() { # name batch go(median first peak) torch(median first peak) torch1-median-or-empty
  local gf; gf=$(awk -v f="$(fwd_gflop "$arch")" -v k="$(passes "$row")" -v b="$2" 'BEGIN { print f * k * b }')
  awk -v a="$arch" -v n="$1" -v b="$2" -v g="$3" -v t="$4" -v t1="$5" -v gf="$gf" -v pk="$peak" 'BEGIN {
    split(g, G, " "); split(t, T, " "); best = T[1]; one = "-";
    if (t1 != "") { one = sprintf("%.3f", t1); if (t1 + 0 < best) best = t1 + 0 }
    gp = "-"; tp = "-";
    if (gf > 0 && pk > 0) { gp = sprintf("%.0f%%", 100 * gf / G[1] / pk); tp = sprintf("%.0f%%", 100 * gf / best / pk) }
    printf "%-9s %-20s %5s %8.3f %8.3f %8s %8.2f %7.2f %10.2f %13.2f %10.0f %13.0f %6s %9s\n", a, n, b, G[1], T[1], one, G[1] / T[1], G[1] / best, G[2], T[2], G[3], T[3], gp, tp }' | tee -a "$table"
}

for arch in $archs; do
CNNVIZ_BENCH_ARCH="$arch" "$out/vizkit.test" -test.run '^TestBenchArch$' -test.v >"$out/arch_$arch.txt" 2>&1 ||
  { cat "$out/arch_$arch.txt" >&2; exit 1; }
if grep -q -- '--- SKIP' "$out/arch_$arch.txt"; then
  printf '%-9s skipped: %s\n' "$arch" "$(grep -o 'architecture .* is not registered[^)]*)' "$out/arch_$arch.txt" | head -1)" | tee -a "$table"
  continue
fi
for row in $rows; do
  [ "$row" = startup ] && continue # Whole processes: below.
  for b in $batches; do
    r=$reps
    if [ "$row" = scorecam ]; then
      [ "$scorecam" = 1 ] || continue
      [ "$b" = 1 ] || [ "$scorecam_b8" = 1 ] || continue
      r=1
    fi
    trows="$row"
    [ "$row" = gradcam ] && trows="gradcam gradcam_bare"
    g=""
    declare -A T=() T1=()
    for _ in $(seq "$rounds"); do
      g=$(best "$g" "$(go_row "$row" "$b" "$r")")
      for tr in $trows; do
        T[$tr]=$(best "${T[$tr]:-}" "$(torch_row "$tr" "$b" "$r" "$threads")")
        if [ "$torch1" = 1 ] && [ "$threads" -gt 1 ] && [ "$row" != scorecam ]; then
          T1[$tr]=$(best "${T1[$tr]:-}" "$(torch_row "$tr" "$b" "$r" 1)")
        fi
      done
    done
    for tr in $trows; do
      name="$row"
      [ "$tr" = gradcam ] && name="gradcam(vs library)"
      [ "$tr" = gradcam_bare ] && name="gradcam(vs bare)"
      line "$name" "$b" "$g" "${T[$tr]}" "$(cut -d' ' -f1 <<<"${T1[$tr]:-}")"
    done
    unset T T1
  done
done
done
# startup: whole processes, Go CLI then PyTorch script, per architecture.
if [[ " $rows " == *" startup "* ]]; then
  echo "== startup: whole process (load weights, Grad-CAM, write outputs)"
  go build -o "$out/vizkit" ./vizkit/cmd/vizkit
  wdir="out/bench/weights"
  img="testdata/images/chelsea.jpg"
  # timed CMD...: prints "wall_s peak_MB" of one process (its output to $out/startup.log).
  timed() {
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >>"$out/startup.log" 2>&1 || { tail -5 "$out/startup.log" >&2; return 1; }
    awk '{printf "%s %.0f\n", $1, $2 * 1024 / 1e6}' "$out/time.txt"
  }
  for arch in $archs; do
    if [ ! -s "$wdir/$arch.pth" ] || [ ! -s "$wdir/$arch.safetensors" ]; then
      $PY scripts/bench_startup_torch.py --arch "$arch" --make-weights "$wdir"
    fi
    cat "$wdir/$arch.safetensors" "$wdir/$arch.pth" >/dev/null # Into the page cache for both sides.
    g="" t=""
    for _ in $(seq "$rounds"); do
      g=$(best "$g" "$(timed "$out/vizkit" explain --weights "$wdir/$arch.safetensors" --image "$img" --methods gradcam --out "$out/startup_go_$arch")")
      t=$(best "$t" "$(timed $PY scripts/bench_startup_torch.py --arch "$arch" --weights "$wdir/$arch.pth" --image "$img" --out "$out/startup_torch_$arch" --threads "$threads")")
    done
    awk -v a="$arch" -v g="$g" -v t="$t" 'BEGIN { split(g, G, " "); split(t, T, " ");
      printf "%-9s %-20s %5s %8.3f %8.3f %8s %8.2f %7.2f %10s %13s %10.0f %13.0f %6s %9s\n", a, "startup(process)", 1, G[1], T[1], "-", G[1] / T[1], G[1] / T[1], "-", "-", G[2], T[2], "-", "-" }' | tee -a "$table"
  done
fi
echo "load avg    $(cut -d' ' -f1-3 /proc/loadavg) (end)"
echo "raw outputs in $out (go.txt is benchstat input)"
