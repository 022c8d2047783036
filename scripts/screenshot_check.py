#!/usr/bin/python3
"""Checks notebook screenshots for blankness; estimates how tall a screenshot must be.

Usage:
  scripts/screenshot_check.py PNG...                 fail (exit 1) if any image is blank
  scripts/screenshot_check.py --height-for NB.ipynb  print a window height (px) for a
                                                     1200 px wide screenshot of NB's HTML
  scripts/screenshot_check.py --trim PNG...          cut the uniform background below the
                                                     last content row (keeps a 40 px margin;
                                                     needs PIL, otherwise leaves files as is)

A screenshot is "blank" when it is near-uniform: fewer than 0.2% of its pixels differ
from the dominant colour, or it has at most 4 distinct colours (a rendered notebook
has anti-aliased text, so it has dozens). Also reported, not enforced: the share of
"colourful" pixels (saturation > 0.25), a rough sign that images/heatmaps rendered.
Uses PIL when present; otherwise a small built-in PNG decoder (8-bit, non-interlaced
greyscale/RGB/RGBA, which is what Chromium writes).
"""
import base64
import json
import os
import re
import struct
import sys
import zlib

MIN_NON_BG_FRACTION = 0.002
MIN_COLOURS = 5


# ---------------------------------------------------------------- decoding
def decode_png_fallback(path):
    """Returns (width, height, channels, rows) with rows as bytes, for 8-bit PNGs."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, []
    width = height = None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or interlace or colour not in (0, 2, 4, 6):
                raise ValueError("unsupported PNG (depth %d, colour type %d, interlace %d)" %
                                 (depth, colour, interlace))
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        off = y * (stride + 1)
        ftype, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def pixels(path):
    """Returns (width, height, list of (r, g, b) pixels, sampled on a grid of at most
    about 400k pixels)."""
    try:
        from PIL import Image  # noqa: import inside: optional dependency
        img = Image.open(path).convert("RGB")
        w, h = img.size
        step = max(1, int((w * h / 400000) ** 0.5))
        if step > 1:
            img = img.resize((max(1, w // step), max(1, h // step)), Image.NEAREST)
        return w, h, list(img.getdata())
    except ImportError:
        pass
    w, h, ch, rows = decode_png_fallback(path)
    step = max(1, int((w * h / 400000) ** 0.5))
    out = []
    for y in range(0, h, step):
        row = rows[y]
        for x in range(0, w, step):
            p = row[x * ch:(x + 1) * ch]
            if ch >= 3:
                out.append((p[0], p[1], p[2]))
            else:
                out.append((p[0], p[0], p[0]))
    return w, h, out


def check_png(path):
    name = os.path.basename(path)
    try:
        w, h, px = pixels(path)
    except Exception as e:  # unreadable or truncated file
        print("[screenshot] %s: FAIL cannot decode: %s" % (name, e))
        return False
    counts = {}
    for p in px:
        counts[p] = counts.get(p, 0) + 1
    dominant, ndom = max(counts.items(), key=lambda kv: kv[1])
    non_bg = 1.0 - ndom / len(px)
    colourful = 0
    for (r, g, b), n in counts.items():
        mx, mn = max(r, g, b), min(r, g, b)
        if mx > 0 and (mx - mn) / mx > 0.25 and mx > 40:
            colourful += n
    colourful /= len(px)
    blank = non_bg < MIN_NON_BG_FRACTION or len(counts) < MIN_COLOURS
    print("[screenshot] %s: %s -- %dx%d, %d colours, %.1f%% non-background, %.1f%% colourful" % (
        name, "FAIL blank (near-uniform)" if blank else "OK", w, h, len(counts), 100 * non_bg,
        100 * colourful))
    return not blank


# ---------------------------------------------------------------- height estimate
def png_size(b):
    if b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR":
        return struct.unpack(">II", b[16:24])
    return None


DATA_IMG = re.compile(r"""<img\b[^>]*?src\s*=\s*["']data:image/png;base64,([A-Za-z0-9+/=]{32,})""", re.I)
WIDTH_ATTR = re.compile(r"""\bwidth\s*=\s*["']?(\d+)""", re.I)
CONTENT_WIDTH = 1050  # px available to outputs in nbconvert's lab template at 1200 px


