"""DHSD (German Handwriting Street-name Dataset) word images, as a TFDS builder.

Build: `tfds build datasets/dhsd [--config=h32] [--manual_dir=<unpacked DHSD>]`.
See README.md next to this file for configs, split rules and the strict option.
"""


import csv
import dataclasses
import importlib.util
import io
import pathlib
import re
import sys
import zlib

from absl import logging
import tensorflow_datasets as tfds


def _load_shared_utils():
  """Loads datasets/_shared/hw_builder_utils.py by file path (datasets/ is not a package)."""
  path = pathlib.Path(__file__).resolve().parent.parent / "_shared" / "hw_builder_utils.py"
  name = "scrabblegan_hw_builder_utils_%08x" % zlib.crc32(str(path).encode())
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
      spec.loader.exec_module(module)
    except BaseException:
      del sys.modules[name]
      raise
  return sys.modules[name]


hw = _load_shared_utils()

NAME = "dhsd"
# Zenodo record of the dataset (README.md of the dataset, DOI 10.5281/zenodo.18743313).
DOWNLOAD_URL = "https://zenodo.org/record/18743313/files/DHSD.zip"
HOMEPAGE = "https://doi.org/10.5281/zenodo.18743313"

# writer_independent: writer_id % 10 == 0 -> test, == 5 -> validation, else train (any integer id,
# including the withheld writers 31-37; non-integer ids use crc32(id) instead of the id).
TEST_REMAINDER = 0
VALIDATION_REMAINDER = 5
# original: rows of train.csv with crc32(file_name) % 10 == 0 form the validation split.
ORIGINAL_VALIDATION_MOD = 10

_FILE_RE = re.compile(r"^german_hw_data/writer(\d+)/(\d+)_(\d+)\.png$")


def writer_split(writer_id: str) -> str:
  """The writer_independent split of a writer id (a pure function of the id)."""
  try:
    key = int(writer_id.strip())
  except ValueError:
    key = zlib.crc32(writer_id.strip().encode("utf-8"))
  r = key % 10
  if r == TEST_REMAINDER:
    return "test"
  if r == VALIDATION_REMAINDER:
    return "validation"
  return "train"


def original_train_row_split(file_name: str) -> str:
  """train or validation for a row of the dataset's own train.csv."""
  key = zlib.crc32(normalise_file_name(file_name).encode("utf-8"))
  return "validation" if key % ORIGINAL_VALIDATION_MOD == 0 else "train"


def normalise_file_name(file_name: str) -> str:
  f = file_name.strip().replace("\\", "/")
  while f.startswith("./"):
    f = f[2:]
  return f


def parse_csv(text: str, source: str, skips) -> list[dict]:
  """Rows of a DHSD csv (header file_name,text,writer_id; CRLF; quoted fields) as dicts.

  Malformed rows (wrong number of fields, empty file name/text/writer) are skipped and counted.
  """
  reader = csv.reader(io.StringIO(text, newline=""))
  rows = []
  header = None
  for fields in reader:
    if not fields or all(not f.strip() for f in fields):
      continue
    if header is None:
      header = [h.strip().lstrip("\ufeff").lower() for h in fields]
      missing = {"file_name", "text", "writer_id"} - set(header)
      if missing:
        raise ValueError(f"{source}: header {fields} lacks columns {sorted(missing)}")
      continue
    line_no = reader.line_num
    if len(fields) != len(header):
      skips.skip("malformed csv row", f"{source}:{line_no}: {fields!r}")
      continue
    row = dict(zip(header, fields))
    file_name = normalise_file_name(row["file_name"])
    label = hw.nfc(row["text"])
    writer = row["writer_id"].strip()
    if not file_name or not label.strip() or not writer:
      skips.skip("malformed csv row", f"{source}:{line_no}: {fields!r}")
      continue
    rows.append({"file_name": file_name, "text": label, "writer_id": writer})
  if header is None:
    raise ValueError(f"{source} is empty")
  return rows


def sample_id(file_name: str) -> str:
  """`german_hw_data/writer1/1_0.png` -> `1_0`."""
  return pathlib.PurePosixPath(file_name).stem


@dataclasses.dataclass
class DhsdConfig(tfds.core.BuilderConfig):
  split_scheme: str = "writer_independent"  # or "original"
  height: int = 0  # 0 keeps 256 x 64; 32 resizes to height 32


def _configs():
  """`writer_independent` (default), `h32` (= writer_independent at height 32), `original`,
  `original_h32`. Every builder of the project names its default variant at height 32 `h32`."""
  wi = "writers split by id: id % 10 == 0 test, == 5 validation, else train"
  orig = ("the dataset's train.csv / test.csv; validation = train.csv rows with "
          "crc32(file_name) % 10 == 0")
  full, small = "; original 256 x 64 resolution", "; resized to height 32 (keeping aspect)"
  return [
      DhsdConfig(name="writer_independent", split_scheme="writer_independent", height=0,
                 description=wi + full),
      DhsdConfig(name="h32", split_scheme="writer_independent", height=hw.TARGET_HEIGHT,
                 description=wi + small),
      DhsdConfig(name="original", split_scheme="original", height=0, description=orig + full),
      DhsdConfig(name="original_h32", split_scheme="original", height=hw.TARGET_HEIGHT,
                 description=orig + small),
  ]


