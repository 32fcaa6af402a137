"""Tests of datasets/iam over a fake IAM tree (synthetic images, invented words, real layout and ids).

The builder is loaded by file path under a distinct module name (never `import datasets`).
"""

import importlib.util
import pathlib
import shutil
import sys
from unittest import mock

import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.data.builders import builder_module

REPO = pathlib.Path(__file__).resolve().parent.parent
FAKE = REPO / "datasets" / "iam" / "dummy_data"




iam = builder_module("iam")
hw = iam.hw


# Fake tree (datasets/iam/make_fake_data.py). Official lists: train lines a01-000u-00/-01,
# r06-022-03/-04 (3 + 2 ok words + 1 err, glyph + 0-byte sprocket, '"' + nimbus) = 8;
# validation b04-020-00 (3) + b04-020-01 (drift; haze has no image) = 4; test a01-117-05 (ember, fjord,
# 0-byte zinc) = 2; m02-048-00 is in no list.
class IamOfficialTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = iam.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["official", "h32"]
  SPLITS = {"train": 8, "validation": 4, "test": 2}


class IamOfficialWithErrTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = iam.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["official_with_err", "official_with_err_h32"]
  SPLITS = {"train": 9, "validation": 4, "test": 2}  # + the err word "vim"


# Aachen lists: train forms a01-000u, r06-022; validation line ids of b04-020; test forms a01-117,
# m02-048 (+ orphan).
class IamAachenTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = iam.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["aachen", "aachen_h32"]
  SPLITS = {"train": 8, "validation": 4, "test": 3}


class IamAachenWithErrTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = iam.Builder
  EXAMPLE_DIR = str(FAKE)
  BUILDER_CONFIG_NAMES_TO_TEST = ["aachen_with_err", "aachen_with_err_h32"]
  SPLITS = {"train": 9, "validation": 4, "test": 3}


