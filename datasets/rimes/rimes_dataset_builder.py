"""RIMES (ICDAR 2011 isolated words) as a TFDS builder (manual download).

Build: `tfds build datasets/rimes --config=h32 --manual_dir=~/rimes`.
See README.md next to this file for the expected files, path resolution and the strict option.
"""

import collections
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

NAME = "rimes"
HOMEPAGE = "https://teklia.com/research/rimes-database/"

# groundtruth_training_icdar2011.txt, ground_truth_validation_icdar2011.txt,
# grount_truth_test_icdar2011.txt, ... (the known spellings; case-insensitive).
GT_RE = re.compile(r"^(?:ground|grount|groud)[_ -]?truth[_ -]?(training|train|validation|valid|test)"
                   r"[_ -]?icdar[_ -]?2011\.txt$", re.IGNORECASE)
GT_SPLIT = {"training": "train", "train": "train", "validation": "validation",
            "valid": "validation", "test": "test"}
CANONICAL_GT = {"train": "groundtruth_training_icdar2011.txt",
                "validation": "ground_truth_validation_icdar2011.txt",
                "test": "ground_truth_test_icdar2011.txt"}
IMAGE_DIRS = {"train": "trainingsnippets_icdar/training_WR",
              "validation": "validationsnippets_icdar/testdataset_ICDAR",
              "test": "data_test"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
_LINE_RE = re.compile(r"^\s*(.+?\.(?:png|jpe?g|tiff?|bmp|gif))(?:\s+(.*?))?\s*$", re.IGNORECASE)


def parse_gt_line(line):
  """`<relative image path> <word>` -> (normalised path, word) or None (no label / no path).

  The path may use backslashes, `./`, a drive letter or a leading slash; it may contain spaces as long
  as it ends with an image extension. The word is NFC-normalised.
  """
  m = _LINE_RE.match(line)
  if m:
    path, word = m.group(1), m.group(2) or ""
  else:
    parts = line.strip().split(None, 1)
    if len(parts) != 2:
      return None
    path, word = parts
  word = hw.nfc(word.strip())
  if not word:
    return None
  return normalise_path(path), word


def normalise_path(path):
  p = path.strip().replace("\\", "/")
  p = re.sub(r"^[A-Za-z]:/", "", p)  # drive letter
  p = re.sub(r"/+", "/", p)
  while p.startswith("./"):
    p = p[2:]
  return p.lstrip("/")


def sample_id(rel_path):
  """Image path relative to the root, without extension: `data_test/test_0001`."""
  return rel_path.rsplit(".", 1)[0]


class ImageIndex:
  """All image files under the root, looked up by the longest matching path suffix.

  Resolves gt paths relative to the gt file, the image folder, its parent or the root, with
  backslashes or absolute prefixes, without one stat call per line.
  """

  def __init__(self, root):
    self.root = root
    self.by_name = collections.defaultdict(list)
    for path in hw.list_files(root, IMAGE_SUFFIXES):
      rel = str(path.relative_to(root)).replace("\\", "/")
      self.by_name[rel.rsplit("/", 1)[-1].lower()].append((rel.lower().split("/"), path))

  def __len__(self):
    return sum(len(v) for v in self.by_name.values())

  def resolve(self, norm_path, prefer_dir=""):
    """The file for a normalised gt path, or None (not found, or ambiguous).

    Candidates share the file name (case-insensitive); those under `prefer_dir` (the split's image
    folder) win; among several, the one sharing the longest trailing path with the gt path wins.
    """
    parts = norm_path.lower().split("/")
    cands = self.by_name.get(parts[-1], [])
    if prefer_dir:
      pref = prefer_dir.lower().split("/")
      local = [c for c in cands if c[0][:len(pref)] == pref]
      if local:
        return self._best(parts, local)
    return self._best(parts, cands)

  @staticmethod
  def _best(parts, cands):
    if len(cands) <= 1:
      return cands[0][1] if cands else None

    def common_suffix(item):
      rel_parts = item[0]
      n = 0
      while n < min(len(parts), len(rel_parts)) and parts[-1 - n] == rel_parts[-1 - n]:
        n += 1
      return n

    ranked = sorted(cands, key=common_suffix, reverse=True)
    if common_suffix(ranked[0]) == common_suffix(ranked[1]):
      return None  # ambiguous
    return ranked[0][1]


def find_gt_files(manual_dir, max_depth=2):
  """{split: [paths]} of ground-truth files at or below manual_dir (breadth first)."""
  found = collections.defaultdict(list)
  level = [tfds.core.Path(manual_dir)]
  for _ in range(max_depth + 1):
    nxt = []
    for d in level:
      try:
        entries = sorted(d.iterdir(), key=lambda p: p.name)
      except OSError:
        continue
      for p in entries:
        if p.is_dir():
          nxt.append(p)
        else:
          m = GT_RE.match(p.name)
          if m:
            found[GT_SPLIT[m.group(1).lower()]].append(p)
    level = nxt
  return found


@dataclasses.dataclass
class RimesConfig(tfds.core.BuilderConfig):
  height: int = 0  # 0 keeps the original resolution; 32 resizes to height 32


class Builder(tfds.core.GeneratorBasedBuilder,
              skip_registration=NAME in tfds.core.registered._DATASET_REGISTRY):  # pylint: disable=protected-access
  """RIMES ICDAR 2011 words: grayscale images, French transcriptions."""

  name = NAME
  pkg_dir_path = tfds.core.Path(__file__).parent
  code_path = tfds.core.Path(__file__)

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: ICDAR 2011 word splits, h32."}
  BUILDER_CONFIGS = [
      RimesConfig(name="icdar2011", height=0,
                  description="ICDAR 2011 word recognition splits; original resolution"),
      RimesConfig(name="h32", height=hw.TARGET_HEIGHT,
                  description="ICDAR 2011 word recognition splits; resized to height 32"),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "icdar2011"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Request the RIMES database (ICDAR 2011 word recognition set) at
  {HOMEPAGE}
and unpack everything into one folder, the --manual_dir (or a folder directly inside it):
  <manual_dir>/groundtruth_training_icdar2011.txt       (also ground_truth_..., grount_truth_...)
  <manual_dir>/ground_truth_validation_icdar2011.txt
  <manual_dir>/ground_truth_test_icdar2011.txt          (often grount_truth_test_icdar2011.txt)
  <manual_dir>/trainingsnippets_icdar/training_WR/...    training images
  <manual_dir>/validationsnippets_icdar/testdataset_ICDAR/...  validation images
  <manual_dir>/data_test/...                             test images
Each ground-truth line: `<relative image path> <word>` (UTF-8, BOM allowed).
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

  def _locate(self, manual_dir):
    gt = find_gt_files(manual_dir)
    missing, chosen = [], {}
    for split in ("train", "validation", "test"):
      if not gt.get(split):
        missing.append(f"{manual_dir}/{CANONICAL_GT[split]} (or a known variant of the name)")
        continue
      chosen[split] = gt[split][0]
      if len(gt[split]) > 1:
        logging.warning("rimes: several %s ground-truth files %s; using %s", split,
                        [str(p) for p in gt[split]], chosen[split])
    # The root is the folder holding the training ground truth (or the manual dir).
    root = chosen["train"].parent if "train" in chosen else tfds.core.Path(manual_dir)
    for split, rel in IMAGE_DIRS.items():
      if not (root / rel).is_dir():
        missing.append(f"{root}/{rel}/")
    hw.raise_missing(NAME, manual_dir, missing, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return root, chosen

  def _split_generators(self, dl_manager):
    strict = hw.resolve_strict(self._strict)
    skips = hw.SkipCounter(NAME, strict=strict)
    root, gt_files = self._locate(dl_manager.manual_dir)
    index = ImageIndex(root)
    logging.info("rimes: root %s, %d image files", root, len(index))
    splits = {}
    for split, gt_path in gt_files.items():
      logging.info("rimes: %s ground truth: found %s", split, gt_path)
      rows, seen = [], set()
      for line_no, line in hw.nonblank_lines(hw.read_text(gt_path)):
        where = f"{gt_path.name}:{line_no}: {line[:80]!r}"
        parsed = parse_gt_line(line)
        if parsed is None:
          skips.skip("malformed ground-truth line (no path or no word)", where)
          continue
        norm, word = parsed
        path = index.resolve(norm, prefer_dir=IMAGE_DIRS[split])
        if path is None:
          skips.skip("image not found (or ambiguous)", where)
          continue
        sid = sample_id(str(path.relative_to(root)).replace("\\", "/"))
        if sid in seen:
          skips.skip("duplicate image", where)
          continue
        seen.add(sid)
        rows.append({"path": path, "text": word, "id": sid, "where": where})
      splits[split] = rows
    skips.report("ground truth")
    logging.info("rimes: samples per split (before image checks): %s",
                 {k: len(v) for k, v in splits.items()})
    return {split: self._generate_examples(rows, split, strict) for split, rows in splits.items()}

  def _generate_examples(self, rows, split, strict):
    skips = hw.SkipCounter(NAME, strict=strict)
    height = self.builder_config.height or None
    for r in rows:
      try:
        image = hw.load_grayscale(r["path"], height=height)
      except Exception as e:  # pylint: disable=broad-except
        skips.skip("unreadable image", f"{r['where']} ({e})")
        continue
      # The ICDAR 2011 word ground truth carries no writer information.
      yield r["id"], {"image": image, "text": r["text"], "writer_id": "", "id": r["id"]}
    skips.report(split)
