"""Evaluation HTR: greedy CTC decoding, the CRNN's geometry and masking, training on a fixed batch,
augmentation, data mixing, the train/evaluate CLI with resume (tiny configs)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models import losses
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.data import htr_inputs as htr_data
from scrabblegan_tf.core.htr_config import HTRConfig
from scrabblegan_tf.models.crnn import CRNN, greedy_decode

REPO = pathlib.Path(__file__).resolve().parents[1]
DHSD_DUMMY = REPO / "datasets" / "dhsd" / "dummy_data"


def one_hot_logits(classes, num_classes=4):
    """[1, T, C] scores whose arg-max per column is ``classes`` (3.0 vs 0.0 elsewhere)."""
    x = np.zeros((1, len(classes), num_classes), np.float32)
    x[0, np.arange(len(classes)), classes] = 3.0
    return x


def test_greedy_decode_hand_made_sequence():
    # Columns: blank a a blank a b b c  ->  collapse repeats: blank a blank a b c  ->  drop blanks: a a b c
    logits = one_hot_logits([0, 1, 1, 0, 1, 2, 2, 3])
    assert greedy_decode(logits) == [[1, 1, 2, 3]]
    # Only the first 4 columns are valid: blank a a blank -> a.
    assert greedy_decode(logits, [4]) == [[1]]
    # Repeats without a blank between them collapse: a a a -> a; all blanks -> empty.
    assert greedy_decode(one_hot_logits([1, 1, 1])) == [[1]]
    assert greedy_decode(one_hot_logits([0, 0, 0])) == [[]]
    # A batch, and through an alphabet (id i is symbol i - 1).
    batch = np.concatenate([one_hot_logits([2, 0, 2, 3]), one_hot_logits([3, 3, 0, 1])])
    ids = greedy_decode(batch, [4, 4])
    assert ids == [[2, 2, 3], [3, 1]]
    alphabet = Alphabet("abc")
    assert [alphabet.decode(i) for i in ids] == ["bbc", "ca"]


def test_crnn_geometry_and_masking():
    model = CRNN(num_classes=5, width_mult=0.25, lstm_layers=1, dropout=0.0)
    images = np.ones((2, 32, 101, 1), np.float32)
    images[:, 8:24, 5:35] = -1.0  # ink in the first 40 columns
    logits = model(images, widths=np.array([40, 101], np.int32))
    assert logits.shape == (2, 51, 5)  # ceil(101 / 2) columns
    np.testing.assert_array_equal(model.logit_lengths([40, 101, 1]), [20, 51, 1])
    assert model.features(images, np.array([40, 101])).shape == (2, 2 * model.units)
    # Changing pixels beyond the valid width (and beyond the convs' +-12 px receptive field) leaves
    # the valid columns unchanged: the backward LSTM starts at the word's end, not in the padding.
    other = images.copy()
    other[:, :, 70:] = -1.0
    widths = np.array([40, 40], np.int32)
    a = model(images, widths=widths).numpy()[:, :20]
    b = model(other, widths=widths).numpy()[:, :20]
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Without the mask, the backward LSTM carries the change into the valid columns.
    a = model(images).numpy()[:, :20]
    b = model(other).numpy()[:, :20]
    assert np.abs(a - b).max() > 1e-4


def test_loss_finite_and_decreasing_on_a_fixed_batch():
    """30 Adam steps on 4 fixed images: the CTC loss is finite and falls by more than half."""
    import keras

    keras.utils.set_random_seed(0)
    alphabet = Alphabet("abc")
    rng = np.random.default_rng(0)
    images = np.ones((4, 32, 48, 1), np.float32)
    words = ["ab", "ca", "bcb", "a"]
    for i, w in enumerate(words):  # each letter a distinctive block of ink
        for j, ch in enumerate(w):
            x0 = 4 + 12 * j
            images[i, 6:26, x0:x0 + 8] = rng.uniform(-1.0, 0.0, (20, 8, 1)) - 0.3 * "abc".index(ch)
    labels, lengths = alphabet.encode_batch(words)
    widths = np.full(4, 48, np.int32)
    model = CRNN(num_classes=alphabet.num_classes, width_mult=0.25, lstm_layers=1, dropout=0.0)
    opt = keras.optimizers.Adam(3e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(images, widths=widths, training=True)
            per, n_inf = losses.ctc_loss(labels, lengths, logits, model.logit_lengths(widths))
            loss = tf.reduce_mean(per)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss, n_inf

    history = []
    for _ in range(30):
        loss, n_inf = step()
        history.append(float(loss))
        assert int(n_inf) == 0
    assert all(np.isfinite(history))
    assert np.mean(history[-3:]) < 0.5 * np.mean(history[:3]), history


def test_affine_transform_identity_and_translation():
    cfg = HTRConfig()
    images = np.ones((1, 32, 20, 1), np.float32)
    images[0, 10:20, 5:8] = -1.0
    widths = tf.constant([20])

    def apply(**kw):
        params = dict(shear=tf.zeros([1]), scale=tf.ones([1]), stretch=tf.ones([1]), tx=tf.zeros([1]),
                      ty=tf.zeros([1]))
        params.update({k: tf.constant([v], tf.float32) for k, v in kw.items()})
        t = htr_data.affine_transforms(widths, cfg.height, **params)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=t, output_shape=[32, 20], fill_value=1.0,
            interpolation="BILINEAR", fill_mode="CONSTANT").numpy()

    np.testing.assert_allclose(apply(), images, atol=1e-6)
    shifted = apply(tx=2.0, ty=-1.0)  # content moves 2 px right and 1 px up
    np.testing.assert_allclose(shifted[0, 9:19, 7:10], -1.0, atol=1e-6)
    assert shifted[0, 9:19, 5:7].min() == 1.0
    # Random augmentation: same shapes, labels and widths; white stays white far from the ink.
    batch = {"image": tf.constant(images), "image_width": widths, "label": tf.constant([[1]]),
             "label_length": tf.constant([1])}
    out = htr_data.augment_batch(batch, cfg, seed=3)
    assert out["image"].shape == images.shape
    assert out["image"].numpy()[0, :2].min() == pytest.approx(1.0)
    assert out["image"].numpy().min() < 0.0  # the ink is still there


def test_mix_ratio():
    real = tf.data.Dataset.from_tensors({"image": tf.zeros([32, 4, 1], tf.uint8), "text": "r"})
    syn = tf.data.Dataset.from_tensors({"image": tf.zeros([32, 4, 1], tf.uint8), "text": "s"})
    mixed = htr_data.mixed_examples(real, syn, 0.25, shuffle_buffer=0, seed=1)
    texts = [ex["text"] for ex in mixed.take(4000).as_numpy_iterator()]
    assert texts.count(b"s") / 4000 == pytest.approx(0.25, abs=0.03)
    only = htr_data.mixed_examples(real, syn, 1.0, shuffle_buffer=0, seed=1)
    assert {ex["text"] for ex in only.take(10).as_numpy_iterator()} == {b"s"}
    with pytest.raises(ValueError):
        htr_data.mixed_examples(real, syn, 1.5, shuffle_buffer=0, seed=1)


def run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "scrabblegan_tf.htr", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_train_resume_evaluate(tmp_path):
    """train 3 steps on the fake DHSD tree, resume to 5, evaluate on test: JSON with the metrics."""
    work = tmp_path / "htr"
    common = ["--dataset=dhsd", f"--manual_dir={DHSD_DUMMY}", f"--data_dir={tmp_path / 'tfds'}",
              f"--workdir={work}"]
    first = run(["train", *common, "--steps=3", "--batch_size=2", "--width_mult=0.25",
                 "--lstm_layers=1", "--log_every=1", "--eval_every=2", "--shuffle_buffer=8"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Starting a new HTR run" in first.stdout and "validation at step 2" in first.stdout
    assert "steps/s" in first.stdout
    second = run(["train", *common, "--steps=5"])  # the saved config is reused
    assert second.returncode == 0, second.stderr[-3000:]
    assert "at step 3" in second.stdout and "done: step 5" in second.stdout, second.stdout
    assert tf.train.latest_checkpoint(str(work / "checkpoints")).endswith("ckpt-5")
    saved = json.loads((work / "htr_config.json").read_text())
    assert saved["steps"] == 5 and saved["width_mult"] == 0.25 and saved["lstm_layers"] == 1
    lines = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["loss"]) for x in lines if "loss" in x)
    assert {x["step"] for x in lines if "val_cer" in x} >= {2, 5}
    ev = run(["evaluate", *common, "--split=test"])
    assert ev.returncode == 0, ev.stderr[-3000:]
    res = json.loads(ev.stdout)
    # The fake test split has 2 readable images (writer 10; one listed image is missing).
    assert res["num_samples"] == 2 and res["split"] == "test" and res["step"] == 5
    assert 0.0 <= res["wer"] <= 1.0 and res["cer"] >= 0.0 and res["ned"] >= 0.0
    assert sorted(e["truth"] for e in res["examples"]) == ["Fünfeck 3", "Tannenhöhe"]
    assert json.loads((work / "eval_test.json").read_text())["wer"] == res["wer"]
    from scrabblegan_tf.training.htr_training import check_compatible

    with pytest.raises(ValueError, match="another model config"):
        check_compatible(HTRConfig.from_dict({**saved, "width_mult": 0.5}), str(work))
