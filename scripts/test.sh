#!/usr/bin/env bash
# Sets up and runs every cnnviz test on a Debian machine with Go installed:
#   vet, the noxla build, all Go tests (PyTorch golden fixtures, finite
#   differences, CLI), short fuzzing of the file readers, and — when notebooks
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

if [ "$notebooks" = 1 ] && ls notebooks/*.ipynb >/dev/null 2>&1; then
  echo "== notebooks (headless)"
  scripts/run_notebooks.sh --headless
fi

echo "== go test"
go test -count=1 -timeout 25m ./...
