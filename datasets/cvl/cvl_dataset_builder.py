"""CVL Database 1.1 word images, as a TFDS builder (manual download).

Build: `tfds build datasets/cvl --config=h32 --manual_dir=~/cvl-database-1-1`.
See README.md next to this file for configs, split rules and the strict option.
"""

import dataclasses
import importlib.util
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

NAME = "cvl"
HOMEPAGE = ("https://cvl.tuwien.ac.at/research/cvl-databases/an-off-line-database-for-writer-"
            "retrieval-writer-identification-and-word-spotting/")
GERMAN_PAGE = 6
# Validation writers: the highest-numbered 1/9 of the trainset writers (rounded, at least 1).
VALIDATION_FRACTION_DIVISOR = 9

# <writer>-<page>-<line>-<word>-<TEXT>.tif ; TEXT may itself contain "-".
FILE_RE = re.compile(r"^(\d+)-(\d+)-(\d+)-(\d+)-(.*)\.tiff?$", re.IGNORECASE)
SETS = ("trainset", "testset")


def parse_file_name(name):
  """`0050-8-7-4-Usher.tif` -> dict(writer="0050", page=8, line=7, word=4, text="Usher"), or None."""
  m = FILE_RE.match(name)
  if not m or not m.group(5).strip():
    return None
  return {
      "writer": m.group(1),
      "page": int(m.group(2)),
      "line": int(m.group(3)),
      "word": int(m.group(4)),
      "text": hw.nfc(m.group(5)),
      "id": hw.nfc(name[: name.rfind(".")]),
  }


def validation_writers(train_writers):
  """The deterministic validation writers carved from the trainset writers."""
  writers = sorted(set(train_writers), key=lambda w: (int(w), w))
  if len(writers) < 2:
    return set()
  n_val = max(1, round(len(writers) / VALIDATION_FRACTION_DIVISOR))
  return set(writers[-n_val:])


@dataclasses.dataclass
class CvlConfig(tfds.core.BuilderConfig):
  include_german: bool = False  # page 6 (Goethe, German)
  height: int = 0  # 0 keeps the original resolution; 32 resizes to height 32


def _configs():
  """`english` (default), `h32` (= english at height 32), `all`, `all_h32`."""
  en = "pages 1, 2, 3, 4, 7, 8 (English; German page 6 excluded)"
  al = "all pages including the German page 6"
  full, small = "; original resolution", "; resized to height 32 (keeping aspect)"
  return [
      CvlConfig(name="english", include_german=False, height=0, description=en + full),
      CvlConfig(name="h32", include_german=False, height=hw.TARGET_HEIGHT, description=en + small),
      CvlConfig(name="all", include_german=True, height=0, description=al + full),
      CvlConfig(name="all_h32", include_german=True, height=hw.TARGET_HEIGHT,
                description=al + small),
  ]


class Builder(tfds.core.GeneratorBasedBuilder,
              skip_registration=NAME in tfds.core.registered._DATASET_REGISTRY):  # pylint: disable=protected-access
  """CVL 1.1 word images: grayscale, label from the file name, writer ids."""

  name = NAME
  pkg_dir_path = tfds.core.Path(__file__).parent
  code_path = tfds.core.Path(__file__)

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: english/all, h32 variants, writer-disjoint validation."}
  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "english"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Register and download the CVL Database 1.1 from
  {HOMEPAGE}
unzip cvl-database-1-1.zip and pass the `cvl-database-1-1` folder (or its parent) as --manual_dir:
  <manual_dir>/trainset/words/<writer>/<writer>-<page>-<line>-<word>-<TEXT>.tif
  <manual_dir>/testset/words/<writer>/<writer>-<page>-<line>-<word>-<TEXT>.tif
(other folders of the distribution, e.g. pages/, lines/, xml/, are not needed)
"""

  def __init__(self, *, strict=None, **kwargs):
    super().__init__(**kwargs)
    self._strict = strict
    self._original_state["strict"] = strict

  def _info(self):
    return self.dataset_info_from_configs(
        features=hw.image_features(tfds),
        supervised_keys=("image", "text"),
        homepage=HOMEPAGE,
    )

  def _find_root(self, manual_dir):
    root = hw.find_root(manual_dir, ["trainset/words", "testset/words"])
    if root is None:
      root = (hw.find_root(manual_dir, ["trainset"]) or hw.find_root(manual_dir, ["testset"])
              or tfds.core.Path(manual_dir))
    missing = [str(root / s / "words") + "/" for s in SETS if not (root / s / "words").is_dir()]
    hw.raise_missing(NAME, manual_dir, missing, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return root

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    strict = hw.resolve_strict(self._strict)
    skips = hw.SkipCounter(NAME, strict=strict)
    root = self._find_root(dl_manager.manual_dir)
    logging.info("cvl: reading %s", root)
    samples = {}
    seen_ids = set()
    for set_name in SETS:
      entries = []
      words_dir = root / set_name / "words"
      for path in hw.list_files(words_dir, (".tif", ".tiff")):
        rel = f"{set_name}/words/{path.relative_to(words_dir)}"
        meta = parse_file_name(path.name)
        if meta is None:
          skips.skip("unparseable file name", rel)
          continue
        if meta["id"] in seen_ids:
          skips.skip("duplicate word id", rel)
          continue
        seen_ids.add(meta["id"])
        meta["path"] = path
        meta["rel"] = rel
        entries.append(meta)
      samples[set_name] = entries
      if not entries:
        skips.skip("no word images", f"{words_dir}")
    val_writers = validation_writers(m["writer"] for m in samples["trainset"])
    logging.info("cvl: validation writers (from trainset): %s", sorted(val_writers))

    def keep(m):
      return cfg.include_german or m["page"] != GERMAN_PAGE

    splits = {
        "train": [m for m in samples["trainset"] if keep(m) and m["writer"] not in val_writers],
        "validation": [m for m in samples["trainset"] if keep(m) and m["writer"] in val_writers],
        "test": [m for m in samples["testset"] if keep(m)],
    }
    skips.report("file names")
    logging.info("cvl/%s: samples per split (before image checks): %s", cfg.name,
                 {k: len(v) for k, v in splits.items()})
    return {split: self._generate_examples(rows, split, strict) for split, rows in splits.items()}

  def _generate_examples(self, rows, split, strict):
    skips = hw.SkipCounter(NAME, strict=strict)
    height = self.builder_config.height or None
    for m in rows:
      try:
        image = hw.load_grayscale(m["path"], height=height)
      except Exception as e:  # pylint: disable=broad-except
        skips.skip("unreadable image", f"{m['rel']} ({e})")
        continue
      yield m["id"], {"image": image, "text": m["text"], "writer_id": m["writer"], "id": m["id"]}
    skips.report(split)
