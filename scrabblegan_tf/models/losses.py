"""Losses of ScrabbleGAN: hinge (D and G), CTC (R and G), and the gradient-balancing coefficient."""

from __future__ import annotations

import tensorflow as tf


def d_hinge_loss(real_scores, fake_scores):
    """Discriminator hinge loss (Lim & Ye 2017; Miyato et al. 2018; BigGAN):
    ``mean(relu(1 - D(x_real))) + mean(relu(1 + D(x_fake)))``.

    Returns (total, real_part, fake_part), each a scalar.
    """
    real = tf.reduce_mean(tf.nn.relu(1.0 - real_scores))
    fake = tf.reduce_mean(tf.nn.relu(1.0 + fake_scores))
    return real + fake, real, fake


def g_hinge_loss(fake_scores):
    """Generator hinge loss: ``-mean(D(G(z)))`` (Lim & Ye 2017; BigGAN)."""
    return -tf.reduce_mean(fake_scores)


def ctc_loss(labels, label_lengths, logits, logit_lengths):
    """Per-sample CTC negative log-likelihood (Graves et al. 2006), blank = class 0.

    ``logits`` [B, T, C] are turned into log-probabilities with a log-softmax over C; ``labels``
    [B, L] hold ids 1..C-1 padded with 0; lengths are per sample. Infinite losses (a label that
    cannot fit in its logit length: fewer frames than symbols plus repeated neighbours) are replaced
    by 0, like PyTorch's ``zero_infinity=True``, so they contribute no gradient.

    Returns (losses [B], num_infinite int32 scalar).
    """
    labels = tf.cast(labels, tf.int32)
    label_lengths = tf.cast(label_lengths, tf.int32)
    logit_lengths = tf.cast(logit_lengths, tf.int32)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    losses = tf.nn.ctc_loss(
        labels=labels,
        logits=log_probs,
        label_length=label_lengths,
        logit_length=logit_lengths,
        logits_time_major=False,
        blank_index=0,
    )
    # TF's CPU kernel returns a large finite value (not inf) for a label that cannot fit, so
    # feasibility is checked explicitly: a path needs one frame per symbol plus one blank between
    # each pair of equal neighbours.
    in_label = tf.sequence_mask(label_lengths, tf.shape(labels)[1])
    repeats = tf.reduce_sum(
        tf.cast((labels[:, 1:] == labels[:, :-1]) & in_label[:, 1:], tf.int32), axis=1)
    finite = tf.math.is_finite(losses) & (label_lengths + repeats <= logit_lengths)
    num_inf = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int32))
    return tf.where(finite, losses, tf.zeros_like(losses)), num_inf


def _global_std(x):
    """Standard deviation over all elements of ``x`` and, inside ``strategy.run``, over all replicas
    (two passes: mean, then mean squared deviation), so that a replicated step sees the same value as
    a single device with the whole batch."""
    ctx = tf.distribute.get_replica_context()
    x = tf.cast(x, tf.float32)
    n = tf.cast(tf.size(x), tf.float32)
    s = tf.reduce_sum(x)
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        n, s = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [n, s])
    mean = s / n
    ss = tf.reduce_sum(tf.square(x - mean))
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        ss = ctx.all_reduce(tf.distribute.ReduceOp.SUM, ss)
    return tf.sqrt(ss / n)


def balance_coefficient(grad_adv, grad_ctc, alpha=1.0, epsilon=1e-8):
    """ScrabbleGAN's gradient balancing (Fogel et al. 2020, Eq. 3; after Alonso et al. 2019):

    ``a = alpha * std(grad_adv) / (epsilon + std(grad_ctc))``

    where the gradients are those of the adversarial and CTC losses w.r.t. the generated images. The
    generator then follows ``grad_adv + a * grad_ctc``, whose CTC part has ``alpha`` times the spread
    of the adversarial part. ``a`` is a constant for differentiation (stop-gradient).

    On ``alpha``: the official code (``ScrabbleGAN_baseModel.backward_G``) calls backward three
    times on the same graph, accumulating ``(L_adv + alpha L_ctc) + 2 (L_adv + a L_ctc)``, so its
    G follows ``3 grad_adv + (alpha + 2a) grad_ctc``: with alpha = 1 the unbalanced CTC term
    dominates, a CTC spread of ``(1 + 2a) / (3a)`` times the adversarial one: about 170 for
    a = 0.002 (seen early in training here), 8 for a = 0.05 (seen later). The project's default alpha (30,
    ``config.OptimConfig``) gives that ratio with the balanced formula and one backward pass.
    """
    a = alpha * _global_std(grad_adv) / (epsilon + _global_std(grad_ctc))
    return tf.stop_gradient(a)
