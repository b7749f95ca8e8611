"""Shrinks pdekit's PNG figures for the README: 64-colour palette PNGs, optionally scaled.

    python3 docs/figures/shrink.py SRC.png DST.png [SCALE]

Needs Pillow (pip install pillow); pdekit itself never runs this.
"""
import sys

from PIL import Image

src, dst = sys.argv[1], sys.argv[2]
scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
im = Image.open(src).convert("RGB")
if scale != 1.0:
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
im.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
    dst, optimize=True
)
