#!/usr/bin/env bash
# Sets up and runs every cnnviz test on a Debian machine with Go installed:
#   vet, the noxla build, all Go tests (PyTorch golden fixtures, finite
#   differences, CLI, hostile inputs), short fuzzing of the file readers and
#   the input path, the race detector on the concurrency tests, and — when notebooks
#   exist — every notebook executed headless, exported and screenshotted.
# Options: --no-notebooks skips the notebooks; FUZZTIME=30s fuzzes longer.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

notebooks=1
for a in "$@"; do
  case "$a" in
    --no-notebooks) notebooks=0 ;;
    *) echo "usage: scripts/test.sh [--no-notebooks]" >&2; exit 2 ;;
  esac
done

# ONNX's conformance suite (models/onnx TestConformance reads it; skipped when absent).
if [ ! -d /usr/share/libonnx-testdata/data/node ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing libonnx-testdata"
  apt-get install -y --no-install-recommends libonnx-testdata >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends libonnx-testdata >/dev/null; } ||
    echo "libonnx-testdata could not be installed; the ONNX conformance test will be skipped"
fi

echo "== toolchain"
go version
go env GOEXPERIMENT GOMLX_BACKEND 2>/dev/null || true

echo "== vet"
go vet ./...
test -z "$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

echo "== build without XLA (-tags noxla)"
go build -tags noxla ./...

echo "== fuzz (${FUZZTIME:-10s} each)"
fuzz() { # package target
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-10s}" -fuzzminimizetime 2s "$1"
}
fuzz ./models/weights FuzzLoadSafetensors
fuzz ./models/weights FuzzLoadPTH
fuzz ./vizkit/imageio FuzzDecode
fuzz ./models/onnx FuzzLoadONNX
fuzz ./vizkit/imageio FuzzInputPath
fuzz ./vizkit/npy FuzzReadNPY

echo "== race detector (concurrency tests)"
# -race alone dies in a dependency: GoMLX's AVX-512 matmul packing
# (gomlx/compute internal/gobackend/dot/matmul/avx512) does pointer arithmetic
# that checkptr, which -race turns on, rejects ("fatal error: checkptr: pointer
# arithmetic result points to invalid allocation"). Turning checkptr off keeps
# the race detector itself (see docs/robustness.md).
go test -race -gcflags=all=-d=checkptr=0 -count=1 -run 'TestCloseRacesWithCalls|TestPublicEntryPointsCheckArrays' ./vizkit

if [ "$notebooks" = 1 ] && ls notebooks/*.ipynb >/dev/null 2>&1; then
  echo "== notebooks (headless, CNNVIZ_FAST=${CNNVIZ_FAST:-1}: fewer iterations, every cell)"
  # One retry: GoMLX's pure-Go SIMD kernels have crashed a cell once
  # (SIGSEGV in simdV2V1AddFloat32, not reproducible); a real failure fails
  # twice and stops the run, a flaky one is reported here.
  if ! CNNVIZ_FAST="${CNNVIZ_FAST:-1}" scripts/run_notebooks.sh --headless; then
    echo "== notebooks failed once: running them again to tell a flaky crash from a failure"
    CNNVIZ_FAST="${CNNVIZ_FAST:-1}" scripts/run_notebooks.sh --headless --no-setup
    echo "WARNING: the notebooks passed only on the second run (see the first run's report above)"
  fi
fi

echo "== go test"
go test -count=1 -timeout 25m ./...
