"""Writes the fake IAM tree used by tests/test_iam_builder.py into datasets/iam/dummy_data/.

Same layout and line formats as the real distribution (ascii/words.txt, ascii/lines.txt,
ascii/forms.txt, xml/<form>.xml, words/<a01>/<a01-000u>/<id>.png, the official task line lists and
the Aachen lists) with real-looking ids, invented words and synthetic grayscale images. Traps: `#`
comment header (documenting a field the data lines lack), a transcription with a space, -1 bounding
boxes, `err` words, the two 0-byte images of the real set (a01-117-05-02, r06-022-03-05), a word
whose image is missing, malformed lines, a line in no split list, HTML-escaped xml text.

Run: .venv/bin/python datasets/iam/make_fake_data.py
"""

import html
import pathlib
import shutil
import zlib

import numpy as np
from PIL import Image, ImageDraw

OUT = pathlib.Path(__file__).resolve().parent / "dummy_data"

FORMS = {"a01-000u": "000", "b04-020": "151", "a01-117": "003", "r06-022": "613", "m02-048": "207"}
# (word id, status, bbox, tag, text, image) ; image: "ok", "empty" (0-byte), "missing".
WORDS = [
    ("a01-000u-00-00", "ok", (408, 768, 27, 51), "AT", "Kelp", "ok"),
    ("a01-000u-00-01", "ok", (507, 766, 213, 48), "NN", "orbit", "ok"),
    ("a01-000u-00-02", "ok", (796, 764, 70, 50), ".", ".", "ok"),
    ("a01-000u-01-00", "ok", (341, 939, 188, 73), "NN", "tundra", "ok"),
    ("a01-000u-01-01", "err", (550, 939, 100, 73), "VB", "vim", "ok"),
    ("a01-000u-01-02", "ok", (393, 1635, 190, 85), "NPT", "0M P", "ok"),
    ("b04-020-00-00", "ok", (367, 710, 210, 81), "NP", "Quasar", "ok"),
    ("b04-020-00-01", "ok", (600, 712, 44, 60), "CC", "&", "ok"),
    ("b04-020-00-02", "ok", (-1, -1, -1, -1), "NN", "lumen", "ok"),
    ("b04-020-01-00", "ok", (350, 880, 160, 70), "NN", "drift", "ok"),
    ("b04-020-01-01", "ok", (530, 880, 120, 70), "NN", "haze", "missing"),
    ("a01-117-05-00", "ok", (330, 1800, 170, 80), "NN", "ember", "ok"),
    ("a01-117-05-01", "ok", (520, 1800, 150, 80), "NN", "fjord", "ok"),
    ("a01-117-05-02", "ok", (690, 1800, 120, 80), "NN", "zinc", "empty"),
    ("r06-022-03-00", "ok", (300, 1400, 160, 75), "NN", "glyph", "ok"),
    ("r06-022-03-05", "ok", (900, 1400, 240, 75), "NN", "sprocket", "empty"),
    ("r06-022-04-00", "ok", (310, 1500, 30, 40), '"', '"', "ok"),
    ("r06-022-04-01", "ok", (360, 1500, 180, 75), "NN", "nimbus", "ok"),
    ("m02-048-00-00", "ok", (320, 700, 190, 80), "NN", "orphan", "ok"),
]
HEADER = """#--- words.txt ---------------------------------------------------------------#
#
# iam database word information
#
# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
#
#     a01-000u-00-00  -> word id for line 00 in form a01-000u
#     ok              -> result of word segmentation
#     154             -> graylevel to binarize the line containing this word
#     1               -> number of components for this word
#     408 768 27 51   -> bounding box around this word in x,y,w,h format
#     AT              -> the grammatical tag for this word, see the
#     A               -> the transcription for this word
#
"""
MALFORMED = [
    "a01-000u-00-09 ok 154 507\n",  # too few fields
    "b04-020-01-05 maybe 154 1 2 3 4 NN word\n",  # unknown status
]
OFFICIAL = {
    "trainset.txt": ["a01-000u-00", "a01-000u-01", "r06-022-03", "r06-022-04"],
    "validationset1.txt": ["b04-020-00"],
    "validationset2.txt": ["b04-020-01"],
    "testset.txt": ["a01-117-05"],
}  # m02-048-00 is in no list
AACHEN = {
    "train.uttlist": ["a01-000u", "r06-022"],  # form ids
    "validation.uttlist": ["b04-020-00", "b04-020-01"],  # line ids are accepted too
    "test.uttlist": ["a01-117", "m02-048"],
}