def image_height(w, h, shown_width=None):
    if shown_width:
        h = h * shown_width / max(1, w)
        w = shown_width
    if w > CONTENT_WIDTH:
        h = h * CONTENT_WIDTH / w
    return h


def estimate_height(nb_path):
    with open(nb_path, encoding="utf-8") as f:
        nb = json.load(f)
    total = 150
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        nlines = src.count("\n") + 1
        if cell.get("cell_type") == "markdown":
            total += 30 + 26 * nlines + 20 * src.count("#")
            continue
        total += 40 + 18 * nlines
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                t = out.get("text", "")
                t = "".join(t) if isinstance(t, list) else t
                total += 10 + 18 * (t.count("\n") + 1)
                continue
            if out.get("output_type") == "error":
                total += 20 + 18 * len(out.get("traceback") or [1])
                continue
            data = out.get("data") or {}
            total += 10
            if "image/png" in data:
                b64 = data["image/png"]
                b64 = "".join(b64) if isinstance(b64, list) else b64
                size = png_size(base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4)))
                total += image_height(*size) if size else 300
            h = data.get("text/html")
            if h:
                h = "".join(h) if isinstance(h, list) else h
                imgs = list(DATA_IMG.finditer(h))
                for m in imgs:
                    head = m.group(1)[:64]
                    size = png_size(base64.b64decode(head + "=" * (-len(head) % 4)))
                    tag_end = h.find(">", m.start())
                    wm = WIDTH_ATTR.search(h, m.start(), tag_end if tag_end > 0 else None)
                    total += image_height(*size, int(wm.group(1)) if wm else None) if size else 300
                text = re.sub(r"(?s)<(style|script)\b.*?</\1>", "", h)
                text_lines = len(re.findall(r"<br|<tr|<p\b|<div|<li|<h\d", text, re.I))
                total += 18 * text_lines + (300 * len(re.findall(r"<svg\b", text, re.I)))
            elif "image/svg+xml" in data:
                total += 400
            elif "text/plain" in data and "image/png" not in data:
                t = data["text/plain"]
                t = "".join(t) if isinstance(t, list) else t
                total += 18 * (t.count("\n") + 1)
    return int(min(16000, max(900, total * 1.1)))


def trim_bottom(path, margin=40):
    """Cuts the rows below the last one that differs from the bottom-left pixel's colour
    (the page background), keeping margin rows. The window height of a screenshot is an
    estimate with headroom, so screenshots otherwise end in a tall empty band."""
    name = os.path.basename(path)
    try:
        from PIL import Image, ImageChops  # noqa: import inside: optional dependency
    except ImportError:
        print("[screenshot] %s: not trimmed (no PIL)" % name)
        return True
    img = Image.open(path).convert("RGB")
    w, h = img.size
    bg = Image.new("RGB", (w, h), img.getpixel((0, h - 1)))
    box = ImageChops.difference(img, bg).getbbox()
    if box is None:
        print("[screenshot] %s: not trimmed (uniform image)" % name)
        return True
    new_h = min(h, box[3] + margin)
    if new_h < h:
        img.crop((0, 0, w, new_h)).save(path)
    print("[screenshot] %s: trimmed %dx%d -> %dx%d" % (name, w, h, w, new_h))
    return True


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "--trim":
        ok = all([trim_bottom(p) for p in argv[1:]])
        return 0 if ok else 1
    if argv[0] == "--height-for":
        if len(argv) != 2:
            print("usage: screenshot_check.py --height-for NOTEBOOK.ipynb", file=sys.stderr)
            return 2
        print(estimate_height(argv[1]))
        return 0
    ok = all([check_png(p) for p in argv])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
