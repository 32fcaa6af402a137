"""Tests of datasets/dhsd: fake tree (exact real layout), parser traps, download path, the real copy.

The builder is loaded by file path under a distinct module name (never `import datasets`).
The real copy of writers 1-30 lives at <repo>/../shared/data/dhsd (read-only).
"""

import collections
import csv
import importlib.util
import pathlib
import sys
import unicodedata
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.data.builders import builder_module

REPO = pathlib.Path(__file__).resolve().parent.parent
REAL_DHSD = REPO.parent / "shared" / "data" / "dhsd"
FAKE = REPO / "datasets" / "dhsd" / "dummy_data"




dhsd = builder_module("dhsd")
hw = dhsd.hw


# ---------------------------------------------------------------------------------------------------
# Fake tree, exact real layout (see datasets/dhsd/make_fake_data.py for what each row tests).
# writer_independent: writers 2, 33 -> train (6 + 4 rows), 5 -> validation (3 rows, one 0-byte image),
# 10 -> test (3 rows, one missing image); the 2-field row in data.csv is malformed.
class DhsdWriterIndependentTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = dhsd.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["writer_independent", "h32"]
  SPLITS = {"train": 10, "validation": 2, "test": 2}


# original: test.csv has 4 rows; train.csv 12 rows of which 2 have crc32(file_name) % 10 == 0
# (validation) and 2 are the 0-byte / missing images.
class DhsdOriginalTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = dhsd.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["original"]
  SPLITS = {"train": 8, "validation": 2, "test": 4}


def _build(config, manual_dir, data_dir, **kwargs):
  builder = dhsd.Builder(config=config, data_dir=data_dir, **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual_dir) if manual_dir else None))
  return builder


def _examples(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_fake_labels_images_and_features(tmp_path):
  builder = _build("writer_independent", FAKE, tmp_path)
  train = {ex["id"].decode(): ex for ex in _examples(builder, "train")}
  assert set(train) == {"2_0", "2_1", "2_2", "2_3", "2_4", "2_5", "33_0", "33_1", "33_2", "33_8"}
  assert train["2_2"]["text"].decode() == "Am Moos, Nord"  # quoted comma
  nfd_label = train["2_3"]["text"].decode()
  assert nfd_label == unicodedata.normalize("NFC", "Müllerstraße 18") and len(nfd_label) == 15
  assert train["2_4"]["text"].decode() == "Großfeld-Süd (Alt)"
  assert train["33_0"]["writer_id"] == b"33"
  image = train["2_0"]["image"]
  assert image.shape == (64, 256, 1) and image.dtype.name == "uint8"
  # Opaque synthetic strokes on white: the background is white, the strokes dark.
  assert image.max() == 255 and image.min() < 80


def test_fake_h32_shapes(tmp_path):
  builder = _build("h32", FAKE, tmp_path)
  for ex in _examples(builder, "test"):
    assert ex["image"].shape == (32, 128, 1)  # 256 x 64 -> height 32 keeps the 4:1 aspect


def test_strict_env_fails_on_first_bad_row(tmp_path, monkeypatch):
  monkeypatch.setenv(hw.STRICT_ENV, "1")
  with pytest.raises(hw.MalformedDataError, match="malformed csv row"):
    _build("writer_independent", FAKE, tmp_path)


def test_strict_kwarg_overrides_env(tmp_path, monkeypatch):
  monkeypatch.setenv(hw.STRICT_ENV, "1")
  builder = _build("original", FAKE, tmp_path, strict=False)  # kwarg wins over the env var
  assert builder.info.splits["test"].num_examples == 4
  with pytest.raises(hw.MalformedDataError, match="0-byte|missing image|unreadable"):
    _build("original_h32", FAKE, tmp_path / "strict", strict=True)


def test_skip_summary_is_logged(tmp_path):
  with mock.patch.object(dhsd.hw.logging, "warning") as warn:
    _build("writer_independent", FAKE, tmp_path)
  logged = "\n".join(str(c.args[1]) for c in warn.call_args_list if len(c.args) > 1)
  assert "1 x malformed csv row" in logged and "33_9.png" in logged
  assert "1 x unreadable image" in logged and "5_2.png (0-byte file)" in logged
  assert "1 x missing image" in logged and "10_2.png" in logged


def test_download_used_when_manual_dir_lacks_files(tmp_path):
  requested = []

  def fake_download_and_extract(self, url):
    requested.append(url)
    return tfds.core.Path(FAKE)

  with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                         fake_download_and_extract):
    empty_manual = tmp_path / "manual"
    empty_manual.mkdir()
    builder = _build("writer_independent", empty_manual, tmp_path / "data")
  assert requested == [dhsd.DOWNLOAD_URL]
  assert builder.info.splits["train"].num_examples == 10


def test_manual_dir_with_files_never_downloads(tmp_path):
  with mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                         side_effect=AssertionError("must not download")):
    # The parent of the unpacked folder works too.
    parent = FAKE.parent
    builder = _build("original", parent, tmp_path)
  assert builder.info.splits["validation"].num_examples == 2


# ---------------------------------------------------------------------------------------------------
# Parser units.
def test_parse_csv_traps():
  text = ("file_name,text,writer_id\r\n"
          "german_hw_data/writer1/1_0.png,\"Bad Sooden-Allendorf, Nord\",1\r\n"
          "german_hw_data\\writer1\\1_1.png,Straße des 18. Oktober (B 1),1\r\n"
          "german_hw_data/writer1/1_2.png,Mu\u0308nster,1\r\n"
          "german_hw_data/writer1/1_3.png,only-two-fields\r\n"
          "\r\n"
          "german_hw_data/writer1/1_4.png,,1\r\n")
  skips = hw.SkipCounter("dhsd", strict=False)
  rows = dhsd.parse_csv(text, "data.csv", skips)
  assert [r["text"] for r in rows] == [
      "Bad Sooden-Allendorf, Nord", "Straße des 18. Oktober (B 1)", "Münster"]
  assert rows[1]["file_name"] == "german_hw_data/writer1/1_1.png"  # backslashes normalised
  assert rows[2]["text"] == unicodedata.normalize("NFC", "Münster")
  assert skips.counts == {"malformed csv row": 2}


