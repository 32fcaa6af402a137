"""Recognizer R: logits [B, W/4, classes], logit lengths, parameter count of the paper config."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models.recognizer import Recognizer
from tiny_models import NUM_CLASSES, tiny_recognizer


@pytest.fixture(scope="module")
def rec():
    return tiny_recognizer()


@pytest.mark.parametrize("width", [64, 48, 16])
def test_logits_shape(rec, width):
    # two width-halving poolings: W / 4 columns; 5 height poolings: 32 -> 1
    x = tf.random.stateless_uniform((2, 32, width, 1), seed=(0, width), minval=-1.0, maxval=1.0)
    logits = rec(x, training=False)
    assert logits.shape == (2, width // 4, NUM_CLASSES)
    assert np.all(np.isfinite(logits.numpy()))


def test_logit_lengths():
    np.testing.assert_array_equal(
        Recognizer.logit_lengths(tf.constant([64, 16, 50, 3, 0])).numpy(), [16, 4, 12, 1, 1])
    # 16 pixels per character -> 4 logit columns per character
    assert int(Recognizer.logit_lengths(16 * 7)) == 28


def test_training_mode_updates_batch_norm_statistics_and_inference_does_not(rec):
    x = tf.random.stateless_uniform((2, 32, 32, 1), seed=(3, 4), minval=-1.0, maxval=1.0)
    rec(x, training=False)
    before = rec.norms[2].moving_mean.numpy().copy()
    rec(x, training=False)
    np.testing.assert_array_equal(rec.norms[2].moving_mean.numpy(), before)
    rec(x, training=True)
    assert not np.array_equal(rec.norms[2].moving_mean.numpy(), before)


def test_channel_count_check():
    with pytest.raises(ValueError, match="7 convolutions"):
        Recognizer(num_classes=5, channels=(4, 4))


def _paper_recognizer_count():
    r = Recognizer(num_classes=NUM_CLASSES)
    r(tf.zeros((1, 32, 16, 1)))
    return sum(int(np.prod(v.shape)) for v in r.trainable_variables)


def test_paper_recognizer_parameter_count_by_hand():
    """Six 3x3 convs (1-64-128-256-256-512-512) and one 2x2 conv (512-512): 5,546,560 weights;
    biases on the four convs without batch norm (64 + 128 + 256 + 512 = 960); BN gamma/beta after
    conv 2, 4, 6 (2 * (256 + 512 + 512) = 2,560); classifier 512 * 81 + 81 = 41,553.
    Total 5,591,633 trainable parameters."""
    convs = 9 * (1 * 64 + 64 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 512 * 512) + 4 * 512 * 512
    assert convs == 5_546_560
    assert _paper_recognizer_count() == convs + 960 + 2_560 + 512 * 81 + 81 == 5_591_633


def test_paper_recognizer_parameter_count_matches_the_paper():
    """The paper / official code's R has 5.6M parameters (official CRNN, amzn/convolutional-
    handwriting-gan models/OCR_network.py: kernels [3, 3, 3, 3, 3, 3, 2], the last one 'valid')."""
    n = _paper_recognizer_count()
    assert abs(n - 5.6e6) / 5.6e6 < 0.03, f"R has {n:,} parameters, the paper 5.6M"
