"""Helpers shared by the handwriting TFDS builders in `datasets/<name>/`.

This file is NOT imported by package name: `datasets/` is not a Python package (the name would clash
with Hugging Face `datasets`). Each builder loads it by file path, relative to its own `__file__`
(see `_load_shared_utils` in the builders), which works the same way for
`tfds build datasets/<name>` (TFDS imports the builder as `<name>.<name>_dataset_builder` with
`datasets/` temporarily on sys.path) and for loading a builder by path with importlib.

Dependencies: Python standard library, numpy, Pillow, absl (a TFDS dependency), TFDS' `epath`.
"""

from __future__ import annotations

import collections
import io
import os
import unicodedata
from typing import Iterable, Sequence

from absl import logging
import numpy as np
from PIL import Image, ImageFile

# Environment variable: "1"/"true"/"yes" makes every builder fail on the first malformed metadata line
# or unreadable image instead of skipping and counting it.
STRICT_ENV = "SCRABBLEGAN_TFDS_STRICT"
TARGET_HEIGHT = 32
MAX_SHOWN = 5  # how many skipped items are shown in the log, per reason

# Large scans (CVL pages are big) would otherwise trigger Pillow's decompression-bomb guard.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False


def strict_from_env() -> bool:
  return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def resolve_strict(explicit: bool | None) -> bool:
  """A constructor kwarg wins over the environment variable."""
  return strict_from_env() if explicit is None else bool(explicit)


def nfc(text: str) -> str:
  return unicodedata.normalize("NFC", text)


class MalformedDataError(ValueError):
  """Raised in strict mode for the first skipped item."""


class MissingFilesError(FileNotFoundError):
  """The manual dir lacks required files; the message lists all of them at once."""


class SkipCounter:
  """Counts skipped items per reason, keeps the first few, logs a summary; strict mode raises."""

  def __init__(self, dataset: str, *, strict: bool):
    self.dataset = dataset
    self.strict = strict
    self.counts: collections.Counter[str] = collections.Counter()
    self.examples: dict[str, list[str]] = collections.defaultdict(list)

  def skip(self, reason: str, detail: str) -> None:
    if self.strict:
      raise MalformedDataError(
          f"{self.dataset}: {reason}: {detail} (strict mode: unset {STRICT_ENV} or pass "
          "strict=False to skip and count such items instead)"
      )
    self.counts[reason] += 1
    if len(self.examples[reason]) < MAX_SHOWN:
      self.examples[reason].append(detail)

  @property
  def total(self) -> int:
    return sum(self.counts.values())

  def summary(self, where: str = "") -> str:
    where = f" ({where})" if where else ""
    if not self.counts:
      return f"{self.dataset}{where}: nothing skipped"
    lines = [f"{self.dataset}{where}: skipped {self.total} item(s)"]
    for reason, n in sorted(self.counts.items()):
      shown = "; ".join(self.examples[reason])
      lines.append(f"  {n} x {reason}, e.g. {shown}")
    return "\n".join(lines)

  def report(self, where: str = "") -> None:
    if self.counts:
      logging.warning("%s", self.summary(where))
    else:
      logging.info("%s", self.summary(where))


def describe_dir(root, *, max_entries: int = 40, depth: int = 2) -> str:
  """A short listing of what is in `root` (for error messages)."""
  root = _path(root)
  if not root.exists():
    return f"{root} does not exist"
  if not root.is_dir():
    return f"{root} is not a directory"
  out: list[str] = []

  def walk(d, level):
    try:
      entries = sorted(d.iterdir(), key=lambda p: p.name)
    except OSError as e:  # pragma: no cover - permissions
      out.append(f"  {d}: unreadable ({e})")
      return
    for p in entries:
      if len(out) >= max_entries:
        return
      rel = p.relative_to(root)
      if p.is_dir():
        n = sum(1 for _ in p.iterdir())
        out.append(f"  {rel}/ ({n} entries)")
        if level + 1 < depth:
          walk(p, level + 1)
      else:
        out.append(f"  {rel}")

  walk(root, 0)
  if not out:
    return f"{root} is empty"
  if len(out) >= max_entries:
    out.append("  ...")
  return f"found in {root}:\n" + "\n".join(out)


def raise_missing(dataset: str, manual_dir, missing: Sequence[str], instructions: str) -> None:
  """Raises one MissingFilesError listing every missing path and what the manual dir holds."""
  if not missing:
    return
  lines = [f"{dataset}: {len(missing)} required path(s) missing from the manual dir {manual_dir}:"]
  lines += [f"  - {m}" for m in missing]
  lines.append(describe_dir(manual_dir))
  lines.append("Expected layout:\n" + instructions.strip())
  raise MissingFilesError("\n".join(lines))


