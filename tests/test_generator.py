"""Generator G: shapes, white padding, batch independence, locality (receptive field), style noise,
parameter count of the paper configuration."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models import layers as L
from scrabblegan_tf.models.generator import Generator
from tiny_models import ALPHABET, NUM_CLASSES, Z_DIM, tiny_generator


@pytest.fixture(scope="module")
def gen():
    """A tiny G after a few training-mode calls, so that the power-iteration vectors are unit and
    the moving statistics of the norms are not the initial 0 / 1."""
    g = tiny_generator(seed=0)
    ids, lengths = ALPHABET.encode_batch(["hello", "ab", "xyz", "Q"])
    z = tf.random.stateless_normal((4, Z_DIM), seed=(1, 2))
    for _ in range(3):
        g((ids, lengths, z), training=True)
    return g


def _z(n, seed):
    return tf.random.stateless_normal((n, Z_DIM), seed=(seed, 0))


@pytest.mark.parametrize("training", [False, True])
def test_shape_range_and_white_padding(gen, training):
    ids, lengths = ALPHABET.encode_batch(["hello", "ab", "x"])
    x = gen((ids, lengths, _z(3, 0)), training=training).numpy()
    assert x.shape == (3, 32, 16 * 5, 1)  # 32 rows, 16 columns per character of the longest word
    assert np.all(np.abs(x) <= 1.0)  # tanh
    # beyond 16 * len the image is background: exactly +1 (white)
    assert np.all(x[1, :, 32:] == 1.0)
    assert np.all(x[2, :, 16:] == 1.0)
    # the word itself is drawn (not background)
    assert np.all(x[1, :, :32].max(axis=0) < 1.0)
    assert np.abs(x[0] - 1.0).min() > 0.0
    np.testing.assert_array_equal(gen.image_widths(lengths).numpy(), [80, 32, 16])


def test_ids_beyond_the_length_are_padding(gen):
    """The caller's ids beyond ``lengths`` are ignored: garbage there gives the same image as 0s."""
    ids, lengths = ALPHABET.encode_batch(["abc"])
    z = _z(1, 3)
    clean = np.concatenate([ids, np.zeros((1, 2), np.int32)], axis=1)
    dirty = np.concatenate([ids, ALPHABET.encode_batch(["QQ"])[0]], axis=1)
    a = gen((clean, lengths, z)).numpy()
    b = gen((dirty, lengths, z)).numpy()
    np.testing.assert_array_equal(a, b)


def test_word_alone_equals_word_batched_with_a_longer_word(gen):
    """Inference mode: every block zeroes the padded columns before its convolutions and the norms use
    moving statistics, so "ab" is the same image alone and next to a 6-letter word."""
    z = _z(2, 5)
    ids, lengths = ALPHABET.encode_batch(["ab", "letter"])
    batched = gen((ids, lengths, z)).numpy()
    ids1, lengths1 = ALPHABET.encode_batch(["ab"])
    alone = gen((ids1, lengths1, z[:1])).numpy()
    assert alone.shape == (1, 32, 32, 1) and batched.shape == (2, 32, 96, 1)
    np.testing.assert_allclose(alone[0], batched[0, :, :32], atol=1e-6)


