"""Writes the fake RIMES (ICDAR 2011 words) tree used by tests/test_rimes_builder.py into
datasets/rimes/dummy_data/.

Layout and file formats as distributed: three ground-truth files (UTF-8 with BOM, CRLF, the real name
variants groundtruth_training_..., ground_truth_validation_..., grount_truth_test_...) and the image
folders trainingsnippets_icdar/training_WR/, validationsnippets_icdar/testdataset_ICDAR/, data_test/.
Images are synthetic scribbles, words are ordinary French words (not RIMES content). Traps: paths
relative to different roots, backslashes, a Windows absolute path, `./`, a line without a word, a
0-byte image, a listed image that does not exist, an NFD label, accents, `°`, `²`, extra spaces.

Run: .venv/bin/python datasets/rimes/make_fake_data.py
"""

import pathlib
import shutil
import unicodedata
import zlib

import numpy as np
from PIL import Image, ImageDraw

OUT = pathlib.Path(__file__).resolve().parent / "dummy_data"

TRAIN_DIR = "trainingsnippets_icdar/training_WR"
VAL_DIR = "validationsnippets_icdar/testdataset_ICDAR"
TEST_DIR = "data_test"

# (gt file, [(gt line, image path relative to dummy_data or None, image kind)])
# image kind: "L", "1" (bilevel), "empty" (0-byte) or None (no file written).
GT = {
    "groundtruth_training_icdar2011.txt": [
        ("lot_1/train_0001.png Madame", f"{TRAIN_DIR}/lot_1/train_0001.png", "L"),
        ("lot_1\\train_0002.png élève", f"{TRAIN_DIR}/lot_1/train_0002.png", "L"),
        ("lot_1/train_0003.png N°", f"{TRAIN_DIR}/lot_1/train_0003.png", "1"),
        ("lot_1/train_0004.png", f"{TRAIN_DIR}/lot_1/train_0004.png", "L"),  # no word
        ("lot_2/train_0005.png façade", f"{TRAIN_DIR}/lot_2/train_0005.png", "empty"),
        ("training_WR/lot_2/train_0006.png m²", f"{TRAIN_DIR}/lot_2/train_0006.png", "L"),
        ("lot_2/train_0007.png " + unicodedata.normalize("NFD", "Noël"),
         f"{TRAIN_DIR}/lot_2/train_0007.png", "L"),
    ],
    "ground_truth_validation_icdar2011.txt": [
        (f"{VAL_DIR}/val_0001.png l'été", f"{VAL_DIR}/val_0001.png", "L"),
        ("testdataset_ICDAR\\val_0002.png à", f"{VAL_DIR}/val_0002.png", "L"),
        ("val_0003.png rue", None, None),  # listed, but the image does not exist
        ("val_0004.png Cordialement", f"{VAL_DIR}/val_0004.png", "L"),
    ],
    "grount_truth_test_icdar2011.txt": [
        ("C:\\Users\\rimes\\data_test\\test_0001.png Objet", f"{TEST_DIR}/test_0001.png", "L"),
        ("./data_test/test_0002.png coût", f"{TEST_DIR}/test_0002.png", "L"),
        ("test_0003.png 2°", f"{TEST_DIR}/test_0003.png", "L"),
        ("test_0004.png   Veuillez  ", f"{TEST_DIR}/test_0004.png", "L"),
    ],
}


def scribble(seed: int, n_chars: int) -> Image.Image:
  rng = np.random.default_rng(seed)
  w, h = 10 * max(n_chars, 1) + 6, 28
  im = Image.new("L", (w, h), 255)
  draw = ImageDraw.Draw(im)
  for x in range(3, w - 7, 10):
    pts = [(x + int(rng.integers(0, 8)), int(rng.integers(5, h - 5))) for _ in range(3)]
    draw.line(pts, fill=int(rng.integers(0, 50)), width=2)
  return im


def main():
  if OUT.exists():
    shutil.rmtree(OUT)
  OUT.mkdir(parents=True)
  for gt_name, rows in GT.items():
    for line, rel, kind in rows:
      if rel is None:
        continue
      path = OUT / rel
      path.parent.mkdir(parents=True, exist_ok=True)
      if kind == "empty":
        path.write_bytes(b"")
        continue
      word = line.split(None, 1)[1] if " " in line.strip() else "xxxx"
      im = scribble(zlib.crc32(rel.encode()), len(word.strip()))
      im.convert(kind).save(path, optimize=True)
    text = "\ufeff" + "".join(line + "\r\n" for line, _, _ in rows)
    (OUT / gt_name).write_bytes(text.encode("utf-8"))
  (OUT / "README.md").write_text(
      "Fake RIMES ICDAR 2011 word tree for tests (synthetic images, ordinary French words). "
      "Regenerate with datasets/rimes/make_fake_data.py.\n")
  print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files under {OUT}")


if __name__ == "__main__":
  main()
