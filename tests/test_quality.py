"""Generator quality measures: the Fréchet distance against hand-computed cases, FID reported as
unavailable without weights, diversity and legibility on a tiny generator and HTR, the CLI."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.evaluation import quality
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.htr_config import HTRConfig
from gan_helpers import DHSD_DUMMY, make_tiny_gan  # pylint: disable=wrong-import-order

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_frechet_one_dimensional_hand_computed():
    # N(1, 4) vs N(3, 9): (1 - 3)^2 + 4 + 9 - 2 * sqrt(4 * 9) = 4 + 13 - 12 = 5.
    assert quality.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(5.0)
    assert quality.frechet_distance(1.0, 4.0, 3.0, 9.0) == pytest.approx(5.0)  # scalars
    assert quality.frechet_distance([2.0], [[3.0]], [2.0], [[3.0]]) == pytest.approx(0.0, abs=1e-12)


def test_frechet_diagonal_and_full_hand_computed():
    # Diagonal: per dimension (m1 - m2)^2 + (sqrt(s1) - sqrt(s2))^2:
    # dim 1: 1 + (1 - 2)^2 = 2;  dim 2: 1 + (2 - 1)^2 = 2;  total 4.
    assert quality.frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 1], np.diag([4.0, 1.0])) == \
        pytest.approx(4.0)
    # S1 = I, S2 = [[2, 1], [1, 2]] (eigenvalues 3 and 1): tr(S1) + tr(S2) - 2 tr(S2^(1/2))
    # = 2 + 4 - 2 (sqrt(3) + 1) = 4 - 2 sqrt(3).
    s2 = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert quality.frechet_distance([0, 0], np.eye(2), [0, 0], s2) == pytest.approx(4 - 2 * math.sqrt(3))
    # Symmetric in its arguments, also for non-commuting covariances.
    s1 = np.array([[1.0, 0.3], [0.3, 0.5]])
    assert quality.frechet_distance([0, 1], s1, [1, 0], s2) == pytest.approx(
        quality.frechet_distance([1, 0], s2, [0, 1], s1))
    r = quality.sqrtm_psd(s2)
    np.testing.assert_allclose(r @ r, s2, atol=1e-12)


def test_frechet_of_features():
    # [0, 2]: mean 1, unbiased variance 2;  [4, 6, 8]: mean 6, variance 4.
    # 25 + 2 + 4 - 2 sqrt(8).
    assert quality.frechet_distance_of_features([[0.0], [2.0]], [[4.0], [6.0], [8.0]]) == \
        pytest.approx(31 - 2 * math.sqrt(8))
    with pytest.raises(ValueError):
        quality.gaussian_stats([[1.0, 2.0]])


def test_inception_fid_unavailable_without_weights(tmp_path):
    images = [np.full((32, 40), 255, np.uint8)] * 2
    res = quality.inception_fid(images, images, weights=str(tmp_path / "missing_inception.h5"))
    assert res["status"] == "unavailable" and res["reason"]


def test_heldout_words():
    alphabet = Alphabet("abcü ")
    assert quality.heldout_words(["abc", "cab", "ü", "u\u0308", "abd", "ba", "cab", "a b"],
                                 ["abc", "ba"], alphabet, max_len=2) == ["ü"]
    assert quality.heldout_words(["cab", "abc"], ["abc"], alphabet) == ["cab"]


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    return make_tiny_gan(tmp_path_factory.mktemp("gan"))


@pytest.fixture(scope="module")
def htr(tmp_path_factory):
    """A tiny HTR workdir trained one step on in-memory German words."""
    from scrabblegan_tf.training.htr_training import train

    work = tmp_path_factory.mktemp("htr")
    words = ["Ulm", "Köln", "Hof", "Straße"]
    images = np.full((len(words), 32, 64, 1), 255, np.uint8)
    images[:, 8:24, 4:60] = 0
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "text": words})
    cfg = HTRConfig(dataset="dhsd", width_mult=0.25, lstm_layers=1, steps=1, batch_size=2,
                    shuffle_buffer=4, eval_every=0, log_every=1)
    train(cfg, str(work), train_examples=ds, val_examples=ds, log=lambda m: None)
    return str(work)


def test_evaluate_generator_structure_and_diversity(gan, htr):
    from scrabblegan_tf.inference.generation import load_generator, render
    from scrabblegan_tf.training.htr_training import load_htr

    gen, _, alphabet, _ = load_generator(gan)
    model, *_ = load_htr(htr)
    texts = ["Ulm", "Köln", "Jüdenstraße", "Ulm", "Hof€"]  # "Hof€" cannot be written: left out
    real = [np.full((32, 128), 255, np.uint8) for _ in texts]
    for im in real:
        im[10:20, 10:100] = 0
    res = quality.evaluate_generator(gen, alphabet, model, real_images=real, real_texts=texts,
                                     training_labels=["Ulm"], fixed_width=128, diversity_words=2,
                                     num_styles=3, log=lambda m: None)
    assert res["num_images"] == 4
    assert res["legibility_heldout"]["num_samples"] == 2  # Köln, Jüdenstraße (Ulm was trained on)
    assert res["legibility_all"]["num_samples"] == 4
    for key in ("legibility_heldout", "legibility_all", "htr_reads_real"):
        assert 0.0 <= res[key]["wer"] <= 1.0 and res[key]["cer"] >= 0.0
    assert res["htr_frechet"] > 0.0  # blocks of ink vs generated noise
    assert res["inception_fid"] == {"status": "not requested"}
    div = res["diversity"]
    assert div["num_words"] == 2 and div["num_styles"] == 3 and div["htr_features"] > 0.0
    # The pixel diversity is the mean |a - b| over the 3 pairs of styles of each word (seed 0 of
    # word k is k * num_styles + s).
    expected = []
    for k, word in enumerate(["Ulm", "Köln"]):
        ims = [im / 255.0 for im in render(gen, alphabet, [word] * 3, seeds=[k * 3, k * 3 + 1, k * 3 + 2])]
        expected += [np.abs(ims[0] - ims[1]).mean(), np.abs(ims[0] - ims[2]).mean(),
                     np.abs(ims[1] - ims[2]).mean()]
    assert div["pixel"] == pytest.approx(np.mean(expected), rel=1e-5) and div["pixel"] > 0.0


def test_quality_cli(gan, htr, tmp_path):
    out = tmp_path / "quality.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "scrabblegan_tf.htr", "quality", f"--workdir={htr}",
         f"--gan_workdir={gan}", f"--manual_dir={DHSD_DUMMY}", f"--data_dir={tmp_path / 'tfds'}",
         "--split=test", "--num_styles=2", "--diversity_words=1", "--noinception", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res == json.loads(out.read_text())
    # Fake DHSD test split: 2 images, both 128 wide -> generated words resized to 128 too; neither
    # text ("Tannenhöhe", "Fünfeck 3") is a training label, so both are held out.
    assert res["num_images"] == 2 and res["fixed_width"] == 128
    assert res["legibility_heldout"]["num_samples"] == 2
    assert np.isfinite(res["htr_frechet"])