@pytest.mark.parametrize("k", [0, 2, 5])
def test_locality_changing_one_character_changes_only_its_receptive_field(gen, k):
    """Receptive field of G along the width, by hand (inference mode, where the norms are pointwise).

    Character k owns base columns [4k, 4k+3] of the filter-bank map (4 columns per character).
    Up-block 1 (x2 nearest): [8k, 8k+7]; conv1 3x3 widens by 1 on each side, conv2 by 1 more:
    [8k-2, 8k+9] (the 1x1 shortcut adds nothing). Up-block 2 (x2): [16k-4, 16k+19], two 3x3 convs:
    [16k-6, 16k+21]. Up-block 3 (x1 in width): two 3x3 convs: [16k-8, 16k+23]. Output 3x3 conv:
    [16k-9, 16k+24]. So changing character k can change output columns 16k-9 .. 16k+24 only (its
    own 16 columns plus 9 on each side); every other column is bit-for-bit unchanged."""
    word = "abcdef"
    other = word[:k] + "X" + word[k + 1:]
    ids, lengths = ALPHABET.encode_batch([word, other])
    z = tf.repeat(_z(1, 7), 2, axis=0)  # same style for both
    x = gen((ids, lengths, z)).numpy()
    diff = np.abs(x[0] - x[1]).max(axis=(0, 2))  # per column
    lo, hi = max(0, 16 * k - 9), min(16 * 6 - 1, 16 * k + 24)
    outside = np.r_[0:lo, hi + 1:96]
    assert np.all(diff[outside] == 0.0)
    # the character's own columns change clearly, and the influence reaches the predicted edges
    assert diff[16 * k:16 * k + 16].min() > 1e-4
    assert diff[lo] > 0.0 and diff[hi] > 0.0


def test_style_noise_same_z_same_image_other_z_other_image(gen):
    ids, lengths = ALPHABET.encode_batch(["style"])
    a = gen((ids, lengths, _z(1, 11))).numpy()
    b = gen((ids, lengths, _z(1, 11))).numpy()
    c = gen((ids, lengths, _z(1, 12))).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-2


def test_constructor_checks():
    with pytest.raises(ValueError, match="num_z_chunks"):
        Generator(num_classes=5, z_dim=32, num_z_chunks=2, channels=(8, 4, 4, 4))
    with pytest.raises(ValueError, match="upsample"):
        Generator(num_classes=5, channels=(8, 4), upsample=((2, 2), (2, 2)), num_z_chunks=2)
    with pytest.raises(ValueError, match="divisible"):
        Generator(num_classes=5, z_dim=30, num_z_chunks=4)


def test_paper_generator_parameter_count():
    """Paper config, 80-symbol alphabet (81 classes incl. the blank), trainable parameters:

    - filter bank: 80 symbols x z_chunk 32 x 4*4*512 (= 8192) + one shared 8192 bias
      = 20,971,520 + 8,192 (the official SNLinear(32 * 80 -> 8192) with its bias)
    - up-block cin -> cout: cbn1 gain+bias 2(32 cin + cin), conv1 9 cin cout + cout,
      cbn2 2(32 cout + cout), conv2 9 cout^2 + cout, 1x1 shortcut cin cout + cout
      (512->256: 1,952,000; 256->128: 496,256; 128->64: 127,424)
    - output norm gamma/beta 2*64, output conv 9*64 + 1
    Total 23,564,929: the paper's 23.5M (+0.28%)."""
    g = Generator(num_classes=NUM_CLASSES)
    g((tf.ones((1, 1), tf.int32), tf.ones((1,), tf.int32), tf.zeros((1, 128))))
    n = sum(int(np.prod(v.shape)) for v in g.trainable_variables)

    def up(cin, cout, zc=32):
        return (2 * (zc * cin + cin) + 9 * cin * cout + cout + 2 * (zc * cout + cout)
                + 9 * cout * cout + cout + cin * cout + cout)

    expected = 80 * 32 * 8192 + 8192 + up(512, 256) + up(256, 128) + up(128, 64) + 2 * 64 + 9 * 64 + 1
    assert expected == 23_564_929
    assert n == expected
    assert abs(n - 23.5e6) / 23.5e6 < 0.005


