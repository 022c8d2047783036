#!/usr/bin/env bash
# Runs the cnnviz notebooks (GoNB kernel).
#
# Usage:
#   scripts/run_notebooks.sh [options]                 interactive: Jupyter server on
#                                                      http://127.0.0.1:8888 serving notebooks/
#   scripts/run_notebooks.sh --headless [options] [NOTEBOOK.ipynb...]
#        executes each notebook (default: every notebooks/*.ipynb) with nbconvert, then
#        for each writes into OUT: NAME.ipynb (executed), NAME.html (self-contained, no
#        CDN or file:// loads), NAME.png (headless Chromium screenshot), NAME.log; checks
#        them (scripts/check_notebooks.py, scripts/screenshot_check.py) and exits non-zero
#        naming the notebook and cell of every failure.
# Options:
#   --out DIR        headless output folder (default: out/notebooks in the repo)
#   --timeout SEC    per-cell execution timeout (default 900)
#   --ip ADDR        server address (default 127.0.0.1; 0.0.0.0 inside Docker)
#   --port N         server port (default 8888)
#   --no-setup       skip scripts/setup_notebooks.sh (it is idempotent, ~1 s when done)
# Environment: JUPYTER_TOKEN (server token; default: random), GOMLX_BACKEND (go, xla:cpu,
# xla:cuda; written into the kernel's environment by the setup), CNNVIZ_FAST=1 (the
# notebooks use fewer iterations: quicker, rougher pictures). --headless runs the
# notebooks with CNNVIZ_STATIC=1 (no browser: widgets are replaced by static pictures).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HEADLESS=0
OUT="$REPO/out/notebooks"
TIMEOUT=900
IP=127.0.0.1
PORT=8888
SETUP=1
NBS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --headless) HEADLESS=1 ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift ;;
    --ip) IP="${2:?--ip needs an address}"; shift ;;
    --port) PORT="${2:?--port needs a number}"; shift ;;
    --no-setup) SETUP=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    --) shift; NBS+=("$@"); break ;;
    -*) echo "run_notebooks.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) NBS+=("$1") ;;
  esac
  shift
done

say() { echo "[run] $*"; }
die() { echo "[run] ERROR: $*" >&2; exit 1; }

if [ "$SETUP" = 1 ]; then
  if [ "$HEADLESS" = 1 ]; then
    "$REPO/scripts/setup_notebooks.sh" || die "setup failed (scripts/setup_notebooks.sh)"
  else
    "$REPO/scripts/setup_notebooks.sh" --no-chromium || die "setup failed (scripts/setup_notebooks.sh)"
  fi
fi
# shellcheck source=env.sh
. "$REPO/scripts/env.sh"

JUPYTER=/usr/bin/jupyter
[ -x "$JUPYTER" ] || JUPYTER="$(command -v jupyter)" || die "jupyter not found: run scripts/setup_notebooks.sh"
# Debian's Jupyter and PIL live in the system Python; a pyenv/venv python3 may shadow it.
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)" || die "python3 not found"

# ------------------------------------------------------------------ interactive
if [ "$HEADLESS" = 0 ]; then
  [ "${#NBS[@]}" -eq 0 ] || die "notebook arguments are only used with --headless"
  mkdir -p "$REPO/notebooks"
  TOKEN="${JUPYTER_TOKEN:-$("$PY" -c 'import secrets; print(secrets.token_hex(24))')}"
  EXTRA=()
  [ "$(id -u)" = 0 ] && EXTRA+=(--allow-root)
  HOST="$IP"
  [ "$IP" = 0.0.0.0 ] && HOST=127.0.0.1
  say "Jupyter notebook server for $REPO/notebooks (GoNB kernel \"Go (gonb)\", GOMLX_BACKEND=$GOMLX_BACKEND)"
  say "open:  http://$HOST:$PORT/tree?token=$TOKEN"
  say "stop:  Ctrl-C (twice), or kill $$"
  cd "$REPO/notebooks" || die "cannot enter $REPO/notebooks"
  exec "$JUPYTER" notebook --no-browser --ip="$IP" --port="$PORT" --port-retries=0 \
    --notebook-dir="$REPO/notebooks" --NotebookApp.token="$TOKEN" "${EXTRA[@]}"
fi