class Builder(tfds.core.GeneratorBasedBuilder,
              skip_registration=NAME in tfds.core.registered._DATASET_REGISTRY):  # pylint: disable=protected-access
  """DHSD word images: grayscale over white, text NFC, writer ids."""

  name = NAME
  # Metadata (README.md, CITATIONS.bib) and code path are this folder, whatever the module name.
  pkg_dir_path = tfds.core.Path(__file__).parent
  code_path = tfds.core.Path(__file__)

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: writer_independent and original splits, h32 variants."}
  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "writer_independent"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Optional: DHSD is downloaded from Zenodo ({DOWNLOAD_URL}) when --manual_dir is not given.
To build offline, unzip DHSD.zip and pass the unpacked folder (or its parent) as --manual_dir:
  <manual_dir>/data.csv            header file_name,text,writer_id (writer_independent config)
  <manual_dir>/train.csv           (original config)
  <manual_dir>/test.csv            (original config)
  <manual_dir>/german_hw_data/writer<N>/<N>_<k>.png
"""

  def __init__(self, *, strict: bool | None = None, **kwargs):
    super().__init__(**kwargs)
    self._strict = strict
    self._original_state["strict"] = strict

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=hw.image_features(tfds),
        supervised_keys=("image", "text"),
        homepage=HOMEPAGE,
    )

  def _find_root(self, dl_manager):
    """Unpacked DHSD from the manual dir when it has the files, else from the Zenodo archive."""
    markers = self._markers()
    manual_dir = None
    try:
      manual_dir = dl_manager.manual_dir
    except (AssertionError, ValueError):  # no/empty manual dir
      manual_dir = None
    if manual_dir is not None:
      root = hw.find_root(manual_dir, markers)
      if root is not None:
        logging.info("dhsd: reading the manual dir %s (no download)", root)
        return root
      logging.warning("dhsd: manual dir %s lacks %s; downloading %s",
                      manual_dir, markers, DOWNLOAD_URL)
    extracted = dl_manager.download_and_extract(DOWNLOAD_URL)
    root = hw.find_root(extracted, markers, max_depth=3)
    if root is None:
      hw.raise_missing(NAME, extracted, list(markers), self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return root

  def _markers(self):
    if self.builder_config.split_scheme == "original":
      return ("train.csv", "test.csv", "german_hw_data")
    return ("data.csv", "german_hw_data")

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    if cfg.split_scheme not in ("writer_independent", "original"):
      raise ValueError(f"unknown split_scheme {cfg.split_scheme!r}")
    strict = hw.resolve_strict(self._strict)
    skips = hw.SkipCounter(NAME, strict=strict)
    root = self._find_root(dl_manager)
    splits = {"train": [], "validation": [], "test": []}
    if cfg.split_scheme == "writer_independent":
      for row in parse_csv(hw.read_text(root / "data.csv"), "data.csv", skips):
        splits[writer_split(row["writer_id"])].append(row)
    else:
      for row in parse_csv(hw.read_text(root / "train.csv"), "train.csv", skips):
        splits[original_train_row_split(row["file_name"])].append(row)
      splits["test"] = parse_csv(hw.read_text(root / "test.csv"), "test.csv", skips)
    # Duplicated file names (within or across splits) would leak or break keys: keep the first.
    seen = set()
    for split in ("train", "validation", "test"):
      kept = []
      for row in splits[split]:
        if row["file_name"] in seen:
          skips.skip("duplicate file_name", row["file_name"])
          continue
        seen.add(row["file_name"])
        kept.append(row)
      splits[split] = kept
    skips.report("metadata")
    logging.info("dhsd/%s: samples per split (before image checks): %s", cfg.name,
                 {k: len(v) for k, v in splits.items()})
    return {
        split: self._generate_examples(root, rows, split, strict)
        for split, rows in splits.items()
    }

  def _generate_examples(self, root, rows, split, strict):
    skips = hw.SkipCounter(NAME, strict=strict)
    height = self.builder_config.height or None
    for row in rows:
      path = root / row["file_name"]
      try:
        image = hw.load_grayscale(path, height=height)
      except FileNotFoundError:
        skips.skip("missing image", row["file_name"])
        continue
      except Exception as e:  # pylint: disable=broad-except
        skips.skip("unreadable image", f"{row['file_name']} ({e})")
        continue
      sid = sample_id(row["file_name"])
      yield sid, {"image": image, "text": row["text"], "writer_id": row["writer_id"], "id": sid}
    skips.report(split)