def test_batch_norm_settings_are_the_official_ones():
    """PyTorch BatchNorm momentum 0.1 (Keras 0.9: moving = 0.9 moving + 0.1 batch) and eps 1e-5 in
    G (from the config defaults) and R: one training call moves G's moving mean 10% of the way to
    the batch mean."""
    from scrabblegan_tf.core.config import ModelConfig
    from scrabblegan_tf.models.factory import make_generator, make_recognizer

    cfg = ModelConfig(width_mult=1 / 16, z_dim=32)
    assert (cfg.bn_momentum, cfg.bn_eps) == (0.9, 1e-5)
    g = make_generator(cfg, NUM_CLASSES)
    r = make_recognizer(cfg, NUM_CLASSES)
    norms = [g.out_bn] + [getattr(b, n) for b in g.blocks for n in ("cbn1", "cbn2")]
    assert all((m.momentum, m.epsilon) == (0.9, 1e-5) for m in norms)
    r(tf.ones((1, 32, 16, 1)))
    assert all((bn.momentum, bn.epsilon) == (0.9, 1e-5) for bn in r.norms if bn is not None)
    bn = L.MaskedBatchNorm(conditional=False, momentum=cfg.bn_momentum, epsilon=cfg.bn_eps)
    x = tf.fill((2, 1, 3, 1), 5.0)
    bn(x, tf.ones((2, 1, 3, 1)), training=True)
    assert float(bn.moving_mean[0]) == pytest.approx(0.5)  # 0.9 * 0 + 0.1 * 5
    assert float(bn.moving_var[0]) == pytest.approx(0.9)  # 0.9 * 1 + 0.1 * 0


@pytest.mark.parametrize("training", [False, True])
def test_bfloat16_generator_keeps_float32_variables_and_exact_white_padding(training):
    """Under mixed_bfloat16 G computes its convolutions in bfloat16, keeps float32 variables and
    batch-norm statistics, and returns a float32 image whose padded columns are exactly +1."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        g = Generator(num_classes=NUM_CLASSES, z_dim=32, channels=(32, 16, 8, 4))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    ids, lengths = ALPHABET.encode_batch(["hello", "ab"])
    z = tf.random.stateless_normal((2, 32), seed=(1, 2))
    x = g((ids, lengths, z), training=training)
    assert g.compute_dtype == "bfloat16" and x.dtype == tf.float32
    assert all(v.dtype == "float32" for v in g.weights)
    x = x.numpy()
    assert np.all(x[1, :, 32:] == 1.0) and np.all(np.abs(x) <= 1.0)
    assert np.std(x[1, :, :32]) > 0  # the word itself is drawn


def test_a_space_is_a_gap_between_words_drawn_alone():
    """gap_ids (the space): "ab cd" is "ab" and "cd" each drawn alone with the same z, with a white
    character-wide gap between them (inference mode; training never sees spaces, the fake words
    are letters only)."""
    import keras

    keras.utils.set_random_seed(0)
    space = ALPHABET.encode(" ")[0]
    g = Generator(num_classes=NUM_CLASSES, z_dim=Z_DIM, channels=(16, 8, 8, 4), gap_ids=(space,))
    z = tf.random.stateless_normal((1, Z_DIM), seed=(4, 2))
    ids, lengths = ALPHABET.encode_batch(["ab cd", "ab", "cd"])
    g((ids, lengths, tf.concat([z] * 3, 0)), training=True)  # move the norms' statistics
    x = g((ids, lengths, tf.concat([z] * 3, 0)), training=False).numpy()
    cw = g.char_width
    np.testing.assert_allclose(x[0, :, : 2 * cw], x[1, :, : 2 * cw], atol=1e-5)
    np.testing.assert_array_equal(x[0, :, 2 * cw: 3 * cw], 1.0)
    np.testing.assert_allclose(x[0, :, 3 * cw: 5 * cw], x[2, :, : 2 * cw], atol=1e-5)
    plain = Generator(num_classes=NUM_CLASSES, z_dim=Z_DIM, channels=(16, 8, 8, 4))
    plain((ids[:1], lengths[:1], z))
    plain.set_weights(g.get_weights())
    y = plain((ids[:1], lengths[:1], z), training=False).numpy()
    assert not np.allclose(y[0, :, 2 * cw: 3 * cw], 1.0)  # without gap_ids the space is drawn
