"""Discriminator D: patch-score shapes, score = mean of the patch scores over the valid patch columns,
the white right margin (scores independent of the batch's width), parameter count of the paper
configuration."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models.discriminator import Discriminator
from tiny_models import tiny_discriminator


def white_margin(d, images):
    """What D scores: ``images`` padded on the right with white to a multiple of 8 columns, plus
    ``d.pad_columns`` (32) white columns."""
    w = images.shape[2]
    extra = d.pad_columns + (-w) % 8
    return tf.pad(images, [[0, 0], [0, 0], [0, extra], [0, 0]], constant_values=1.0)


@pytest.fixture(scope="module")
def disc():
    d = tiny_discriminator()
    images = tf.random.stateless_uniform((2, 32, 64, 1), seed=(0, 1), minval=-1.0, maxval=1.0)
    d((images, None), training=True)  # build + one power iteration (unit u vectors)
    return d, images


def test_patch_scores_shape(disc):
    d, images = disc
    # three down-sampling blocks: 32 x 64 -> 4 x 8 patches
    assert d.patch_scores(images).shape == (2, 4, 8)
    assert d.patch_scores(images[:, :, :48]).shape == (2, 4, 6)
    assert d((images, None)).shape == (2,)


def test_score_is_mean_over_valid_patch_columns(disc):
    """widths [64, 20]: sample 0 uses all 8 patch columns; sample 1 ceil(20 / 8) = 3 columns (the
    third covers pixels 16..23, partly valid); all 4 rows."""
    d, images = disc
    p = d.patch_scores(white_margin(d, images)).numpy()
    s = d((images, tf.constant([64, 20]))).numpy()
    assert s[0] == pytest.approx(p[0, :, :8].mean(), rel=1e-5, abs=1e-7)
    assert s[1] == pytest.approx(p[1, :, :3].mean(), rel=1e-5, abs=1e-7)
    # the masking matters: the mean over all 8 columns is different
    assert abs(p[1, :, :8].mean() - p[1, :, :3].mean()) > 1e-4
    # widths None: the full width (8 columns), not the margin
    np.testing.assert_allclose(d((images, None)).numpy(), p[:, :, :8].mean(axis=(1, 2)), rtol=1e-5,
                               atol=1e-7)


def test_width_rounding_and_at_least_one_column(disc):
    d, images = disc
    p = d.patch_scores(white_margin(d, images)).numpy()
    s = d((images, tf.constant([16, 0]))).numpy()
    assert s[0] == pytest.approx(p[0, :, :2].mean(), rel=1e-5, abs=1e-7)  # 16 px = 2 columns
    assert s[1] == pytest.approx(p[1, :, :1].mean(), rel=1e-5, abs=1e-7)  # width 0 -> 1 column
    s = d((images, tf.constant([17, 8]))).numpy()
    assert s[0] == pytest.approx(p[0, :, :3].mean(), rel=1e-5, abs=1e-7)  # ceil(17 / 8) = 3
    assert s[1] == pytest.approx(p[1, :, :1].mean(), rel=1e-5, abs=1e-7)


def test_inference_scores_do_not_depend_on_the_batch(disc):
    d, images = disc
    both = d((images, tf.constant([64, 20]))).numpy()
    alone = d((images[1:], tf.constant([20]))).numpy()
    assert alone[0] == pytest.approx(both[1], rel=1e-5, abs=1e-7)


def test_receptive_reach_and_margin():
    """Walking back from one patch column j of the 4-block, 3-pooling D gives input columns
    [8j - 30, 8j + 37] (see Discriminator.receptive_reach): 30 beyond the footprint [8j, 8j + 7];
    the margin is that rounded up to the pooling factor, 32."""
    assert Discriminator.receptive_reach(4, 3) == 30
    assert Discriminator.receptive_reach(1, 0) == 2  # one block, no pooling: two 3x3 convs
    # one pooling block: [2j - 2, 2j + 3], 2 beyond the pool's footprint [2j, 2j + 1]
    assert Discriminator.receptive_reach(1, 1) == 2
    assert Discriminator(channels=(4, 4, 4, 4), num_down=3).pad_columns == 32
    assert Discriminator(channels=(4, 4, 4, 4), num_down=3, pad_columns=0).pad_columns == 0


@pytest.mark.parametrize("width", [64, 61])
def test_score_does_not_depend_on_the_width_of_the_batch(disc, width):
    """A word's score is the same whether it is the widest image of its batch (its last patches'
    receptive fields reach the convolutions' zero padding, grey in image units, without the white
    margin) or padded with white by a wider batch-mate. Without the margin it is not."""
    d, images = disc
    word = images[:1, :, :width]
    alone = d((word, tf.constant([width]))).numpy()
    wider = tf.pad(word, [[0, 0], [0, 0], [0, 40], [0, 0]], constant_values=1.0)
    in_wide_batch = d((wider, tf.constant([width]))).numpy()
    assert alone[0] == pytest.approx(in_wide_batch[0], rel=1e-5, abs=1e-6)
    d.pad_columns = 0
    try:
        grey_alone = d((word, tf.constant([width]))).numpy()
        grey_wide = d((wider, tf.constant([width]))).numpy()
    finally:
        d.pad_columns = 32
    assert abs(grey_alone[0] - grey_wide[0]) > 1e-4


def test_num_down_bounds():
    with pytest.raises(ValueError, match="num_down"):
        Discriminator(channels=(4, 4), num_down=3)


def test_paper_discriminator_parameter_count():
    """Paper config (64, 512, 1024, 1024), 3 down-sampling blocks, trainable parameters:

    - block 0 (1 -> 64, no pre-activation): 9*64 + 64, 9*64*64 + 64, 1x1 shortcut 64 + 64
    - block 1 (64 -> 512): 9*64*512 + 512, 9*512*512 + 512, shortcut 64*512 + 512
    - block 2 (512 -> 1024): 9*512*1024 + 1024, 9*1024*1024 + 1024, shortcut 512*1024 + 1024
    - block 3 (1024 -> 1024, no pooling): two 3x3 convs, identity shortcut
    - patch score: 1024 + 1
    Total 36,286,785 = the paper's 36.4M within 0.4%."""
    d = Discriminator()
    d((tf.zeros((1, 32, 16, 1)), None))
    n = sum(int(np.prod(v.shape)) for v in d.trainable_variables)
    expected = ((9 * 64 + 64) + (9 * 64 * 64 + 64) + (64 + 64)
                + (9 * 64 * 512 + 512) + (9 * 512 * 512 + 512) + (64 * 512 + 512)
                + (9 * 512 * 1024 + 1024) + (9 * 1024 * 1024 + 1024) + (512 * 1024 + 1024)
                + 2 * (9 * 1024 * 1024 + 1024) + 1024 + 1)
    assert n == expected == 36_286_785
    assert abs(n - 36.4e6) / 36.4e6 < 0.01
