"""Writes the fake DHSD tree used by tests/test_dhsd_builder.py into datasets/dhsd/dummy_data/.

Same layout and file formats as the real distribution (CRLF csv files with header
`file_name,text,writer_id`, 256 x 64 RGBA PNGs under german_hw_data/writer<N>/<N>_<k>.png), but the
images are synthetic scribbles and the street names are invented. Traps included on purpose: a quoted
label with a comma, a label stored decomposed (NFD) that must come out NFC, a malformed csv row, a
0-byte image and a row whose image is missing.

Run: .venv/bin/python datasets/dhsd/make_fake_data.py
"""

import csv
import io
import pathlib
import shutil
import unicodedata
import zlib

import numpy as np
from PIL import Image, ImageDraw

OUT = pathlib.Path(__file__).resolve().parent / "dummy_data"

# (writer, index, label, kind) with kind "ok", "empty" (0-byte file) or "missing" (no file).
ROWS = [
    (2, 0, "Kleinhausen", "ok"),
    (2, 1, "Bärwalder Weg", "ok"),
    (2, 2, "Am Moos, Nord", "ok"),  # quoted in the csv because of the comma
    (2, 3, unicodedata.normalize("NFD", "Müllerstraße 18"), "ok"),  # NFD on disk
    (2, 4, "Großfeld-Süd (Alt)", "ok"),
    (2, 5, "Lindenhof", "ok"),  # crc32(file_name) % 10 == 0: validation in the original config
    (5, 0, "Ölberg", "ok"),
    (5, 1, "Hochstraße", "ok"),
    (5, 2, "Leerweg", "empty"),
    (10, 0, "Tannenhöhe", "ok"),
    (10, 1, "Fünfeck 3", "ok"),
    (10, 2, "Fehltal", "missing"),
    (33, 0, "Zwölfmühle", "ok"),
    (33, 1, "Querallee", "ok"),
    (33, 2, "Ährenfeld", "ok"),
    (33, 8, "Sankt Veit", "ok"),  # crc32(file_name) % 10 == 0: validation in the original config
]
# The dataset's own 80/20 split: these go to test.csv, the rest to train.csv.
TEST_ROWS = {(2, 1), (5, 1), (10, 1), (33, 1)}
MALFORMED = "german_hw_data/writer33/33_9.png,Kaputt\r\n"  # 2 fields: skipped and counted


def scribble(seed: int, size=(256, 64)) -> Image.Image:
  """A synthetic 'handwritten' word: dark random polyline strokes on white, fully opaque RGBA."""
  rng = np.random.default_rng(seed)
  im = Image.new("RGBA", size, (255, 255, 255, 255))
  draw = ImageDraw.Draw(im)
  w, h = size
  x = int(rng.integers(8, 24))
  while x < w - 20:
    pts = [(x + int(rng.integers(0, 14)), int(rng.integers(h // 4, 3 * h // 4))) for _ in range(4)]
    draw.line(pts, fill=(20, 20, 40, 255), width=int(rng.integers(2, 4)))
    x += int(rng.integers(14, 26))
  return im


def file_name(writer, index):
  return f"german_hw_data/writer{writer}/{writer}_{index}.png"


def write_csv(path, rows, extra=""):
  buf = io.StringIO(newline="")
  writer = csv.writer(buf, lineterminator="\r\n")
  writer.writerow(["file_name", "text", "writer_id"])
  for w, k, label, _ in rows:
    writer.writerow([file_name(w, k), label, w])
  path.write_bytes((buf.getvalue() + extra).encode("utf-8"))


def main():
  if OUT.exists():
    shutil.rmtree(OUT)
  for w, k, _, kind in ROWS:
    p = OUT / file_name(w, k)
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "ok":
      scribble(zlib.crc32(f"{w}_{k}".encode())).save(p, optimize=True)
    elif kind == "empty":
      p.write_bytes(b"")
  write_csv(OUT / "data.csv", ROWS, MALFORMED)
  write_csv(OUT / "train.csv", [r for r in ROWS if (r[0], r[1]) not in TEST_ROWS])
  write_csv(OUT / "test.csv", [r for r in ROWS if (r[0], r[1]) in TEST_ROWS])
  (OUT / "README.md").write_text(
      "Fake DHSD tree for tests (synthetic images, invented names). "
      "Regenerate with datasets/dhsd/make_fake_data.py.\n")
  print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files under {OUT}")


if __name__ == "__main__":
  main()
