#!/usr/bin/env bash
# Installs what the cnnviz notebooks need: Jupyter (Debian packages: nbconvert, the
# ipykernel machinery and the classic notebook server), headless Chromium (for
# screenshots), PIL, and the Go Jupyter kernel GoNB with goimports and gopls.
# Then registers the GoNB kernel and writes the Go environment into its kernel.json,
# so the kernel works however Jupyter is started.
#
# Usage: scripts/setup_notebooks.sh [--no-chromium] [--no-apt | --apt-only] [--no-warm]
#   --no-chromium  skip Chromium (only needed by run_notebooks.sh --headless screenshots)
#   --no-apt       never call apt-get; only report missing packages
#   --apt-only     only install the apt packages (e.g. as root, before the rest runs as a user)
#   --no-warm      skip `go mod download` of the repo's modules (first notebook run is then slower)
# Environment: GOMLX_BACKEND (default go) is written into the kernel's environment;
# rerun with e.g. GOMLX_BACKEND=xla:cpu to switch. APT_LOCK_TIMEOUT (seconds, default 1800).
#
# Idempotent: installs only what is missing or at another version. Runs as root (CI,
# Docker) or as a user (apt through sudo when available; otherwise it prints the
# apt-get line to run and fails at the end).
set -euo pipefail

GONB_VERSION=v0.11.5
GOIMPORTS_VERSION=v0.52.0   # golang.org/x/tools
GOPLS_VERSION=v0.23.0       # golang.org/x/tools/gopls (v0.24 needs Go 1.27 to build)

WITH_CHROMIUM=1
WITH_APT=1
WITH_WARM=1
APT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --no-chromium) WITH_CHROMIUM=0 ;;
    --no-apt) WITH_APT=0 ;;
    --no-warm) WITH_WARM=0 ;;
    --apt-only) APT_ONLY=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup_notebooks.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

FAILED=()

# ---------------------------------------------------------------- apt packages
# jupyter-notebook: the classic notebook server (`jupyter notebook`), Debian's only
# browser-facing Jupyter server with a UI (JupyterLab is not packaged in Debian 12).
APT_PKGS=(jupyter-core jupyter-client jupyter-nbconvert python3-ipykernel jupyter-notebook python3-pil)
[ "$WITH_CHROMIUM" = 1 ] && APT_PKGS+=(chromium)

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

MISSING=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PKGS[@]}"; do
    if [ "$p" = chromium ] && { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1; then
      continue   # some Chromium/Chrome is already there
    fi
    pkg_installed "$p" || MISSING+=("$p")
  done
else
  log "no dpkg: not a Debian-like system; install these (or equivalents) yourself: ${APT_PKGS[*]}"
fi

if [ "${#MISSING[@]}" -eq 0 ]; then
  log "apt packages: all present (${APT_PKGS[*]})"
else
  SUDO=()
  CAN_APT=0
  if [ "$WITH_APT" = 1 ]; then
    if [ "$(id -u)" = 0 ]; then
      CAN_APT=1
    elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
      SUDO=(sudo); CAN_APT=1
    fi
  fi
  if [ "$CAN_APT" = 1 ]; then
    log "apt packages: installing ${MISSING[*]}"
    APT_OPTS=(-o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-1800}" -y --no-install-recommends)
    # Refresh the package lists when they are empty (fresh image) or lack a package.
    need_update=0
    for p in "${MISSING[@]}"; do
      apt-cache show "$p" >/dev/null 2>&1 || need_update=1
    done
    if [ "$need_update" = 1 ]; then
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]:0:2}" update
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install "${MISSING[@]}"
  else
    echo "[setup] missing packages: ${MISSING[*]}" >&2
    echo "[setup] install them with:  sudo apt-get install --no-install-recommends ${MISSING[*]}" >&2
    FAILED+=("apt packages: ${MISSING[*]}")
  fi
fi

if [ "$APT_ONLY" = 1 ]; then
  [ "${#FAILED[@]}" -eq 0 ] || { echo "[setup] FAILED: ${FAILED[*]}" >&2; exit 1; }
  log "apt packages done (--apt-only)"
  exit 0
fi

# ---------------------------------------------------------------- Go tools
command -v go >/dev/null 2>&1 || die "go is not on PATH: install Go (https://go.dev/dl/) first"
# shellcheck source=env.sh
. "$REPO/scripts/env.sh"
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

# `go install X@version` of gonb fails through some proxies (its go.mod replace
# directives / version listing), so gonb is built from a scratch module.
installed_version() {  # $1 binary, $2 module path -> prints the module version it was built from
  local bin
  bin="$(command -v "$1" 2>/dev/null)" || return 0
  go version -m "$bin" 2>/dev/null | awk -v m="$2" '($1=="mod" || $1=="dep") && $2==m {print $3; exit}'
}