def _build(config, manual_dir, data_dir, **kwargs):
  builder = iam.Builder(config=config, data_dir=data_dir, **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _by_id(builder, split):
  return {ex["id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def test_labels_and_writers(tmp_path):
  builder = _build("official", FAKE, tmp_path)
  train = _by_id(builder, "train")
  assert train["a01-000u-01-02"]["text"] == b"0M P"  # transcription with a space
  assert train["r06-022-04-00"]["text"] == b'"'
  assert train["a01-000u-00-02"]["text"] == b"."
  assert train["a01-000u-00-00"]["writer_id"] == b"000"  # forms.txt field 2
  assert train["r06-022-03-00"]["writer_id"] == b"613"
  assert "a01-000u-01-01" not in train  # err dropped
  val = _by_id(builder, "validation")
  assert val["b04-020-00-02"]["text"] == b"lumen"  # -1 -1 -1 -1 bounding box
  assert set(val) == {"b04-020-00-00", "b04-020-00-01", "b04-020-00-02", "b04-020-01-00"}
  img = train["a01-000u-00-00"]["image"]
  assert img.shape == (20, 8 * 4 + 6, 1) and img.dtype.name == "uint8"


def test_h32(tmp_path):
  builder = _build("h32", FAKE, tmp_path)
  test = _by_id(builder, "test")
  assert test["a01-117-05-00"]["image"].shape == (32, round((8 * 5 + 6) * 32 / 20), 1)  # 74


def test_report_counts(tmp_path):
  with mock.patch.object(hw.logging, "warning") as warn_hw:  # the same absl module as iam.logging
    _build("official", FAKE, tmp_path)
  hw_logged = "\n".join(str(c.args[1]) for c in warn_hw.call_args_list if len(c.args) > 1)
  assert "2 x malformed words.txt line" in hw_logged and "a01-000u-00-09" in hw_logged
  assert "1 x malformed forms.txt line" in hw_logged
  # The two real 0-byte ids, one in train, one in test (reported per split).
  assert "iam (train): skipped 1 item(s)\n  1 x unreadable image, e.g. r06-022-03-05.png (0-byte" in hw_logged
  assert "iam (test): skipped 1 item(s)\n  1 x unreadable image, e.g. a01-117-05-02.png (0-byte" in hw_logged
  assert "1 x missing image, e.g. b04-020-01-01.png" in hw_logged
  summary = [c.args for c in warn_hw.call_args_list if "no %s split list" in c.args[0]][0]
  assert summary[2] == 1 and summary[4] == 1 and summary[6] == ["m02-048-00-00"]  # err, unlisted


def test_writer_ids_from_xml_when_no_forms_txt(tmp_path):
  manual = tmp_path / "iam"
  shutil.copytree(FAKE, manual)
  (manual / "ascii" / "forms.txt").unlink()
  builder = _build("aachen", manual, tmp_path / "data")
  test = _by_id(builder, "test")
  assert test["m02-048-00-00"]["writer_id"] == b"207"
  assert test["a01-117-05-00"]["writer_id"] == b"003"


def test_aachen_line_lists_variant(tmp_path):
  manual = tmp_path / "iam"
  shutil.copytree(FAKE, manual)
  for old, new in (("train.uttlist", "tr.lst"), ("validation.uttlist", "va.lst"),
                   ("test.uttlist", "te.lst")):
    (manual / "aachen" / old).rename(manual / "aachen" / new)
  (manual / "aachen" / "te.lst").write_text("a01-117-05\n")  # line ids only: orphan unlisted
  builder = _build("aachen", manual, tmp_path / "data")
  assert builder.info.splits["test"].num_examples == 2


def test_strict(tmp_path, monkeypatch):
  monkeypatch.setenv(hw.STRICT_ENV, "1")
  with pytest.raises(hw.MalformedDataError, match="malformed words.txt line"):
    _build("official", FAKE, tmp_path)


def test_missing_files_one_error(tmp_path):
  manual = tmp_path / "iam"
  (manual / "ascii").mkdir(parents=True)
  shutil.copy(FAKE / "ascii" / "lines.txt", manual / "ascii" / "lines.txt")
  (manual / "lines").mkdir()
  with pytest.raises(hw.MissingFilesError) as err:
    _build("official", manual, tmp_path / "data")
  msg = str(err.value)
  for needed in ("ascii/words.txt", "words/", "ascii/forms.txt (or", "/xml/)", "trainset.txt",
                 "validationset1.txt", "testset.txt"):
    assert needed in msg, needed
  assert "6 required path(s) missing" in msg  # validationset2.txt is optional
  assert "ascii/lines.txt" in msg and "lines/ (0 entries)" in msg  # what was found instead
  assert iam.HOMEPAGE in msg


def test_parse_words_txt_traps():
  text = ("# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A\n"
          "#\n"
          "a01-000u-00-01 ok 154 507 766 213 48 NN MOVE\n"
          "a01-000u-01-02 ok 154 393 1635 190 85 NPT 0M P\n"
          "a01-000u-02-00 err 154 -1 -1 -1 -1 NN stop\r\n"
          "\n"
          "a01-000u-02-01 ok 154 1 2 3 NN short\n"
          "a01-000u-02-02 okay 154 1 2 3 4 NN word\n"
          "a01 ok 154 1 2 3 4 NN word\n")
  skips = hw.SkipCounter("iam", strict=False)
  words = iam.parse_words_txt(text, skips)
  assert [(w["id"], w["status"], w["text"]) for w in words] == [
      ("a01-000u-00-01", "ok", "MOVE"), ("a01-000u-01-02", "ok", "0M P"),
      ("a01-000u-02-00", "err", "stop")]
  assert words[0]["line"] == "a01-000u-00" and words[0]["form"] == "a01-000u"
  assert skips.counts == {"malformed words.txt line": 3}


def test_forms_xml_and_lists():
  skips = hw.SkipCounter("iam", strict=False)
  assert iam.parse_forms_txt("# c\na01-000u 000 2 prt 7 5 52 36\nr06-022 613 3 prt 1 2 3 4\n",
                             skips) == {"a01-000u": "000", "r06-022": "613"}
  xml = ('<?xml version="1.0"?>\n<form created="x" height="3542"\n id="a01-000u" '
         'writer-id="000" width="2479"><handwritten-part><line id="a01-000u-00" '
         'text="&quot;A&amp;B&quot;"/></handwritten-part></form>')
  assert iam.parse_form_xml(xml) == ("a01-000u", "000")
  assert iam.parse_id_list("# x\na01-000u-00\n\n a01-000u-01 \n") == {"a01-000u-00", "a01-000u-01"}
  assert iam.word_image_path(tfds.core.Path("/r"), "a01-000u-00-01") == tfds.core.Path(
      "/r/words/a01/a01-000u/a01-000u-00-01.png")
  words = [{"id": f"{f}-00-00", "line": f"{f}-00", "form": f} for f in ("a01-000u", "b01-001", "c01")]
  out, unlisted, conflicts = iam.assign_splits(
      words, {"train": {"a01-000u", "c01-00"}, "validation": set(), "test": {"c01"}})
  assert [w["form"] for w in out["train"]] == ["a01-000u"]
  assert [w["form"] for w in unlisted] == ["b01-001"]
  assert [(w["form"], hits) for w, hits in conflicts] == [("c01", ["train", "test"])]


def test_loads_by_path_and_like_the_cli_with_hf_datasets_importable(tmp_path, monkeypatch):
  fake_hf = tmp_path / "site" / "datasets"
  fake_hf.mkdir(parents=True)
  (fake_hf / "__init__.py").write_text("HF_FAKE = True\n")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  monkeypatch.delitem(sys.modules, "datasets", raising=False)
  import datasets  # pylint: disable=g-import-not-at-top
  assert getattr(datasets, "HF_FAKE", False)
  path = REPO / "datasets" / "iam" / "iam_dataset_builder.py"
  spec = importlib.util.spec_from_file_location("hf_clash_check_iam", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.Builder.name == "iam"
  assert [c.name for c in module.Builder.BUILDER_CONFIGS] == [
      "official", "h32", "official_with_err", "official_with_err_h32",
      "aachen", "aachen_h32", "aachen_with_err", "aachen_with_err_h32"]
  with tfds.core.utils.add_sys_path(REPO / "datasets"):
    cls = tfds.core.community.builder_cls_from_module("iam.iam_dataset_builder")
  assert cls.name == "iam"
  assert sys.modules["datasets"] is datasets
