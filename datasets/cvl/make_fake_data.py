"""Writes the fake CVL 1.1 tree used by tests/test_cvl_builder.py into datasets/cvl/dummy_data/.

Layout as distributed: dummy_data/cvl-database-1-1/{trainset,testset}/words/<writer>/
<writer>-<page>-<line>-<word>-<TEXT>.tif (dummy_data is the *parent* of the database folder, one of
the two accepted --manual_dir choices). Images are small synthetic scribbles, words are invented.
Traps: labels containing "-", German page 6 with an umlaut stored decomposed (NFD) in the file name,
RGB / grayscale / palette / RGBA TIFFs, a 0-byte TIFF, a TIFF whose name does not parse, a non-TIFF
file that must be ignored.

Run: .venv/bin/python datasets/cvl/make_fake_data.py
"""

import pathlib
import shutil
import unicodedata
import zlib

import numpy as np
from PIL import Image, ImageDraw

OUT = pathlib.Path(__file__).resolve().parent / "dummy_data"
DB = OUT / "cvl-database-1-1"

# (set, writer, page, line, word, text, mode) ; mode: a Pillow mode, "empty" (0-byte) or "badname".
FILES = [
    ("trainset", "0001", 1, 0, 0, "Imagine", "RGB"),
    ("trainset", "0001", 1, 0, 1, "half-baked", "RGB"),
    ("trainset", "0001", 6, 0, 0, unicodedata.normalize("NFD", "Bäumen"), "RGB"),
    ("trainset", "0001", 7, 2, 3, "Quill", "L"),
    ("trainset", "0003", 2, 1, 0, "Lantern", "P"),
    ("trainset", "0003", 6, 1, 1, "Zwerge", "RGB"),
    ("trainset", "0003", 8, 0, 0, "Rowan", "empty"),
    ("trainset", "0003", 2, 1, 9, "Broken", "badname"),
    ("trainset", "0012", 3, 0, 0, "Meadow", "RGB"),
    ("trainset", "0012", 4, 1, 2, "Tin-Tin-Tack", "RGB"),
    ("trainset", "0012", 6, 0, 0, "über", "RGB"),
    ("testset", "0051", 1, 0, 0, "Harbor", "RGB"),
    ("testset", "0051", 6, 0, 0, "Glück", "RGB"),
    ("testset", "0051", 8, 3, 1, "Sundial", "RGB"),
    ("testset", "0052", 2, 0, 0, "Crest", "RGBA"),
    ("testset", "0052", 7, 0, 0, "Ember", "RGB"),
]


def scribble(seed: int, text: str) -> Image.Image:
  """Dark random strokes on a white RGB canvas, about 9 px per character, 24 px high."""
  rng = np.random.default_rng(seed)
  w, h = 9 * len(text) + 8, 24
  im = Image.new("RGB", (w, h), (255, 255, 255))
  draw = ImageDraw.Draw(im)
  for x in range(4, w - 8, 9):
    pts = [(x + int(rng.integers(0, 8)), int(rng.integers(5, h - 5))) for _ in range(3)]
    draw.line(pts, fill=(30, 30, 60), width=2)
  return im


def main():
  if OUT.exists():
    shutil.rmtree(OUT)
  for set_name, writer, page, line, word, text, mode in FILES:
    folder = DB / set_name / "words" / writer
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{writer}-{page}-{line}-{word}-{text}.tif"
    if mode == "badname":
      name = f"{writer}-{page}-{line}-x-{text}.tif"
    path = folder / name
    if mode == "empty":
      path.write_bytes(b"")
      continue
    im = scribble(zlib.crc32(name.encode()), text)
    if mode == "P":
      im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    elif mode == "RGBA":
      im = im.convert("RGBA")
      a = np.array(im)
      a[:, :4, 3] = 0  # a transparent left margin: must come out white
      im = Image.fromarray(a, "RGBA")
    elif mode not in ("RGB", "badname"):
      im = im.convert(mode)
    im.save(path, compression="tiff_deflate")
  (DB / "trainset" / "words" / "0001" / "Thumbs.db").write_bytes(b"not an image")
  (OUT / "README.md").write_text(
      "Fake CVL 1.1 tree for tests (synthetic images, invented words). "
      "Regenerate with datasets/cvl/make_fake_data.py.\n")
  print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files under {OUT}")


if __name__ == "__main__":
  main()