SCRATCH="$(mktemp -d)"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT
# Run the go commands outside any module, so the repo's go.mod does not pick the toolchain.
cd "$SCRATCH"

if [ "$(installed_version gonb github.com/janpfeifer/gonb)" = "$GONB_VERSION" ]; then
  log "gonb $GONB_VERSION: present ($(command -v gonb))"
else
  log "gonb $GONB_VERSION: building from a scratch module"
  (
    mkdir -p "$SCRATCH/gonb" && cd "$SCRATCH/gonb"
    go mod init local/gonb-tools >/dev/null 2>&1
    go get "github.com/janpfeifer/gonb@$GONB_VERSION"
    go install github.com/janpfeifer/gonb
  ) || die "building gonb $GONB_VERSION failed"
fi

if [ "$(installed_version goimports golang.org/x/tools)" = "$GOIMPORTS_VERSION" ]; then
  log "goimports $GOIMPORTS_VERSION: present"
else
  log "goimports $GOIMPORTS_VERSION: installing"
  go install "golang.org/x/tools/cmd/goimports@$GOIMPORTS_VERSION" || die "installing goimports failed"
fi

if [ "$(installed_version gopls golang.org/x/tools/gopls)" = "$GOPLS_VERSION" ]; then
  log "gopls $GOPLS_VERSION: present"
else
  log "gopls $GOPLS_VERSION: installing"
  go install "golang.org/x/tools/gopls@$GOPLS_VERSION" || die "installing gopls failed"
fi

# ---------------------------------------------------------------- kernel
JUPYTER=""
for j in /usr/bin/jupyter "$(command -v jupyter 2>/dev/null || true)"; do
  [ -n "$j" ] && [ -x "$j" ] && { JUPYTER="$j"; break; }
done
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON="$(command -v python3 || true)"

if [ -z "$JUPYTER" ]; then
  FAILED+=("jupyter not found: GoNB kernel not registered")
else
  # gonb --install copies nothing when the binary lives outside /tmp; it records its path.
  # --raw_error is NOT used: errors show as HTML in the notebook, and check_notebooks.py
  # recognises both forms.
  log "registering the GoNB kernel (gonb --install)"
  gonb --install --logtostderr 2>&1 | sed 's/^/[gonb] /' || die "gonb --install failed"
  KDIR="$("$JUPYTER" kernelspec list --json 2>/dev/null | "$PYTHON" -c \
    'import json,sys; print(json.load(sys.stdin)["kernelspecs"].get("gonb",{}).get("resource_dir",""))' || true)"
  [ -n "$KDIR" ] || KDIR="${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/kernels/gonb"
  [ -f "$KDIR/kernel.json" ] || die "kernel.json not found in $KDIR after gonb --install"

  GO_DIR="$(dirname "$(command -v go)")"
  # The kernel's PATH: the go command, GOPATH/bin (gonb, goimports, gopls), then the
  # PATH this setup ran with, then the standard dirs; no duplicates.
  KPATH="$("$PYTHON" - "$GO_DIR" "$GOBIN_DIR" "$PATH" <<'EOF'
import sys
seen, out = set(), []
for part in [sys.argv[1], sys.argv[2]] + sys.argv[3].split(":") + \
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".split(":"):
    if part and part not in seen:
        seen.add(part); out.append(part)
print(":".join(out))
EOF
)"
  "$PYTHON" - "$KDIR/kernel.json" "$KPATH" <<'EOF'
import json, os, sys
path, kpath = sys.argv[1], sys.argv[2]
with open(path) as f:
    spec = json.load(f)
env = spec.get("env") or {}
env.update({
    "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto"),
    "GOEXPERIMENT": os.environ.get("GOEXPERIMENT", "simd"),
    "GOMLX_BACKEND": os.environ.get("GOMLX_BACKEND", "go"),
    "PATH": kpath,
})
spec["env"] = env
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
print("[setup] kernel env written to %s: GOTOOLCHAIN=%s GOEXPERIMENT=%s GOMLX_BACKEND=%s" %
      (path, env["GOTOOLCHAIN"], env["GOEXPERIMENT"], env["GOMLX_BACKEND"]))
EOF
fi

# ---------------------------------------------------------------- warm caches
if [ "$WITH_WARM" = 1 ]; then
  # Fetches the pinned toolchain (go1.27.4) and the repo's modules once, so the
  # first notebook cell does not.
  log "warming the Go toolchain and module cache (go mod download in $REPO)"
  (cd "$REPO" && go version && go mod download) || FAILED+=("go mod download in $REPO")
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  for f in "${FAILED[@]}"; do echo "[setup] FAILED: $f" >&2; done
  exit 1
fi
log "done: gonb=$(command -v gonb) jupyter=$JUPYTER GOMLX_BACKEND=$GOMLX_BACKEND"
