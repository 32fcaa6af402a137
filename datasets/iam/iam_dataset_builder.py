"""IAM Handwriting Database word images, as a TFDS builder (manual download).

Build: `tfds build datasets/iam --config=h32 --manual_dir=~/iam`.
See README.md next to this file for the expected files, configs, split rules and the strict option.
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

NAME = "iam"
HOMEPAGE = "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database"
SPLITS = ("train", "validation", "test")

WORD_ID_RE = re.compile(r"^([a-z0-9]+)-([a-z0-9]+)-(\d+)-(\d+)$")
INT_RE = re.compile(r"^-?\d+$")
# Official "largeWriterIndependentTextLineRecognitionTask" line lists, searched in these folders.
OFFICIAL_DIRS = ("", "largeWriterIndependentTextLineRecognitionTask", "splits")
OFFICIAL_FILES = {
    "train": ("trainset.txt",),
    "validation": ("validationset1.txt", "validationset2.txt"),
    "test": ("testset.txt",),
}
# Aachen split: <root>/aachen/{train,validation,test}.uttlist (Kaldi style) or {tr,va,te}.lst.
AACHEN_FILES = {
    "train": ("train.uttlist", "tr.lst"),
    "validation": ("validation.uttlist", "va.lst"),
    "test": ("test.uttlist", "te.lst"),
}


def parse_words_txt(text, skips):
  """ascii/words.txt -> list of dicts (id, form, line, status, text).

  Format: `<word-id> <ok|err> <graylevel> <x> <y> <w> <h> <tag> <transcription>`; `#` comments; the
  transcription is everything after the 8th field (it may contain spaces); the bounding box may be
  -1 -1 -1 -1. Malformed lines are skipped and counted.
  """
  words = []
  for line_no, line in hw.nonblank_lines(text):
    if line.lstrip().startswith("#"):
      continue
    parts = line.split(None, 8)
    where = f"words.txt:{line_no}: {line[:80]!r}"
    if len(parts) < 9:
      skips.skip("malformed words.txt line", where)
      continue
    wid, status, *numbers, tag, transcription = parts
    m = WORD_ID_RE.match(wid)
    if (not m or status not in ("ok", "err") or not all(INT_RE.match(n) for n in numbers)
        or not transcription.strip()):
      skips.skip("malformed words.txt line", where)
      continue
    del tag
    form = f"{m.group(1)}-{m.group(2)}"
    words.append({
        "id": wid,
        "form": form,
        "line": f"{form}-{m.group(3)}",
        "status": status,
        "text": hw.nfc(transcription.rstrip()),
    })
  return words


def parse_forms_txt(text, skips):
  """ascii/forms.txt -> {form id: writer id}. Line: `a01-000u 000 2 prt 7 5 52 36`."""
  writers = {}
  for line_no, line in hw.nonblank_lines(text):
    if line.lstrip().startswith("#"):
      continue
    parts = line.split()
    if len(parts) < 2 or not re.match(r"^[a-z0-9]+-[a-z0-9]+$", parts[0]):
      skips.skip("malformed forms.txt line", f"forms.txt:{line_no}: {line[:80]!r}")
      continue
    writers[parts[0]] = parts[1]
  return writers


_FORM_TAG_RE = re.compile(r"<form\b[^>]*>", re.DOTALL)
_ATTR_RE = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')


def parse_form_xml(text):
  """(form id, writer id) from an IAM xml/<form>.xml, or None."""
  m = _FORM_TAG_RE.search(text)
  if not m:
    return None
  attrs = dict(_ATTR_RE.findall(m.group(0)))
  if "id" not in attrs or "writer-id" not in attrs:
    return None
  return attrs["id"], attrs["writer-id"]


def parse_id_list(text):
  """A split list: one id per line (form ids `a01-000u` or line ids `a01-000u-00`), `#` comments."""
  ids = set()
  for _, line in hw.nonblank_lines(text):
    line = line.strip()
    if line.startswith("#"):
      continue
    ids.add(line.split()[0])
  return ids


def word_image_path(root, word_id):
  """`a01-000u-00-01` -> <root>/words/a01/a01-000u/a01-000u-00-01.png."""
  part1, part2 = word_id.split("-")[:2]
  return root / "words" / part1 / f"{part1}-{part2}" / f"{word_id}.png"


def assign_splits(words, lists):
  """{split: ids} (form or line ids) -> ({split: [words]}, not_listed, conflicts)."""
  out = {s: [] for s in SPLITS}
  not_listed, conflicts = [], []
  for w in words:
    hits = [s for s in SPLITS if w["line"] in lists[s] or w["form"] in lists[s]]
    if not hits:
      not_listed.append(w)
    elif len(hits) > 1:
      conflicts.append((w, hits))
    else:
      out[hits[0]].append(w)
  return out, not_listed, conflicts


@dataclasses.dataclass
class IamConfig(tfds.core.BuilderConfig):
  split_scheme: str = "official"  # or "aachen"
  keep_err: bool = False  # keep words whose status is `err`
  height: int = 0  # 0 keeps the original resolution; 32 resizes to height 32


def _configs():
  """official (default), h32 (= official at height 32), aachen, aachen_h32, and *_with_err."""
  out = []
  for scheme in ("official", "aachen"):
    for keep_err in (False, True):
      base = scheme + ("_with_err" if keep_err else "")
      desc = (("official writer-independent line lists" if scheme == "official" else
               "Aachen split lists") + ("; `err` words kept" if keep_err else "; `err` words dropped"))
      h32_name = "h32" if base == "official" else f"{base}_h32"
      out.append(IamConfig(name=base, split_scheme=scheme, keep_err=keep_err, height=0,
                           description=desc + "; original resolution"))
      out.append(IamConfig(name=h32_name, split_scheme=scheme, keep_err=keep_err,
                           height=hw.TARGET_HEIGHT,
                           description=desc + "; resized to height 32 (keeping aspect)"))
  return out


class Builder(tfds.core.GeneratorBasedBuilder,
              skip_registration=NAME in tfds.core.registered._DATASET_REGISTRY):  # pylint: disable=protected-access
  """IAM words: grayscale images, transcription, writer id of the form."""

  name = NAME
  pkg_dir_path = tfds.core.Path(__file__).parent
  code_path = tfds.core.Path(__file__)

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: official and Aachen splits, err words optional, h32."}
  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "official"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Register at {HOMEPAGE} and download, then unpack into one folder, the --manual_dir:
  <manual_dir>/ascii/words.txt                 (ascii.tgz; `words.txt` at the top also accepted)
  <manual_dir>/ascii/forms.txt                 (writer ids; or <manual_dir>/xml/<form>.xml from xml.tgz)
  <manual_dir>/words/<a01>/<a01-000u>/<a01-000u-00-00>.png   (words.tgz)
official configs (default) - the large writer-independent text line recognition task
(largeWriterIndependentTextLineRecognitionTask.zip), at the top or in a folder of that name:
  <manual_dir>/largeWriterIndependentTextLineRecognitionTask/trainset.txt
  <manual_dir>/largeWriterIndependentTextLineRecognitionTask/validationset1.txt
  <manual_dir>/largeWriterIndependentTextLineRecognitionTask/validationset2.txt  (optional, joins validation)
  <manual_dir>/largeWriterIndependentTextLineRecognitionTask/testset.txt
aachen configs - the Aachen split lists (form ids or line ids, one per line):
  <manual_dir>/aachen/train.uttlist  <manual_dir>/aachen/validation.uttlist  <manual_dir>/aachen/test.uttlist
  (or tr.lst / va.lst / te.lst in <manual_dir>/aachen/)
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

  # -- locating files --------------------------------------------------------------------------
  def _locate(self, manual_dir):
    """Returns (root, files dict) or raises one MissingFilesError listing everything missing."""
    cfg = self.builder_config
    root = (hw.find_root(manual_dir, ["ascii/words.txt", "words"])
            or hw.find_root(manual_dir, ["words.txt", "words"])
            or hw.find_root(manual_dir, ["ascii/words.txt"])
            or hw.find_root(manual_dir, ["words"])
            or tfds.core.Path(manual_dir))
    missing, files = [], {}

    def first(*candidates):
      for c in candidates:
        if (root / c).exists():
          return root / c
      return None

    files["words_txt"] = first("ascii/words.txt", "words.txt")
    if files["words_txt"] is None:
      missing.append(f"{root}/ascii/words.txt")
    if not (root / "words").is_dir():
      missing.append(f"{root}/words/")
    files["forms_txt"] = first("ascii/forms.txt", "forms.txt")
    files["xml_dir"] = root / "xml" if (root / "xml").is_dir() else None
    if files["forms_txt"] is None and files["xml_dir"] is None:
      missing.append(f"{root}/ascii/forms.txt (or {root}/xml/)")
    files["lists"] = {}
    if cfg.split_scheme == "official":
      folder = next((root / d for d in OFFICIAL_DIRS if (root / d / "trainset.txt").exists()),
                    root / "largeWriterIndependentTextLineRecognitionTask")
      for split, names in OFFICIAL_FILES.items():
        found = []
        for n in names:
          if (folder / n).exists():
            found.append(folder / n)
          elif n != "validationset2.txt":
            missing.append(f"{folder}/{n}")
          else:
            logging.warning("iam: %s not found: validation uses validationset1.txt only",
                            folder / n)
        files["lists"][split] = found
    elif cfg.split_scheme == "aachen":
      folder = root / "aachen"
      for split, names in AACHEN_FILES.items():
        path = next((folder / n for n in names if (folder / n).exists()), None)
        if path is None:
          missing.append(f"{folder}/{names[0]} (or {names[1]})")
        files["lists"][split] = [path] if path else []
    else:
      raise ValueError(f"unknown split_scheme {cfg.split_scheme!r}")
    hw.raise_missing(NAME, manual_dir, missing, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return root, files

  def _writers(self, files, skips):
    if files["forms_txt"] is not None:
      logging.info("iam: writer ids from %s", files["forms_txt"])
      return parse_forms_txt(hw.read_text(files["forms_txt"]), skips)
    logging.info("iam: writer ids from %s/*.xml", files["xml_dir"])
    writers = {}
    for path in hw.list_files(files["xml_dir"], (".xml",)):
      parsed = parse_form_xml(hw.read_text(path))
      if parsed is None:
        skips.skip("xml without <form id writer-id>", path.name)
        continue
      writers[parsed[0]] = parsed[1]
    return writers

  # -- TFDS ------------------------------------------------------------------------------------
  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    strict = hw.resolve_strict(self._strict)
    skips = hw.SkipCounter(NAME, strict=strict)
    root, files = self._locate(dl_manager.manual_dir)
    logging.info("iam: reading %s (%s split lists: %s)", root, cfg.split_scheme,
                 {s: [p.name for p in ps] for s, ps in files["lists"].items()})
    words = parse_words_txt(hw.read_text(files["words_txt"]), skips)
    writers = self._writers(files, skips)
    n_err = sum(w["status"] == "err" for w in words)
    if not cfg.keep_err:
      words = [w for w in words if w["status"] == "ok"]
    lists = {s: set().union(*(parse_id_list(hw.read_text(p)) for p in ps))
             for s, ps in files["lists"].items()}
    splits, not_listed, conflicts = assign_splits(words, lists)
    for w, hits in conflicts:
      skips.skip("word in several split lists", f"{w['id']} in {hits}")
    no_writer = sorted({w["form"] for ws in splits.values() for w in ws if w["form"] not in writers})
    for form in no_writer:
      skips.skip("form without writer id (writer_id left empty)", form)
    skips.report("metadata")
    logging.warning(
        "iam/%s: %d words with status err %s; %d words whose line is in no %s split list "
        "(not used), e.g. %s; samples per split (before image checks): %s",
        cfg.name, n_err, "kept" if cfg.keep_err else "dropped", len(not_listed),
        cfg.split_scheme, [w["id"] for w in not_listed[:hw.MAX_SHOWN]],
        {k: len(v) for k, v in splits.items()})
    return {split: self._generate_examples(root, ws, writers, split, strict)
            for split, ws in splits.items()}

  def _generate_examples(self, root, words, writers, split, strict):
    skips = hw.SkipCounter(NAME, strict=strict)
    height = self.builder_config.height or None
    for w in words:
      path = word_image_path(root, w["id"])
      try:
        image = hw.load_grayscale(path, height=height)
      except FileNotFoundError:
        skips.skip("missing image", f"{w['id']}.png")
        continue
      except Exception as e:  # pylint: disable=broad-except
        skips.skip("unreadable image", f"{w['id']}.png ({e})")
        continue
      yield w["id"], {"image": image, "text": w["text"], "writer_id": writers.get(w["form"], ""),
                      "id": w["id"]}
    skips.report(split)