def scribble(seed: int, text: str) -> Image.Image:
  rng = np.random.default_rng(seed)
  w, h = 8 * len(text) + 6, 20
  im = Image.new("L", (w, h), 255)
  draw = ImageDraw.Draw(im)
  for x in range(3, w - 6, 8):
    pts = [(x + int(rng.integers(0, 7)), int(rng.integers(4, h - 4))) for _ in range(3)]
    draw.line(pts, fill=int(rng.integers(0, 60)), width=2)
  return im


def main():
  if OUT.exists():
    shutil.rmtree(OUT)
  (OUT / "ascii").mkdir(parents=True)
  lines = [HEADER]
  for wid, status, (x, y, w, h), tag, text, image in WORDS:
    lines.append(f"{wid} {status} 154 {x} {y} {w} {h} {tag} {text}\n")
    path = OUT / "words" / wid[:3] / wid.rsplit("-", 2)[0] / f"{wid}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if image == "ok":
      scribble(zlib.crc32(wid.encode()), text).save(path, optimize=True)
    elif image == "empty":
      path.write_bytes(b"")
  lines[3:3] = MALFORMED
  (OUT / "ascii" / "words.txt").write_text("".join(lines))

  forms = ["#--- forms.txt ---\n#\n# format: a01-000u 000 2 prt 7 5 52 36\n#\n"]
  forms += [f"{f} {w} 2 prt 7 5 52 36\n" for f, w in FORMS.items()]
  forms.append("broken-line-without-fields\n")
  (OUT / "ascii" / "forms.txt").write_text("".join(forms))

  by_line = {}
  for wid, status, _, tag, text, _ in WORDS:
    by_line.setdefault(wid.rsplit("-", 1)[0], []).append((wid, status, tag, text))
  (OUT / "ascii" / "lines.txt").write_text("#--- lines.txt ---\n" + "".join(
      f"{lid} ok 154 {len(ws)} 300 700 1500 90 {'|'.join(t for *_, t in ws)}\n"
      for lid, ws in by_line.items()))

  (OUT / "xml").mkdir()
  for form, writer in FORMS.items():
    body = []
    for lid, ws in by_line.items():
      if not lid.startswith(form + "-"):
        continue
      text = html.escape(" ".join(t for *_, t in ws), quote=True)
      body.append(f'<line id="{lid}" text="{text}">')
      body += [f'<word id="{wid}" tag="{html.escape(tag, quote=True)}" '
               f'text="{html.escape(t, quote=True)}"/>' for wid, _, tag, t in ws]
      body.append("</line>")
    (OUT / "xml" / f"{form}.xml").write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f'<form created="2002-06-14" height="3542" id="{form}" writer-id="{writer}" width="2479">\n'
        "<handwritten-part>\n" + "\n".join(body) + "\n</handwritten-part>\n</form>\n")

  task = OUT / "largeWriterIndependentTextLineRecognitionTask"
  task.mkdir()
  for name, ids in OFFICIAL.items():
    (task / name).write_text("".join(i + "\n" for i in ids))
  (OUT / "aachen").mkdir()
  for name, ids in AACHEN.items():
    (OUT / "aachen" / name).write_text("".join(i + "\n" for i in ids))
  (OUT / "README.md").write_text(
      "Fake IAM tree for tests (synthetic images, invented words, real-looking ids). "
      "Regenerate with datasets/iam/make_fake_data.py.\n")
  print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files under {OUT}")


if __name__ == "__main__":
  main()
