# Source this file: the Go environment every cnnviz script and test uses.
#   . scripts/env.sh
# GoMLX needs Go 1.27: with GOTOOLCHAIN=auto the installed go command fetches
# go1.27.4 (pinned in go.mod) through the module proxy by itself.
export GOTOOLCHAIN="${GOTOOLCHAIN_OVERRIDE:-auto}"
# The pure-Go backend uses its AVX2/AVX-512 kernels only with this experiment.
export GOEXPERIMENT="${GOEXPERIMENT:-simd}"
# Default backend: the pure-Go one (needs nothing installed). Set
# GOMLX_BACKEND=xla:cpu or xla:cuda to use XLA where its PJRT plugin is installed.
export GOMLX_BACKEND="${GOMLX_BACKEND:-go}"
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