def find_root(manual_dir, markers: Sequence[str], *, max_depth: int = 2):
  """The first folder at or below `manual_dir` (breadth first) containing all `markers`.

  Lets users point --manual_dir at the dataset folder itself or at a parent holding it.
  Returns None when nothing matches.
  """
  manual_dir = _path(manual_dir)
  level = [manual_dir]
  for _ in range(max_depth + 1):
    nxt = []
    for d in level:
      if all((d / m).exists() for m in markers):
        return d
      try:
        nxt.extend(sorted((p for p in d.iterdir() if p.is_dir()), key=lambda p: p.name))
      except OSError:
        pass
    level = nxt
  return None


def read_text(path) -> str:
  """Reads a text file as UTF-8 (BOM stripped); falls back to cp1252 with a warning."""
  data = _path(path).read_bytes()
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError:
    logging.warning("%s is not valid UTF-8, decoding it as cp1252", path)
    return data.decode("cp1252")


def load_grayscale(path, *, height: int | None = None) -> np.ndarray:
  """Reads an image file as a H x W x 1 uint8 array (white background).

  Handles 0-byte files (ValueError), RGB(A), LA, palette (with transparency), 1-bit, 16-bit and CMYK
  images. Transparent pixels are composited over white. With `height`, the image is resized to that
  height keeping the aspect ratio (width >= 1) with Lanczos resampling.
  """
  data = _path(path).read_bytes()
  if not data:
    raise ValueError("0-byte file")
  return decode_grayscale(data, height=height)


def decode_grayscale(data: bytes, *, height: int | None = None) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as im:
    im.load()
    gray = to_gray(im)
  if height:
    gray = resize_to_height(gray, height)
  arr = np.asarray(gray, dtype=np.uint8)
  if arr.ndim != 2 or arr.size == 0:
    raise ValueError(f"unexpected decoded shape {arr.shape}")
  return arr[:, :, None]


def to_gray(im: Image.Image) -> Image.Image:
  """Any Pillow image -> mode "L", alpha composited over white."""
  mode = im.mode
  if mode == "P":
    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    mode = im.mode
  if mode in ("RGBA", "LA", "RGBa", "La", "PA"):
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("L")
  if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
    arr = np.asarray(im, dtype=np.float64)
    top = 65535.0 if arr.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
  if mode == "CMYK":
    im = im.convert("RGB")
  if mode != "L":
    im = im.convert("L")
  return im


def resize_to_height(gray: Image.Image, height: int) -> Image.Image:
  w, h = gray.size
  if h == height:
    return gray
  new_w = max(1, int(round(w * height / h)))
  return gray.resize((new_w, height), Image.Resampling.LANCZOS)


def image_features(tfds_module, extra: dict | None = None):
  """The feature dict common to all handwriting builders."""
  feats = {
      "image": tfds_module.features.Image(shape=(None, None, 1), encoding_format="png"),
      "text": tfds_module.features.Text(),
      "writer_id": tfds_module.features.Text(),
      "id": tfds_module.features.Text(),
  }
  if extra:
    feats.update(extra)
  return tfds_module.features.FeaturesDict(feats)


def list_files(root, suffixes: Sequence[str] = ()) -> list:
  """All files under `root` (recursive, sorted), optionally only those with the given suffixes
  (case-insensitive, e.g. (".tif", ".tiff")). Local folders use os.walk (fast for ~100k files)."""
  suffixes = tuple(s.lower() for s in suffixes)
  root_s = os.fspath(root)
  out = []
  if "://" not in root_s:
    for dirpath, dirnames, filenames in os.walk(root_s):
      dirnames.sort()
      for f in filenames:
        if not suffixes or f.lower().endswith(suffixes):
          out.append(os.path.join(dirpath, f))
    return [_path(p) for p in sorted(out)]
  stack = [_path(root)]
  while stack:
    d = stack.pop()
    for p in d.iterdir():
      if p.is_dir():
        stack.append(p)
      elif not suffixes or p.name.lower().endswith(suffixes):
        out.append(p)
  return sorted(out, key=str)


def _path(p):
  from etils import epath  # a TFDS dependency

  return epath.Path(p)


def nonblank_lines(text: str) -> Iterable[tuple[int, str]]:
  """(1-based line number, line without line end) for every line that is not blank."""
  for i, line in enumerate(text.split("\n"), 1):
    line = line.rstrip("\r")
    if line.strip():
      yield i, line
