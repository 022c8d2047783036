#!/usr/bin/python3
"""Checks executed cnnviz notebooks (GoNB kernel) and makes exported HTML offline-safe.

Usage:
  scripts/check_notebooks.py EXECUTED.ipynb...      check executed notebooks
  scripts/check_notebooks.py --offline-html FILE.html...
                                                     strip external <script>/<link> loads
                                                     from nbconvert HTML, then fail if any
                                                     external fetch remains

Exit status 0 when everything passes, 1 on any failure; every failure names the
notebook and the cell (its number in the notebook, 1-based, counting markdown cells
too, its execution count, and its first line).

A code cell FAILS when
  * it has an `error` output (GoNB: compile errors, panics, non-zero exits);
  * it shows GoNB's HTML error report (class "gonb-err-location");
  * a stream output has, at the start of a line, one of:
      "exit status N" (N > 0)   GoNB prints this when a `!` / `!*` shell line or the
                                cell's program fails; a failing shell line does NOT make
                                the cell or nbconvert fail, so this is the only trace
      "panic: ", "fatal error: ", "signal: <name>" (Go runtime crash, OOM kill)
      "Error:" / "ERROR:" / "error:" -- on stderr only: on stdout such lines are too
                                often legitimate ("Error: 3e-07" in a parity table)
  * it has source but was never executed (execution stopped early);
  * it carries an expectation comment (below) that its outputs do not meet.
Warnings (reported, not failures): klog error lines ("E1127 12:00:00.000000 ...") on
stderr, and <img> tags in HTML outputs whose src is not an embedded data: URI (they
will not render offline).

CONVENTION -- expectation comments. A line comment in a Go code cell:
  // expect: image   the cell must display at least one image: an output with
                     image/png (or image/jpeg, image/gif, image/svg+xml), or a
                     text/html output containing <img src="data:image/..."> or an
                     inline <svg>. Use it on every visualization cell, so a cell that
                     silently draws nothing fails the notebook run.
  // expect: error   the cell is meant to fail (a demonstration); its errors are not
                     failures, but it must show one.
Several may be combined: "// expect: image, error". Unknown kinds are failures (typos).

Report per notebook: cells (code cells), images found, execution time (from the
kernel's per-cell timestamps, 1 s resolution).
"""
import datetime
import html
import json
import os
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXPECT = re.compile(r"^\s*//\s*expect\s*:\s*(.+?)\s*$", re.M)
KNOWN_EXPECT = {"image", "error"}

# Markers checked on every stream (stdout and stderr).
ANY_STREAM_MARKERS = [
    (re.compile(r"^exit status [1-9][0-9]*\s*$"), "non-zero exit"),
    (re.compile(r"^panic: "), "panic"),
    (re.compile(r"^fatal error: "), "Go runtime fatal error"),
    (re.compile(r"^signal: [a-z]"), "killed by a signal"),
]
# Markers checked on stderr only.
STDERR_MARKERS = [
    (re.compile(r"^(Error|ERROR|error)(\[[^\]]*\])?:"), "error message on stderr"),
]
KLOG_ERROR = re.compile(r"^E\d{4} \d\d:\d\d:\d\d\.\d+ ")

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
IMG_TAG = re.compile(r"<img\b[^>]*>", re.I)
IMG_SRC = re.compile(r"""\bsrc\s*=\s*["']?\s*([^"'\s>]*)""", re.I)
SVG_TAG = re.compile(r"<svg\b", re.I)
STYLE_BLOCK = re.compile(r"(?s)<style\b.*?</style>", re.I)
TAG = re.compile(r"<[^>]*>")


def text_of(value):
    if isinstance(value, list):
        return "".join(value)
    return value or ""


def strip_html(s):
    s = STYLE_BLOCK.sub("", s)
    s = TAG.sub("", s)
    s = html.unescape(s)
    return "\n".join(line.rstrip() for line in s.splitlines() if line.strip())