def test_parse_csv_rejects_wrong_header():
  with pytest.raises(ValueError, match="lacks columns"):
    dhsd.parse_csv("path,label\r\na.png,x\r\n", "data.csv", hw.SkipCounter("d", strict=False))


def test_writer_split_rule_places_every_writer():
  got = {w: dhsd.writer_split(str(w)) for w in range(1, 38)}
  assert [w for w, s in got.items() if s == "test"] == [10, 20, 30]
  assert [w for w, s in got.items() if s == "validation"] == [5, 15, 25, 35]
  # Withheld writers 31-37: all placed, deterministically.
  assert {w: got[w] for w in range(31, 38)} == {
      31: "train", 32: "train", 33: "train", 34: "train", 35: "validation", 36: "train",
      37: "train"}
  assert dhsd.writer_split(" 40 ") == "test"
  assert dhsd.writer_split("anonymous") == dhsd.writer_split("anonymous")


def test_missing_files_error_lists_everything(tmp_path):
  (tmp_path / "german_hw_data").mkdir()
  (tmp_path / "notes.txt").write_text("x")
  with pytest.raises(hw.MissingFilesError) as err:
    hw.raise_missing("dhsd", tmp_path, ["data.csv", "train.csv"], dhsd.Builder.MANUAL_DOWNLOAD_INSTRUCTIONS)
  msg = str(err.value)
  assert "2 required path(s) missing" in msg and "- data.csv" in msg and "- train.csv" in msg
  assert "german_hw_data/ (0 entries)" in msg and "notes.txt" in msg


# ---------------------------------------------------------------------------------------------------
# The real copy (writers 1-30), counts computed independently from the csv files.
def _real_rows(name):
  with open(REAL_DHSD / name, encoding="utf-8", newline="") as f:
    return list(csv.DictReader(f))


needs_real = pytest.mark.skipif(not REAL_DHSD.is_dir(), reason=f"no DHSD copy at {REAL_DHSD}")


@needs_real
def test_real_writer_independent(tmp_path):
  rows = _real_rows("data.csv")
  expected = collections.Counter()
  for r in rows:
    w = int(r["writer_id"])
    expected["test" if w % 10 == 0 else "validation" if w % 10 == 5 else "train"] += 1
  assert sum(expected.values()) == 4873
  builder = _build("writer_independent", REAL_DHSD, tmp_path)
  got = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
  assert got == dict(expected)
  assert got == {"train": 3901, "validation": 480, "test": 492}
  train = {ex["id"].decode(): ex for ex in _examples(builder, "train")}
  ex = train["1_132"]  # german_hw_data/writer1/1_132.png
  assert ex["text"].decode() == unicodedata.normalize("NFC", "Großschweidnitz")
  assert ex["writer_id"] == b"1" and ex["image"].shape == (64, 256, 1)
  assert train["1_0"]["text"].decode() == "Königshain-Wiederau"
  writers = collections.Counter(ex["writer_id"].decode() for ex in train.values())
  assert not {"5", "10", "15", "20", "25", "30"} & set(writers)


@needs_real
def test_real_original_h32(tmp_path):
  train_rows = _real_rows("train.csv")
  import zlib
  n_val = sum(1 for r in train_rows if zlib.crc32(r["file_name"].encode()) % 10 == 0)
  builder = _build("original_h32", REAL_DHSD, tmp_path)
  got = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
  assert got == {"train": len(train_rows) - n_val, "validation": n_val,
                 "test": len(_real_rows("test.csv"))}
  assert got == {"train": 3481, "validation": 414, "test": 978}
  ex = next(iter(tfds.as_numpy(builder.as_dataset(split="test").take(1))))
  assert ex["image"].shape == (32, 128, 1)


# ---------------------------------------------------------------------------------------------------
# Loading works while a Hugging Face style `datasets` package is importable.
def test_loads_by_path_and_like_the_cli_with_hf_datasets_importable(tmp_path, monkeypatch):
  fake_hf = tmp_path / "site" / "datasets"
  fake_hf.mkdir(parents=True)
  (fake_hf / "__init__.py").write_text("HF_FAKE = True\nload_dataset = None\n")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  monkeypatch.delitem(sys.modules, "datasets", raising=False)
  import datasets  # pylint: disable=g-import-not-at-top
  assert getattr(datasets, "HF_FAKE", False)

  # By path under another module name (as scrabblegan_tf/data/builders.py does).
  path = REPO / "datasets" / "dhsd" / "dhsd_dataset_builder.py"
  spec = importlib.util.spec_from_file_location("hf_clash_check_dhsd", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.Builder.name == "dhsd"
  assert module.Builder(config="original_h32", data_dir=str(tmp_path)).builder_config.height == 32

  # Like `tfds build datasets/dhsd`: <repo>/datasets on sys.path, module `dhsd.dhsd_dataset_builder`.
  with tfds.core.utils.add_sys_path(REPO / "datasets"):
    cls = tfds.core.community.builder_cls_from_module("dhsd.dhsd_dataset_builder")
  assert cls.name == "dhsd" and cls.__module__ == "dhsd.dhsd_dataset_builder"
  assert sys.modules["datasets"] is datasets  # HF `datasets` untouched
  assert "datasets.dhsd" not in sys.modules
