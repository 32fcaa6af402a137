"""Losses: hinge (D, G), CTC against hand-computed path probabilities, infeasible labels, gradient
balancing coefficient."""

import math

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models import losses


# -- hinge --------------------------------------------------------------------------------------
def test_d_hinge_loss_by_hand():
    real = tf.constant([2.0, 0.5, -1.0])  # relu(1 - s) = 0, 0.5, 2   -> mean 2.5 / 3
    fake = tf.constant([-2.0, 0.0, 0.5, 3.0])  # relu(1 + s) = 0, 1, 1.5, 4 -> mean 6.5 / 4
    total, r, f = losses.d_hinge_loss(real, fake)
    assert float(r) == pytest.approx(2.5 / 3)
    assert float(f) == pytest.approx(6.5 / 4)
    assert float(total) == pytest.approx(2.5 / 3 + 6.5 / 4)


def test_d_hinge_loss_is_zero_beyond_the_margin_and_gradients_by_hand():
    total, _, _ = losses.d_hinge_loss(tf.constant([1.0, 5.0]), tf.constant([-1.0, -7.0]))
    assert float(total) == 0.0
    real = tf.Variable([0.5, 2.0])
    fake = tf.Variable([0.0, -3.0])
    with tf.GradientTape() as tape:
        total, _, _ = losses.d_hinge_loss(real, fake)
    g_real, g_fake = tape.gradient(total, [real, fake])
    # d/ds mean(relu(1 - s)) = -1/n inside the margin, 0 outside; d/ds mean(relu(1 + s)) = +1/n
    np.testing.assert_allclose(g_real.numpy(), [-0.5, 0.0])
    np.testing.assert_allclose(g_fake.numpy(), [0.5, 0.0])


def test_g_hinge_loss_by_hand():
    assert float(losses.g_hinge_loss(tf.constant([1.0, -3.0, 0.5]))) == pytest.approx(0.5)
    s = tf.Variable([1.0, -3.0])
    with tf.GradientTape() as tape:
        loss = losses.g_hinge_loss(s)
    np.testing.assert_allclose(tape.gradient(loss, s).numpy(), [-0.5, -0.5])  # no margin for G


# -- CTC ----------------------------------------------------------------------------------------
def test_ctc_uniform_logits_one_symbol_two_frames():
    """T = 2, 3 classes (blank 0, 'a' = 1, 'b' = 2), uniform logits: every frame has p = 1/3.
    Paths that collapse to 'a': 'a a', 'a -', '- a' -> P = 3/9, loss = -ln(1/3) = ln 3."""
    logits = tf.zeros((1, 2, 3))
    loss, n_inf = losses.ctc_loss(tf.constant([[1]]), tf.constant([1]), logits, tf.constant([2]))
    assert float(loss[0]) == pytest.approx(math.log(3.0), rel=1e-5)
    assert int(n_inf) == 0


def test_ctc_repeated_symbol_needs_a_blank_between():
    """'aa' in T = 3 frames: the only path is 'a - a' -> P = (1/3)^3, loss = 3 ln 3."""
    loss, _ = losses.ctc_loss(tf.constant([[1, 1]]), tf.constant([2]), tf.zeros((1, 3, 3)),
                              tf.constant([3]))
    assert float(loss[0]) == pytest.approx(3.0 * math.log(3.0), rel=1e-5)


def test_ctc_non_uniform_logits_and_log_softmax():
    """T = 1, logits [0, ln 2, 0] (+ 5 on every class, which the log-softmax removes):
    p = [1/4, 1/2, 1/4]; label 'b' (id 2): loss = ln 4."""
    logits = tf.constant([[[0.0, math.log(2.0), 0.0]]]) + 5.0
    loss, _ = losses.ctc_loss(tf.constant([[2]]), tf.constant([1]), logits, tf.constant([1]))
    assert float(loss[0]) == pytest.approx(math.log(4.0), rel=1e-5)


def test_ctc_lengths_are_per_sample():
    """Padding in labels (0) and in frames beyond the logit length is ignored: sample 0 is the
    ln 3 case of above inside a padded [2, 4, 3] batch; sample 1 is 'ab' in 2 frames: only path
    'a b' -> (1/3)^2 -> 2 ln 3. Frames 2 and 3 of sample 0 hold huge logits that must not matter."""
    logits = np.zeros((2, 4, 3), np.float32)
    logits[0, 2:] = [50.0, -50.0, 7.0]
    labels = tf.constant([[1, 0], [1, 2]])
    loss, n_inf = losses.ctc_loss(labels, tf.constant([1, 2]), tf.constant(logits), tf.constant([2, 2]))
    np.testing.assert_allclose(loss.numpy(), [math.log(3.0), 2.0 * math.log(3.0)], rtol=1e-5)
    assert int(n_inf) == 0


