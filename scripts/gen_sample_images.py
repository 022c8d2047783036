#!/usr/bin/python3
"""Writes the sample photos in testdata/images/ from Debian's python3-skimage data.

The photos come from scikit-image's bundled sample data (Debian package
python3-skimage 0.19.3-8, directory /usr/lib/python3/dist-packages/skimage/data).
The package need not be installed:
    apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb /tmp/skim
    /usr/bin/python3 scripts/gen_sample_images.py /tmp/skim/usr/lib/python3/dist-packages/skimage/data
Each photo is downsized with PIL (LANCZOS) to at most 320 px on its long side and
saved as JPEG (quality 90, no EXIF). Licences: testdata/images/LICENSES.md.
"""
import os
import sys

from PIL import Image

PHOTOS = {  # source file in skimage/data -> output file
    "chelsea.png": "chelsea.jpg",
    "coffee.png": "coffee.jpg",
    "astronaut.png": "astronaut.jpg",
}
LONG_SIDE = 320
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "images")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/python3/dist-packages/skimage/data"
    os.makedirs(OUT, exist_ok=True)
    for name, out in PHOTOS.items():
        im = Image.open(os.path.join(src, name)).convert("RGB")
        s = LONG_SIDE / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
        path = os.path.join(OUT, out)
        im.save(path, quality=90)
        size = os.path.getsize(path)
        if size >= 80_000:
            sys.exit(f"{path} is {size} bytes, over the 80 KB budget")
        print(f"{path}: {im.width}x{im.height}, {size} bytes")


if __name__ == "__main__":
    main()
