"""Synthetic dataset generation: TFDS-readable output, texts and sizes, deterministic shards,
resume after an interruption without duplicates, settings check, width matching, the CLI."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.inference import synthesis as syn

from gan_helpers import DHSD_DUMMY, REPO, make_tiny_gan  # noqa: F401


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    return make_tiny_gan(tmp_path_factory.mktemp("gan"))


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    path = tmp_path_factory.mktemp("lex") / "words.txt"
    path.write_text("# a comment\nBerlin\nUlm\nJüdenstraße\nGroßfeld-Süd (Alt)\nCafé€\n", encoding="utf-8")
    return str(path)


ALLOWED = {"Berlin", "Ulm", "Jüdenstraße", "Großfeld-Süd (Alt)"}  # "Café€": € is not in the alphabet


def load(out_dir):
    builder = tfds.builder_from_directory(str(out_dir))
    return builder, list(builder.as_dataset(split="train", shuffle_files=False).as_numpy_iterator())


def test_writes_n_examples_tfds_reads_back(gan, lexicon, tmp_path, monkeypatch):
    out = tmp_path / "syn"
    bar = io.StringIO()
    # tqdm redraws at most every 0.1 s by default, so which counts appear would depend on the machine's
    # speed; redraw on every update to check the batch-by-batch counting itself.
    monkeypatch.setattr(syn, "tqdm", functools.partial(syn.tqdm, mininterval=0, miniters=1))
    res = syn.synthesize(gan, str(out), num_words=10, lexicon=lexicon, shard_size=4, batch_size=3,
                         progress=True, progress_file=bar, log=lambda m: None)
    # The progress bar counts words batch by batch: shards of 4, 4, 2 in batches of <= 3 words.
    assert "10/10" in bar.getvalue() and "3/10" in bar.getvalue() and "word" in bar.getvalue()
    assert res == {"complete": True, "num_examples": 10, "num_shards": 3, "shards_written": 3,
                   "shards_skipped": 0, "out_dir": str(out)}
    assert sorted(f for f in os.listdir(out) if ".tfrecord-" in f) == [
        f"scrabblegan_synthetic-train.tfrecord-0000{k}-of-00003" for k in range(3)]
    builder, examples = load(out)
    assert builder.info.splits["train"].num_examples == 10
    assert builder.info.splits["train"].shard_lengths == [4, 4, 2]
    assert set(builder.info.features.keys()) == {"image", "text", "writer_id", "id"}
    assert [e["id"].decode() for e in examples] == [f"syn0-{i:08d}" for i in range(10)]  # no duplicates
    assert [e["writer_id"].decode() for e in examples] == [str(i) for i in range(10)]  # style seeds
    for e in examples:
        text = e["text"].decode()
        assert text in ALLOWED
        assert e["image"].dtype == np.uint8 and e["image"].shape == (32, 16 * len(text), 1)
        assert e["image"].min() < e["image"].max()  # not a blank picture
    state = json.loads((out / "synthesis.json").read_text())
    assert state["complete"] and state["settings"]["lexicon_size"] == 4
    # Words are a pure function of (seed, shard): the same as drawn by shard_words.
    from scrabblegan_tf.inference.generation import load_run
    from scrabblegan_tf.data.lexicon import Lexicon

    _, alphabet = load_run(gan)
    lex = Lexicon.from_file(lexicon, alphabet=alphabet, max_len=20)
    expected = [w for k, n in enumerate([4, 4, 2]) for w in syn.shard_words(lex, 0, k, n)]
    assert [e["text"].decode() for e in examples] == expected


def test_resume_after_interruption_no_duplicates_nothing_lost(gan, lexicon, tmp_path):
    straight = tmp_path / "straight"
    syn.synthesize(gan, str(straight), num_words=7, lexicon=lexicon, shard_size=3, batch_size=3,
                   log=lambda m: None)
    out = tmp_path / "resumed"
    part = syn.synthesize(gan, str(out), num_words=7, lexicon=lexicon, shard_size=3, batch_size=3,
                          max_shards=1, log=lambda m: None)
    assert not part["complete"] and part["shards_written"] == 1
    assert not (out / "dataset_info.json").exists()
    (out / "partial-shard-00001-999").write_bytes(b"half a shard")  # a crash in the middle of shard 1
    logs = []
    done = syn.synthesize(gan, str(out), num_words=7, lexicon=lexicon, shard_size=3, batch_size=2,
                          log=logs.append)
    assert done["complete"] and done["shards_skipped"] == 1 and done["shards_written"] == 2
    assert not any(name.startswith("partial-") for name in os.listdir(out))
    assert any("1 already complete" in m for m in logs), logs
    _, a = load(straight)
    _, b = load(out)
    assert [e["id"] for e in b] == [e["id"] for e in a] and len({e["id"] for e in b}) == 7
    assert [e["text"] for e in b] == [e["text"] for e in a]
    for ea, eb in zip(a, b):  # same styles; batch size 2 vs 3 changes nothing but round-off
        assert ea["image"].shape == eb["image"].shape
        assert np.abs(ea["image"].astype(int) - eb["image"].astype(int)).max() <= 1
    # Running again on a complete set writes nothing; other settings are refused.
    again = syn.synthesize(gan, str(out), num_words=7, lexicon=lexicon, shard_size=3, log=lambda m: None)
    assert again["shards_written"] == 0 and again["shards_skipped"] == 3
    with pytest.raises(ValueError, match="other settings"):
        syn.synthesize(gan, str(out), num_words=8, lexicon=lexicon, shard_size=3, log=lambda m: None)


def test_width_options_and_geometry_matching(gan, lexicon, tmp_path):
    out = tmp_path / "fixed"
    syn.synthesize(gan, str(out), num_words=3, lexicon=lexicon, shard_size=3, fixed_width=50,
                   log=lambda m: None)
    _, examples = load(out)
    assert {e["image"].shape for e in examples} == {(32, 50, 1)}
    im = np.zeros((32, 48), np.uint8)
    assert syn.resize_word(im, num_chars=3, char_width=8).shape == (32, 24)
    assert syn.resize_word(im, num_chars=3).shape == (32, 48)
    # DHSD-like: every image 128 wide -> fixed width; otherwise the median pixels per character.
    assert syn.match_geometry([128] * 9 + [100], [5, 9, 12, 3, 7, 8, 20, 4, 6, 5]) == {
        "fixed_width": 128, "char_width": None}
    assert syn.match_geometry([40, 60, 90], [4, 5, 10]) == {"fixed_width": None, "char_width": 10}


def test_cli_with_training_labels(gan, tmp_path):
    """python -m scrabblegan_tf.synthesize, words from the GAN's training labels (the fake DHSD
    tree: its train split has the 10 labels of writers 2 and 33)."""
    out = tmp_path / "cli"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "scrabblegan_tf.synthesize", f"--workdir={gan}", f"--out_dir={out}",
         "--num_words=5", "--shard_size=2", f"--data_dir={tmp_path / 'tfds'}",
         f"--manual_dir={DHSD_DUMMY}", "--char_width=8"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shard 3/3 written" in proc.stdout and "done: 5 examples" in proc.stdout
    _, examples = load(out)
    train_labels = {"Kleinhausen", "Bärwalder Weg", "Am Moos, Nord", "Müllerstraße 18",
                    "Großfeld-Süd (Alt)", "Lindenhof", "Zwölfmühle", "Querallee", "Ährenfeld",
                    "Sankt Veit"}
    assert len(examples) == 5
    for e in examples:
        assert e["text"].decode() in train_labels
        assert e["image"].shape == (32, 8 * len(e["text"].decode()), 1)