def test_ctc_infeasible_labels_are_zeroed_and_counted():
    """A label that cannot be aligned to its frames has probability 0 (loss +inf): 'abc' in T = 2,
    and 'aa' in T = 2 (the repeat needs a blank in between: 3 frames). ``ctc_loss`` promises to
    replace such losses by 0 and to count them. On CPU ``tf.nn.ctc_loss`` (dense labels) does not
    return inf for them but a large finite number (~707 = -ln of the smallest double), so
    ``tf.math.is_finite`` never fires: the losses stay ~707 and the count is 0."""
    logits = tf.zeros((3, 2, 3))
    labels = tf.constant([[1, 0, 0], [1, 2, 1], [1, 1, 0]])
    loss, n_inf = losses.ctc_loss(labels, tf.constant([1, 3, 2]), logits, tf.constant([2, 2, 2]))
    np.testing.assert_allclose(loss.numpy(), [math.log(3.0), 0.0, 0.0], rtol=1e-5, atol=1e-6)
    assert int(n_inf) == 2


def test_ctc_infeasible_labels_contribute_no_gradient():
    logits = tf.Variable(tf.zeros((2, 2, 3)))
    with tf.GradientTape() as tape:
        loss, _ = losses.ctc_loss(tf.constant([[1, 0, 0], [1, 2, 1]]), tf.constant([1, 3]), logits,
                                  tf.constant([2, 2]))
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, logits).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[0]).max() > 0.1  # the feasible sample learns
    np.testing.assert_array_equal(grad[1], np.zeros((2, 3)))  # the infeasible one does not


def test_ctc_gradient_uniform_case_by_hand():
    """Uniform logits, label 'a', T = 2: the posterior of class c at frame t is
    gamma_t(a) = 2/3 (paths 'a a', and one of 'a -' / '- a'), gamma_t(-) = 1/3, gamma_t(b) = 0.
    d loss / d logit_tc = softmax_tc - gamma_tc = 1/3 - [1/3, 2/3, 0] = [0, -1/3, 1/3]."""
    logits = tf.Variable(tf.zeros((1, 2, 3)))
    with tf.GradientTape() as tape:
        loss, _ = losses.ctc_loss(tf.constant([[1]]), tf.constant([1]), logits, tf.constant([2]))
    grad = tape.gradient(loss, logits).numpy()[0]
    np.testing.assert_allclose(grad, [[0.0, -1 / 3, 1 / 3]] * 2, atol=1e-5)


# -- gradient balancing -------------------------------------------------------------------------
def test_balance_coefficient_by_hand():
    """grad_adv = [[1, -1], [1, -1]]: mean 0, std 1; grad_ctc = [[0, 4], [0, 4]]: mean 2, std 2
    (population std over all elements). alpha = 0.5 -> a = 0.5 * 1 / 2 = 0.25."""
    ga = tf.constant([[1.0, -1.0], [1.0, -1.0]])
    gc = tf.constant([[0.0, 4.0], [0.0, 4.0]])
    assert float(losses.balance_coefficient(ga, gc, alpha=0.5, epsilon=0.0)) == pytest.approx(0.25)
    # epsilon is added to the CTC std: 0.5 * 1 / (2 + 2) = 0.125
    assert float(losses.balance_coefficient(ga, gc, alpha=0.5, epsilon=2.0)) == pytest.approx(0.125)
    # scale invariance of the direction: a scales inversely with grad_ctc
    assert float(losses.balance_coefficient(ga, 10.0 * gc, 1.0, 0.0)) == pytest.approx(0.05)


def test_balanced_ctc_gradient_has_alpha_times_the_adversarial_spread():
    rng = np.random.default_rng(0)
    ga = tf.constant(rng.normal(0.0, 1e-3, (4, 32, 48, 1)).astype(np.float32))
    gc = tf.constant(rng.normal(0.3, 5.0, (4, 32, 48, 1)).astype(np.float32))
    for alpha in (1.0, 0.1):
        a = losses.balance_coefficient(ga, gc, alpha=alpha, epsilon=0.0)
        assert float(tf.math.reduce_std(a * gc)) == pytest.approx(
            alpha * float(tf.math.reduce_std(ga)), rel=1e-4)


def test_balance_coefficient_is_a_constant_for_differentiation():
    ga = tf.Variable([[1.0, -1.0, 3.0]])
    gc = tf.Variable([[0.0, 4.0, 1.0]])
    with tf.GradientTape(persistent=True) as tape:
        a = losses.balance_coefficient(ga, gc, alpha=1.0, epsilon=0.0)
        combined = tf.reduce_sum(ga) + a * tf.reduce_sum(gc)
    assert float(a) > 0
    for g in tape.gradient(a, [ga, gc]):
        assert g is None or np.all(g.numpy() == 0.0)
    # through the combination only the explicit factor a remains: d/d gc = a, d/d ga = 1
    g_ga, g_gc = tape.gradient(combined, [ga, gc])
    np.testing.assert_allclose(g_ga.numpy(), [[1.0, 1.0, 1.0]])
    np.testing.assert_allclose(g_gc.numpy(), [[float(a)] * 3], rtol=1e-6)
    del tape