def parse_time(s):
    try:
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def first_line(source):
    for line in source.splitlines():
        line = line.strip()
        if line and line != "%%" and not EXPECT.match(line):
            return line if len(line) <= 70 else line[:67] + "..."
    return "<empty>"


def indent(text, prefix="      | ", max_lines=25):
    lines = text.rstrip("\n").splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + ["... (%d more lines)" % (len(lines) - max_lines)]
    return "\n".join(prefix + line for line in lines)


def count_images(output):
    """Returns (embedded images, non-embedded <img> srcs) in one output."""
    data = output.get("data") or {}
    n = sum(1 for m in IMAGE_MIMES if m in data)
    external = []
    h = text_of(data.get("text/html"))
    if h:
        for tag in IMG_TAG.findall(h):
            m = IMG_SRC.search(tag)
            src = m.group(1) if m else ""
            if src.lower().startswith("data:image/"):
                n += 1
            else:
                external.append(src[:80] or "<no src>")
        n += len(SVG_TAG.findall(h))
    return n, external


def check_cell(cell):
    """Returns (reasons, details, warnings, number of images) for one code cell:
    short reasons it failed, and the most telling output text to show with them."""
    reasons, details, warnings = [], [], []
    images = 0
    for out in cell.get("outputs", []):
        otype = out.get("output_type")
        if otype == "error":
            reasons.append("error output (%s: %s)" % (out.get("ename", ""), out.get("evalue", "")))
            tb = ANSI.sub("", "\n".join(out.get("traceback") or []))
            if tb.strip() and tb.strip() != str(out.get("evalue", "")).strip():
                details.append((2, tb))
        elif otype == "stream":
            name = out.get("name", "stdout")
            text = ANSI.sub("", text_of(out.get("text")))
            lines = text.splitlines()
            hit = None
            markers = ANY_STREAM_MARKERS + (STDERR_MARKERS if name == "stderr" else [])
            for i, line in enumerate(lines):
                for rx, what in markers:
                    if rx.search(line):
                        reasons.append("%s on %s: %r" % (what, name, line.strip()[:100]))
                        hit = i if hit is None else hit
                        break
                if name == "stderr" and KLOG_ERROR.search(line):
                    warnings.append("klog error line on stderr: " + line.strip()[:160])
            if hit is not None:
                details.append((0, "\n".join(lines[max(0, hit - 10):])))
        elif otype in ("display_data", "execute_result", "update_display_data"):
            n, external = count_images(out)
            images += n
            for src in external:
                warnings.append("<img> not embedded (won't render offline): src=" + src)
            h = text_of((out.get("data") or {}).get("text/html"))
            if "gonb-err-location" in h:
                reasons.append("GoNB error report")
                details.append((1, strip_html(h)))
    return reasons, details, warnings, images


