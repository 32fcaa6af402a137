"""Semi-supervised training: the unlabeled stream, --disjoint, the image-folder source, resume."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from scrabblegan_tf.training import gan_training as train_lib
from scrabblegan_tf.data import inputs
from scrabblegan_tf.data.image_folder import load_image_folder
from tiny_models import (ALPHABET, LEXICON, real_batch, tiny_discriminator, tiny_generator,
                               tiny_recognizer, trainable_snapshot)


def make_gan(disjoint: bool, g_every: int = 1):
    import keras

    from scrabblegan_tf.models.gan import ScrabbleGAN

    ids, lengths = ALPHABET.encode_batch(LEXICON)
    gan = ScrabbleGAN(generator=tiny_generator(0), discriminator=tiny_discriminator(1),
                      recognizer=tiny_recognizer(2), word_ids=ids, word_lengths=lengths,
                      g_every=g_every, seed=0, semi_supervised=True, disjoint=disjoint)
    gan.compile(*(keras.optimizers.SGD(0.1) for _ in range(3)))
    gan.build_all()
    return gan


def batch(label_seed: int, unlabeled_seed: int):
    images, widths, ids, lengths = real_batch(["ab", "cab"], seed=label_seed)
    rng = np.random.default_rng(unlabeled_seed)
    unl = rng.uniform(-1, 1, (2, 32, 40, 1)).astype(np.float32)
    return {"image": images, "image_width": widths, "label": ids, "label_length": lengths,
            "unlabeled_image": unl, "unlabeled_width": np.array([40, 24], np.int32)}


def after_step(disjoint: bool, data):
    gan = make_gan(disjoint)
    out = gan.train_step(data)
    return gan, out


def assert_same(a: dict, b: dict):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


def assert_differ(a: dict, b: dict):
    assert any(not np.allclose(a[k], b[k]) for k in a)


def test_disjoint_r_ignores_unlabeled_and_d_ignores_labelled():
    """From identical starts: changing only the unlabeled images changes D but not R; changing
    only the labelled images changes R but not D."""
    base, out = after_step(True, batch(0, 0))
    assert set(out) >= {"d_real_unlabeled", "d_fake", "r_ctc"} and "d_real_labelled" not in out
    other_unl, _ = after_step(True, batch(0, 1))
    other_lab, _ = after_step(True, batch(1, 0))
    d, r = trainable_snapshot(base.discriminator), trainable_snapshot(base.recognizer)
    assert_same(r, trainable_snapshot(other_unl.recognizer))
    assert_differ(d, trainable_snapshot(other_unl.discriminator))
    assert_same(d, trainable_snapshot(other_lab.discriminator))
    assert_differ(r, trainable_snapshot(other_lab.recognizer))


def test_joint_mode_d_learns_from_both_streams_r_from_labelled_only():
    base, out = after_step(False, batch(0, 0))
    assert {"d_real_labelled", "d_real_unlabeled"} <= set(out)
    assert all(np.isfinite(float(v)) for v in out.values())
    other_unl, _ = after_step(False, batch(0, 1))
    other_lab, _ = after_step(False, batch(1, 0))
    d, r = trainable_snapshot(base.discriminator), trainable_snapshot(base.recognizer)
    assert_differ(d, trainable_snapshot(other_unl.discriminator))
    assert_same(r, trainable_snapshot(other_unl.recognizer))
    assert_differ(d, trainable_snapshot(other_lab.discriminator))


@pytest.mark.parametrize("disjoint", [False, True])
def test_update_ratio_is_the_official_semi_supervised_one(disjoint):
    """The official semi-supervised loop (train_semi_supervised.py) does one G update per stream
    every num_critic_train mini-batches, each with a D update per stream (one, disjoint): with
    g_every = 3, one iteration = 2 G updates and 6 D updates (3 disjoint), R 3."""
    gan = make_gan(disjoint, g_every=3)
    images, widths, ids, lengths = real_batch(["ab", "cab"] * 3, seed=0)
    unl = np.random.default_rng(0).uniform(-1, 1, (6, 32, 40, 1)).astype(np.float32)
    gan.train_step({"image": images, "image_width": widths, "label": ids, "label_length": lengths,
                    "unlabeled_image": unl, "unlabeled_width": np.full(6, 40, np.int32)})
    assert int(gan.g_optimizer.iterations.numpy()) == 2
    assert int(gan.d_optimizer.iterations.numpy()) == (3 if disjoint else 6)
    assert int(gan.r_optimizer.iterations.numpy()) == 3


def test_disjoint_needs_an_unlabeled_stream():
    from scrabblegan_tf.models.gan import ScrabbleGAN

    ids, lengths = ALPHABET.encode_batch(LEXICON)
    with pytest.raises(ValueError, match="unlabeled"):
        ScrabbleGAN(generator=tiny_generator(), discriminator=tiny_discriminator(),
                    recognizer=tiny_recognizer(), word_ids=ids, word_lengths=lengths,
                    disjoint=True)


def write_mixed_folder(root):
    """PNG (gray), RGBA PNG, JPEG (RGB), RGB TIFF in sub-folders, plus a corrupt PNG and a
    0-byte TIFF."""
    rng = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.fromarray(rng.integers(0, 255, (64, 128), dtype=np.uint8), "L").save(root / "a/w1.png")
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: must come out white
    Image.fromarray(rgba, "RGBA").save(root / "a/w2.png")
    Image.fromarray(rng.integers(0, 255, (16, 48, 3), dtype=np.uint8), "RGB").save(root / "b/w3.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8), "RGB").save(root / "b/w4.tif")
    (root / "b/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "b/empty.tiff").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, not a candidate")


def test_folder_source_reads_mixed_formats_and_skips_corrupt_files(tmp_path):
    write_mixed_folder(tmp_path)
    logs = []
    ds, stats = load_image_folder(str(tmp_path), height=32, log=logs.append)
    assert (stats.found, stats.loaded, stats.skipped) == (6, 4, 2)
    assert any("broken.png" in s for s in stats.skipped_examples)
    assert "2 unreadable skipped" in logs[0]
    images = [tf.io.decode_png(ex["image"]).numpy() for ex in ds]
    # Sorted paths: a/w1.png (64x128 -> 32x64), a/w2.png (40x40 -> 32x32, white), b/w3.jpg
    # (16x48 -> 32x96), b/w4.tif (64x32 -> 32x16).
    assert [im.shape for im in images] == [(32, 64, 1), (32, 32, 1), (32, 96, 1), (32, 16, 1)]
    assert images[1].min() == 255


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="No readable image"):
        load_image_folder(str(tmp_path), log=lambda m: None)


def test_unlabeled_spec_parsing():
    assert inputs.parse_unlabeled_spec("dhsd") == ("dhsd", None, "train")
    assert inputs.parse_unlabeled_spec("dhsd/h32:test") == ("dhsd", "h32", "test")
    assert inputs.parse_unlabeled_spec("iam:validation") == ("iam", None, "validation")
    assert inputs.parse_unlabeled_spec("folder:/x/y") == ("folder", None, "/x/y")
    with pytest.raises(ValueError):
        inputs.parse_unlabeled_spec("folder:")


def test_resume_with_both_streams(tmp_path):
    from train_helpers import in_memory_dataset, tiny_config

    write_mixed_folder(tmp_path / "unl")
    logs = []

    def cfg(steps):
        c = tiny_config(steps)
        c.data.unlabeled_dataset = f"folder:{tmp_path / 'unl'}"
        c.data.disjoint = True
        return c

    train_lib.train(cfg(2), str(tmp_path / "w"), dataset=in_memory_dataset(), log=logs.append)
    res = train_lib.train(cfg(3), str(tmp_path / "w"), dataset=in_memory_dataset(), log=logs.append)
    assert res.step == 3
    assert any("at step 2" in m for m in logs)
    assert "d_real_unlabeled" in res.metrics and "d_real_labelled" not in res.metrics