# ------------------------------------------------------------------ headless
if [ "${#NBS[@]}" -eq 0 ]; then
  shopt -s nullglob
  for nb in "$REPO"/notebooks/*.ipynb; do
    case "$nb" in *.nbconvert.ipynb) continue ;; esac
    NBS+=("$nb")
  done
  shopt -u nullglob
  [ "${#NBS[@]}" -gt 0 ] || die "no notebooks found in $REPO/notebooks"
fi
mkdir -p "$OUT" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"

CHROME=""
for c in chromium chromium-browser google-chrome google-chrome-stable; do
  command -v "$c" >/dev/null 2>&1 && { CHROME="$(command -v "$c")"; break; }
done
[ -n "$CHROME" ] || die "no Chromium found: run scripts/setup_notebooks.sh (without --no-chromium)"

FAILS=()
SUMMARY=()
for nb in "${NBS[@]}"; do
  [ -f "$nb" ] || { FAILS+=("$nb: no such notebook"); SUMMARY+=("FAIL  -      $nb (missing)"); continue; }
  nb="$(cd "$(dirname "$nb")" && pwd)/$(basename "$nb")"
  name="$(basename "$nb" .ipynb)"
  log="$OUT/$name.log"
  ok=1
  say "=== $name: executing $nb (cell timeout ${TIMEOUT}s; log: $log)"
  t0=$(date +%s)
  rm -f "$OUT/$name.ipynb" "$OUT/$name.html" "$OUT/$name.png"
  # allow_errors: a failing cell does not stop nbconvert, so the executed notebook, its
  # HTML and screenshot exist for every notebook and check_notebooks.py names the cell.
  # nbconvert runs the kernel in the notebook's own folder (GoNB's $GONB_DIR).
  # CNNVIZ_STATIC=1 tells the notebooks that no browser is connected: cells with widgets
  # (selectors, sliders) show static pictures instead of waiting for clicks.
  CNNVIZ_STATIC=1 "$JUPYTER" nbconvert --to notebook --execute \
      --ExecutePreprocessor.timeout="$TIMEOUT" --ExecutePreprocessor.allow_errors=True \
      --output-dir "$OUT" --output "$name" "$nb" >"$log" 2>&1
  rc=$?
  t1=$(date +%s)
  if [ "$rc" != 0 ] || [ ! -f "$OUT/$name.ipynb" ]; then
    ok=0
    # nbconvert only fails on its own (kernel died, cell timeout): show its message,
    # without the kernel's klog lines.
    msg="$(grep -vE '^[IWEF][0-9]{4} [0-9:.]+ +[0-9]+ ' "$log" | grep -v '^\s*$' | tail -n 25)"
    echo "[run] $name: FAIL nbconvert --execute exited with $rc:"
    echo "$msg" | sed 's/^/      | /'
    # nbclient quotes the cell after one of these headers, between '-----' lines.
    cell="$(awk '/executing the following cell:|preview of the cell contents:/ {f=1; next}
                 f && /^-+$/ {if (n) exit; next}
                 f && NF {printf "%s%s", (n ? " / " : ""), $0; if (++n == 2) exit}' "$log")"
    FAILS+=("$name: execution aborted (nbconvert rc=$rc)${cell:+ in cell starting: $cell}; see $log")
  fi
  if [ -f "$OUT/$name.ipynb" ]; then
    report="$("$PY" "$REPO/scripts/check_notebooks.py" "$OUT/$name.ipynb")"
    crc=$?
    echo "$report"
    if [ "$crc" != 0 ]; then
      ok=0
      n0=${#FAILS[@]}
      while IFS= read -r line; do FAILS+=("$name: ${line#*: FAIL }"); done \
        < <(echo "$report" | grep -E '^\[check\] [^ ]+: FAIL [^-]')
      [ "${#FAILS[@]}" -gt "$n0" ] || FAILS+=("$name: notebook check failed")
    fi
    if "$JUPYTER" nbconvert --to html --HTMLExporter.embed_images=True --output-dir "$OUT" \
         --output "$name" "$OUT/$name.ipynb" >>"$log" 2>&1; then
      "$PY" "$REPO/scripts/check_notebooks.py" --offline-html "$OUT/$name.html" \
        || { ok=0; FAILS+=("$name: HTML export is not self-contained"); }
      height="$("$PY" "$REPO/scripts/screenshot_check.py" --height-for "$OUT/$name.ipynb" 2>>"$log" || echo 4000)"
      profile="$(mktemp -d)"
      timeout 180 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking \
          --disable-component-update --no-first-run --hide-scrollbars --user-data-dir="$profile" \
          --virtual-time-budget=3000 --window-size=1200,"$height" \
          --screenshot="$OUT/$name.png" "file://$OUT/$name.html" >>"$log" 2>&1
      crc=$?
      rm -rf "$profile"
      if [ -f "$OUT/$name.png" ]; then
        # The window height is an estimate with a margin: cut the empty space below the end.
        "$PY" "$REPO/scripts/screenshot_check.py" --trim "$OUT/$name.png" >>"$log" 2>&1
        "$PY" "$REPO/scripts/screenshot_check.py" "$OUT/$name.png" \
          || { ok=0; FAILS+=("$name: screenshot is blank"); }
      else
        ok=0; FAILS+=("$name: Chromium wrote no screenshot (rc=$crc; see $log)")
        echo "[run] $name: FAIL Chromium wrote no screenshot (rc=$crc)"
      fi
    else
      ok=0; FAILS+=("$name: HTML export failed (see $log)")
      echo "[run] $name: FAIL HTML export failed"
    fi
  fi
  t2=$(date +%s)
  SUMMARY+=("$( [ $ok = 1 ] && echo 'ok  ' || echo 'FAIL')  $(printf '%4ds' $((t1 - t0))) exec, $(printf '%3ds' $((t2 - t1))) export  $name")
done

echo
say "summary (outputs in $OUT):"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
if [ "${#FAILS[@]}" -gt 0 ]; then
  echo "[run] FAILED:" >&2
  for f in "${FAILS[@]}"; do echo "  - $f" >&2; done
  exit 1
fi
say "all ${#NBS[@]} notebook(s) passed"