def check_notebook(path):
    """Returns True when the notebook passes; prints its report."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError) as e:
        print("[check] %s: FAIL: cannot read executed notebook: %s" % (path, e))
        return False
    cells = nb.get("cells", [])
    ncode = 0
    images_total = 0
    seconds = 0.0
    slowest = (0.0, None)
    problems, warns = [], []
    for idx, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        ncode += 1
        source = text_of(cell.get("source"))
        label = "cell %d [exec %s] %r" % (idx, cell.get("execution_count"), first_line(source))
        expects = set()
        for m in EXPECT.finditer(source):
            for kind in re.split(r"[,\s]+", m.group(1).strip()):
                if kind:
                    expects.add(kind.lower())
        unknown = expects - KNOWN_EXPECT
        if unknown:
            problems.append("%s: unknown expectation(s) %s (known: %s)" % (
                label, ", ".join(sorted(unknown)), ", ".join(sorted(KNOWN_EXPECT))))
        if source.strip() and cell.get("execution_count") is None:
            problems.append("%s: not executed" % label)
            continue
        reasons, details, w, images = check_cell(cell)
        images_total += images
        warns += ["%s: %s" % (label, x) for x in w]
        if "error" in expects:
            if not reasons:
                problems.append("%s: marked '// expect: error' but showed no error" % label)
        elif reasons:
            # One entry per cell: all reasons, then the most telling output text:
            # the stream around the first marker, else GoNB's report, else the traceback.
            detail = min(details, key=lambda d: (d[0], -len(d[1])))[1] if details else ""
            problems.append("%s: %s%s" % (label, "; ".join(dict.fromkeys(reasons)),
                                          ("\n" + indent(detail)) if detail.strip() else ""))
        if "image" in expects and images == 0:
            kinds = sorted({o.get("output_type", "?") for o in cell.get("outputs", [])}) or ["none"]
            problems.append("%s: marked '// expect: image' but displayed no image "
                            "(outputs: %s)" % (label, ", ".join(kinds)))
        ex = (cell.get("metadata") or {}).get("execution") or {}
        t0, t1 = parse_time(ex.get("iopub.execute_input")), parse_time(ex.get("shell.execute_reply"))
        if t0 and t1:
            dt = max(0.0, (t1 - t0).total_seconds())
            seconds += dt
            if dt > slowest[0]:
                slowest = (dt, idx)
    status = "OK" if not problems else "FAIL"
    slow = " (slowest: cell %d, %.0f s)" % (slowest[1], slowest[0]) if slowest[1] else ""
    print("[check] %s: %s -- %d cells (%d code), %d image(s), %.0f s in cells%s" % (
        name, status, len(cells), ncode, images_total, seconds, slow))
    for p in problems:
        print("[check] %s: FAIL %s" % (name, p))
    for w in warns:
        print("[check] %s: warning %s" % (name, w))
    return not problems


# ----------------------------------------------------------------- offline HTML
EXT_URL = r"""(?:https?:|file:|//)"""
SCRIPT_EXT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*%s[^>]*>\s*</script>""" % EXT_URL, re.I)
LINK_EXT = re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*%s[^>]*>""" % EXT_URL, re.I)
FETCH_REFS = [
    re.compile(r"""<(?:script|img|iframe|embed|source|video|audio|input)\b[^>]*\bsrc\s*=\s*["']?\s*%s[^"'\s>]*""" % EXT_URL, re.I),
    re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*%s[^"'\s>]*""" % EXT_URL, re.I),
    re.compile(r"""@import\s+(?:url\()?\s*["']?\s*%s[^"')\s]*""" % EXT_URL, re.I),
    re.compile(r"""url\(\s*["']?\s*(?:https?:|file:)[^"')\s]*""", re.I),
]


def offline_html(path):
    """Removes external script/stylesheet loads (nbconvert's require.js and MathJax,
    which Debian points at file:///usr/share/javascript and upstream at a CDN), then
    checks that nothing else would be fetched. Output images are already embedded."""
    with open(path, encoding="utf-8") as f:
        s = f.read()
    removed = [m.group(0) for m in SCRIPT_EXT.finditer(s)] + [m.group(0) for m in LINK_EXT.finditer(s)]
    s = SCRIPT_EXT.sub("", s)
    s = LINK_EXT.sub("", s)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(s)
    os.replace(tmp, path)
    left = []
    for rx in FETCH_REFS:
        left += [m.group(0)[:120] for m in rx.finditer(s)]
    name = os.path.basename(path)
    srcs = [re.search(r"""(?:src|href)\s*=\s*["']?\s*([^"'\s>?]*)""", r, re.I) for r in removed]
    gone = ", ".join(os.path.basename(m.group(1)) for m in srcs if m)
    if left:
        for r in left:
            print("[html] %s: FAIL external reference remains: %s" % (name, r))
        return False
    print("[html] %s: OK, self-contained (%d KiB)%s" % (
        name, len(s.encode()) // 1024, "; removed external loads: " + gone if gone else ""))
    return True


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "--offline-html":
        ok = all([offline_html(p) for p in argv[1:]])
    else:
        ok = all([check_notebook(p) for p in argv])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
