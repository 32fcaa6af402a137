"""Tests of datasets/cvl over a fake CVL 1.1 tree (synthetic images, invented words, real layout).

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
FAKE = REPO / "datasets" / "cvl" / "dummy_data"  # parent of cvl-database-1-1/




cvl = builder_module("cvl")
hw = cvl.hw


# Fake tree (datasets/cvl/make_fake_data.py): trainset writers 0001, 0003, 0012 -> 0012 is the
# validation writer (highest 1/9, at least one); page 6 is German; 0003-8-0-0-Rowan.tif is 0-byte,
# 0003-2-1-x-Broken.tif does not parse, Thumbs.db is ignored.
class CvlEnglishTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = cvl.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["english", "h32"]
  SPLITS = {"train": 4, "validation": 2, "test": 4}


class CvlAllTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = cvl.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["all", "all_h32"]
  SPLITS = {"train": 6, "validation": 3, "test": 5}


def _build(config, manual_dir, data_dir, **kwargs):
  builder = cvl.Builder(config=config, data_dir=data_dir, **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _by_id(builder, split):
  return {ex["id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def test_labels_writers_and_images(tmp_path):
  builder = _build("all", FAKE / "cvl-database-1-1", tmp_path)  # the database folder itself
  train = _by_id(builder, "train")
  assert sorted(ex["text"].decode() for ex in train.values()) == sorted(
      ["Imagine", "half-baked", "Quill", "Lantern", "Bäumen", "Zwerge"])
  assert train["0001-1-0-1-half-baked"]["writer_id"] == b"0001"
  baeumen = [ex for ex in train.values() if ex["text"].decode().startswith("B")][0]
  assert baeumen["text"].decode() == unicodedata.normalize("NFC", "Bäumen")  # NFD file name
  assert baeumen["id"].decode() == unicodedata.normalize("NFC", "0001-6-0-0-Bäumen")
  val = _by_id(builder, "validation")
  assert {ex["text"].decode() for ex in val.values()} == {"Meadow", "Tin-Tin-Tack", "über"}
  assert {ex["writer_id"] for ex in val.values()} == {b"0012"}
  # Synthetic images are 9 px per character + 8, 24 px high; all grayscale H x W x 1.
  quill = train["0001-7-2-3-Quill"]["image"]  # grayscale TIFF
  assert quill.shape == (24, 9 * 5 + 8, 1)
  lantern = train["0003-2-1-0-Lantern"]["image"]  # palette TIFF
  assert lantern.shape == (24, 9 * 7 + 8, 1) and lantern.max() == 255 and lantern.min() < 100
  crest = _by_id(builder, "test")["0052-2-0-0-Crest"]["image"]  # RGBA, transparent left margin
  assert (crest[:, :4, 0] == 255).all()


def test_h32_resizes_keeping_aspect(tmp_path):
  builder = _build("h32", FAKE, tmp_path)
  test = _by_id(builder, "test")
  # Harbor: 62 x 24 -> round(62 * 32 / 24) = 83 x 32.
  assert test["0051-1-0-0-Harbor"]["image"].shape == (32, 83, 1)
  assert all(ex["image"].shape[0] == 32 for ex in test.values())


def test_skips_are_counted_and_logged(tmp_path):
  with mock.patch.object(hw.logging, "warning") as warn:
    _build("english", FAKE, tmp_path)
  logged = "\n".join(str(c.args[1]) for c in warn.call_args_list if len(c.args) > 1)
  assert "1 x unparseable file name" in logged and "0003-2-1-x-Broken.tif" in logged
  assert "1 x unreadable image" in logged and "0003-8-0-0-Rowan.tif (0-byte file)" in logged
  assert "Thumbs.db" not in logged


def test_strict_env(tmp_path, monkeypatch):
  monkeypatch.setenv(hw.STRICT_ENV, "1")
  with pytest.raises(hw.MalformedDataError, match="unparseable file name"):
    _build("english", FAKE, tmp_path)


def test_missing_folders_one_error(tmp_path):
  manual = tmp_path / "manual" / "cvl-database-1-1"
  shutil.copytree(FAKE / "cvl-database-1-1" / "trainset", manual / "trainset")
  (manual / "testset").mkdir()  # unpacked without its words/ folder
  with pytest.raises(hw.MissingFilesError) as err:
    _build("english", tmp_path / "manual", tmp_path / "data")
  msg = str(err.value)
  assert "1 required path(s) missing" in msg and "testset/words/" in msg
  assert "cvl-database-1-1/trainset/ (1 entries)" in msg  # what was found instead
  assert "cvl.tuwien.ac.at" in msg  # the instructions


def test_parse_file_name():
  assert cvl.parse_file_name("0050-8-7-4-Usher.tif") == {
      "writer": "0050", "page": 8, "line": 7, "word": 4, "text": "Usher", "id": "0050-8-7-4-Usher"}
  assert cvl.parse_file_name("0050-1-0-2-well-known.tif")["text"] == "well-known"
  assert cvl.parse_file_name("0050-1-0-2--.tif")["text"] == "-"
  assert cvl.parse_file_name("0050-1-0-2-Upper.TIF")["text"] == "Upper"
  assert cvl.parse_file_name("0050-1-0-2-Tiff.tiff")["text"] == "Tiff"
  assert cvl.parse_file_name("0050-1-0-Usher.tif") is None
  assert cvl.parse_file_name("0050-1-0-2-.tif") is None
  assert cvl.parse_file_name("0050-1-0-2-Usher.png") is None


def test_validation_writer_rule():
  writers = [f"{i:04d}" for i in range(1, 28)]  # 27 trainset writers
  assert cvl.validation_writers(reversed(writers)) == {"0025", "0026", "0027"}
  assert cvl.validation_writers(["0007", "0100", "0031"]) == {"0100"}
  assert cvl.validation_writers(["0007"]) == set()


def test_loads_by_path_and_like_the_cli_with_hf_datasets_importable(tmp_path, monkeypatch):
  fake_hf = tmp_path / "site" / "datasets"
  fake_hf.mkdir(parents=True)
  (fake_hf / "__init__.py").write_text("HF_FAKE = True\n")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  monkeypatch.delitem(sys.modules, "datasets", raising=False)
  import datasets  # pylint: disable=g-import-not-at-top
  assert getattr(datasets, "HF_FAKE", False)
  path = REPO / "datasets" / "cvl" / "cvl_dataset_builder.py"
  spec = importlib.util.spec_from_file_location("hf_clash_check_cvl", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.Builder.name == "cvl" and module.Builder.BUILDER_CONFIGS[1].name == "h32"
  with tfds.core.utils.add_sys_path(REPO / "datasets"):
    cls = tfds.core.community.builder_cls_from_module("cvl.cvl_dataset_builder")
  assert cls.name == "cvl"
  assert sys.modules["datasets"] is datasets
