"""Tests of datasets/rimes over a fake RIMES ICDAR 2011 word tree (synthetic images, real layout).

The builder is loaded by file path under a distinct module name (never `import datasets`).
"""

import importlib.util
import pathlib
import shutil
import sys
import unicodedata
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.data.builders import builder_module

REPO = pathlib.Path(__file__).resolve().parent.parent
FAKE = REPO / "datasets" / "rimes" / "dummy_data"




rimes = builder_module("rimes")
hw = rimes.hw


# Fake tree (datasets/rimes/make_fake_data.py): training gt 7 lines, one without a word, one 0-byte
# image -> 5; validation 4 lines, one image missing -> 3; test 4 lines (absolute Windows path, ./,
# bare name, extra spaces) -> 4.
class RimesTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = rimes.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["icdar2011", "h32"]
  SPLITS = {"train": 5, "validation": 3, "test": 4}


def _build(config, manual_dir, data_dir, **kwargs):
  builder = rimes.Builder(config=config, data_dir=data_dir, **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _by_id(builder, split):
  return {ex["id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def test_labels_ids_and_paths(tmp_path):
  builder = _build("icdar2011", FAKE, tmp_path)
  train = _by_id(builder, "train")
  assert {k: v["text"].decode() for k, v in train.items()} == {
      "trainingsnippets_icdar/training_WR/lot_1/train_0001": "Madame",
      "trainingsnippets_icdar/training_WR/lot_1/train_0002": "élève",  # backslash path
      "trainingsnippets_icdar/training_WR/lot_1/train_0003": "N°",  # bilevel PNG
      "trainingsnippets_icdar/training_WR/lot_2/train_0006": "m²",  # relative to another root
      "trainingsnippets_icdar/training_WR/lot_2/train_0007": unicodedata.normalize("NFC", "Noël"),
  }
  assert all(ex["writer_id"] == b"" for ex in train.values())
  val = _by_id(builder, "validation")
  assert sorted(v["text"].decode() for v in val.values()) == ["Cordialement", "l'été", "à"]
  test = _by_id(builder, "test")
  assert {k: v["text"].decode() for k, v in test.items()} == {
      "data_test/test_0001": "Objet", "data_test/test_0002": "coût",
      "data_test/test_0003": "2°", "data_test/test_0004": "Veuillez"}
  img = train["trainingsnippets_icdar/training_WR/lot_1/train_0003"]["image"]
  assert img.shape == (28, 10 * 2 + 6, 1) and set(img.reshape(-1).tolist()) <= {0, 255}


def test_h32(tmp_path):
  builder = _build("h32", FAKE, tmp_path)
  test = _by_id(builder, "test")
  # Objet: 56 x 28 -> 64 x 32.
  assert test["data_test/test_0001"]["image"].shape == (32, 64, 1)


def test_found_files_and_skips_are_logged(tmp_path):
  with mock.patch.object(hw.logging, "warning") as warn, \
       mock.patch.object(hw.logging, "info") as info:  # the same absl module as rimes.logging
    _build("icdar2011", FAKE, tmp_path)
  found = {(a[1], pathlib.PurePath(str(a[2])).name) for a in (c.args for c in info.call_args_list)
           if a[0].startswith("rimes: %s ground truth: found")}
  calls = [c.args for c in warn.call_args_list]
  assert found == {("train", "groundtruth_training_icdar2011.txt"),
                   ("validation", "ground_truth_validation_icdar2011.txt"),
                   ("test", "grount_truth_test_icdar2011.txt")}
  logged = "\n".join(str(a[1]) for a in calls if len(a) == 2)
  assert "1 x malformed ground-truth line (no path or no word)" in logged
  assert "groundtruth_training_icdar2011.txt:4" in logged
  assert "1 x image not found (or ambiguous)" in logged and "val_0003.png" in logged
  assert "1 x unreadable image" in logged and "train_0005.png" in logged


def test_manual_dir_parent_and_other_name_variants(tmp_path):
  manual = tmp_path / "downloads"
  shutil.copytree(FAKE, manual / "RIMES")
  (manual / "RIMES" / "groundtruth_training_icdar2011.txt").rename(
      manual / "RIMES" / "ground_truth_training_icdar2011.txt")
  (manual / "RIMES" / "grount_truth_test_icdar2011.txt").rename(
      manual / "RIMES" / "ground_truth_test_icdar2011.txt")
  builder = _build("icdar2011", manual, tmp_path / "data")
  assert builder.info.splits["train"].num_examples == 5
  assert builder.info.splits["test"].num_examples == 4


def test_strict(tmp_path, monkeypatch):
  monkeypatch.setenv(hw.STRICT_ENV, "true")
  with pytest.raises(hw.MalformedDataError, match="malformed ground-truth line"):
    _build("icdar2011", FAKE, tmp_path)


def test_missing_files_one_error(tmp_path):
  manual = tmp_path / "rimes"
  manual.mkdir()
  shutil.copy(FAKE / "groundtruth_training_icdar2011.txt", manual)
  shutil.copytree(FAKE / "data_test", manual / "data_test")
  (manual / "training_WR.tar.gz").write_bytes(b"")
  with pytest.raises(hw.MissingFilesError) as err:
    _build("icdar2011", manual, tmp_path / "data")
  msg = str(err.value)
  assert "4 required path(s) missing" in msg
  for needed in ("ground_truth_validation_icdar2011.txt", "ground_truth_test_icdar2011.txt",
                 "trainingsnippets_icdar/training_WR/", "validationsnippets_icdar/testdataset_ICDAR/"):
    assert needed in msg, needed
  assert "training_WR.tar.gz" in msg and "data_test/ (4 entries)" in msg
  assert rimes.HOMEPAGE in msg


def test_gt_name_variants():
  names = {
      "groundtruth_training_icdar2011.txt": "train",
      "ground_truth_training_icdar2011.txt": "train",
      "grount_truth_training_icdar2011.txt": "train",
      "ground_truth_validation_icdar2011.txt": "validation",
      "groundtruth_validation_icdar2011.txt": "validation",
      "grount_truth_test_icdar2011.txt": "test",
      "Ground_Truth_Test_ICDAR2011.txt": "test",
  }
  for name, split in names.items():
    m = rimes.GT_RE.match(name)
    assert m and rimes.GT_SPLIT[m.group(1).lower()] == split, name
  assert rimes.GT_RE.match("ground_truth_test_icdar2011.txt.bak") is None


def test_parse_gt_line():
  assert rimes.parse_gt_line("lot_1\\a.png  déjà ") == ("lot_1/a.png", "déjà")
  assert rimes.parse_gt_line("C:\\RIMES\\data_test\\b.png Objet") == ("RIMES/data_test/b.png", "Objet")
  assert rimes.parse_gt_line("./x/my file.png 1er") == ("x/my file.png", "1er")  # space in path
  assert rimes.parse_gt_line("a.png " + unicodedata.normalize("NFD", "reçu")) == ("a.png", "reçu")
  assert rimes.parse_gt_line("lot_1/a.png") is None
  assert rimes.parse_gt_line("lot_1/a.png   ") is None
  assert rimes.parse_gt_line("x.jpg mot") == ("x.jpg", "mot")


def test_image_index_resolution(tmp_path):
  for rel in ("trainingsnippets_icdar/training_WR/lot_1/a.png", "data_test/a.png",
              "data_test/sub1/c.png", "data_test/sub2/c.png"):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(b"x")
  index = rimes.ImageIndex(tfds.core.Path(tmp_path))
  assert len(index) == 4
  train_dir, test_dir = rimes.IMAGE_DIRS["train"], rimes.IMAGE_DIRS["test"]
  assert index.resolve("lot_1/a.png", train_dir).name == "a.png"
  assert "training_WR" in str(index.resolve("lot_1/A.PNG", train_dir))  # case-insensitive
  assert "data_test" in str(index.resolve("a.png", test_dir))  # the split's folder wins
  assert index.resolve("sub2/c.png", test_dir).parent.name == "sub2"  # longest common suffix
  assert index.resolve("c.png", test_dir) is None  # ambiguous
  assert index.resolve("nothere.png", test_dir) is None


def test_loads_by_path_and_like_the_cli_with_hf_datasets_importable(tmp_path, monkeypatch):
  fake_hf = tmp_path / "site" / "datasets"
  fake_hf.mkdir(parents=True)
  (fake_hf / "__init__.py").write_text("HF_FAKE = True\n")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  monkeypatch.delitem(sys.modules, "datasets", raising=False)
  import datasets  # pylint: disable=g-import-not-at-top
  assert getattr(datasets, "HF_FAKE", False)
  path = REPO / "datasets" / "rimes" / "rimes_dataset_builder.py"
  spec = importlib.util.spec_from_file_location("hf_clash_check_rimes", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.Builder.name == "rimes"
  assert [c.name for c in module.Builder.BUILDER_CONFIGS] == ["icdar2011", "h32"]
  with tfds.core.utils.add_sys_path(REPO / "datasets"):
    cls = tfds.core.community.builder_cls_from_module("rimes.rimes_dataset_builder")
  assert cls.name == "rimes"
  assert sys.modules["datasets"] is datasets
