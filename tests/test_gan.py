"""ScrabbleGAN: the D, R and G updates touch only their own network, their gradients are the
gradients of the stated losses (the G step's single backward pass included), train_step runs eagerly
and traced. Distribution is tested in test_mirrored.py."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models import losses
from scrabblegan_tf.models.gan import METRIC_NAMES, concat_padded
from scrabblegan_tf.models.recognizer import Recognizer
from tiny_models import ALPHABET, LEXICON, Z_DIM, real_batch, snapshot, tiny_gan, trainable_snapshot

B = 2


@pytest.fixture(scope="module")
def gan():
    return tiny_gan(g_every=2)


class CaptureGradients:
    """Stands in for an optimizer: records the gradients instead of applying them."""

    def __init__(self):
        self.grads = None

    def apply_gradients(self, grads_and_vars):
        self.grads = {v.path: g.numpy() for g, v in grads_and_vars}


def _restore(model, snap):
    for v in model.weights:
        v.assign(snap[v.path])


def _inputs(seed=0):
    """A real batch ("hi", "yes": width 48) and fake words of at most 3 letters (also width 48)."""
    images, widths, _, _ = real_batch(["hi", "yes"], seed=seed)
    fake_ids, fake_lengths = ALPHABET.encode_batch(["cab", "ab"])
    z = tf.random.stateless_normal((B, Z_DIM), seed=(seed, 9))
    return (tf.constant(images), tf.constant(widths), tf.constant(fake_ids),
            tf.constant(fake_lengths), z)


def _assert_unchanged(before, model, trainable_only=False):
    vs = model.trainable_variables if trainable_only else model.weights
    for v in vs:
        np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=v.path)


def _changed(before, model):
    return {v.path for v in model.trainable_variables if not np.array_equal(v.numpy(), before[v.path])}


def _assert_close(got: dict, want: dict):
    """Per-variable comparison with an absolute tolerance relative to the largest gradient (some
    gradients, e.g. of conv biases that feed a batch norm, are ~1e-9 and only noise)."""
    assert got.keys() == want.keys()
    scale = max(np.abs(w).max() for w in want.values())
    assert scale > 0
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)


def test_concat_padded_pads_with_white():
    a = tf.zeros((1, 2, 2, 1))
    b = -tf.ones((2, 2, 3, 1))
    out = concat_padded([a, b]).numpy()
    assert out.shape == (3, 2, 3, 1)
    assert np.all(out[0, :, :2] == 0.0) and np.all(out[0, :, 2] == 1.0)
    assert np.all(out[1:] == -1.0)


def test_sample_words_come_from_the_lexicon(gan):
    ids, lengths = gan.sample_words(16)
    ids, lengths = ids.numpy(), lengths.numpy()
    assert ids.shape == (16, lengths.max())  # cut to the longest sampled word
    words = {ALPHABET.decode(row[:n]) for row, n in zip(ids, lengths)}
    assert words <= set(LEXICON)
    assert np.all(ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] == 0)
    assert gan.sample_z(3).shape == (3, Z_DIM)


def test_d_step_updates_d_only(gan):
    """Every D variable moves except the bias of the patch score: a score is mean(patches) + b, so
    d loss / d b = -1 (reals inside the margin) + 1 (fakes inside the margin) = 0 exactly while
    |D| < 1 for all samples, as at initialisation."""
    g0, d0, r0 = (trainable_snapshot(gan.generator), trainable_snapshot(gan.discriminator),
                  snapshot(gan.recognizer))
    loss, d_real, d_fake = gan.d_step(*_inputs(1))
    assert np.isfinite(float(loss))
    assert abs(float(d_real)) < 1 and abs(float(d_fake)) < 1
    _assert_unchanged(g0, gan.generator, trainable_only=True)  # (G's norm statistics may move)
    _assert_unchanged(r0, gan.recognizer)
    bias = gan.discriminator.out.bias.path
    assert _changed(d0, gan.discriminator) == set(d0) - {bias}


def test_d_step_gradient_is_the_hinge_gradient(gan):
    """The D step's gradient equals d/dD [mean relu(1 - D(real)) + mean relu(1 + D(G(z)))],
    recomputed here from the same state (the returned loss too)."""
    args = _inputs(2)
    real, widths, fake_ids, fake_lengths, z = args
    state = [snapshot(m) for m in (gan.generator, gan.discriminator, gan.recognizer)]
    opt, gan.d_optimizer = gan.d_optimizer, CaptureGradients()
    try:
        loss, d_real, d_fake = gan.d_step(*args)
        captured = gan.d_optimizer.grads
    finally:
        gan.d_optimizer = opt
    for m, s in zip((gan.generator, gan.discriminator, gan.recognizer), state):
        _restore(m, s)
    fake = gan.generator((fake_ids, fake_lengths, z), training=True)
    d = gan.discriminator
    with tf.GradientTape() as tape:
        # both batches are 48 pixels wide, so no padding is needed to score them together
        scores = d((tf.concat([real, fake], 0), tf.concat([widths, 16 * fake_lengths], 0)),
                   training=True)
        want_loss = (tf.reduce_mean(tf.nn.relu(1.0 - scores[:B]))
                     + tf.reduce_mean(tf.nn.relu(1.0 + scores[B:])))
    want = {v.path: g.numpy() for v, g in zip(d.trainable_variables,
                                              tape.gradient(want_loss, d.trainable_variables))}
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-5)
    assert float(d_real) == pytest.approx(float(tf.reduce_mean(scores[:B])), rel=1e-4, abs=1e-7)
    assert float(d_fake) == pytest.approx(float(tf.reduce_mean(scores[B:])), rel=1e-4, abs=1e-7)
    _assert_close(captured, want)


def test_r_step_updates_r_only_with_the_ctc_gradient(gan):
    images, widths, labels, label_lengths = real_batch(["hi", "yes"], seed=3)
    g0, d0, r0 = snapshot(gan.generator), snapshot(gan.discriminator), snapshot(gan.recognizer)
    loss, n_inf = gan.r_step(images, widths, labels, label_lengths)
    assert int(n_inf) == 0 and float(loss) > 0
    _assert_unchanged(g0, gan.generator)
    _assert_unchanged(d0, gan.discriminator)
    changed = _changed({v.path: r0[v.path] for v in gan.recognizer.trainable_variables},
                       gan.recognizer)
    assert {v.path for v in gan.recognizer.convs[0].trainable_variables} <= changed
    assert gan.recognizer.classifier.kernel.path in changed
    # SGD(0.1): delta = -0.1 * d mean(CTC) / dR, recomputed from the same state
    after = {v.path: v.numpy() for v in gan.recognizer.trainable_variables}
    _restore(gan.recognizer, r0)
    r = gan.recognizer
    with tf.GradientTape() as tape:
        per, _ = losses.ctc_loss(labels, label_lengths, r(images, training=True),
                                 Recognizer.logit_lengths(widths))
        want_loss = tf.reduce_mean(per)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-5)
    want = {v.path: -0.1 * g.numpy() for v, g in zip(r.trainable_variables,
                                                     tape.gradient(want_loss, r.trainable_variables))}
    _assert_close({k: after[k] - r0[k] for k in want}, want)
    for v in r.trainable_variables:  # leave the fixture in its updated state
        v.assign(after[v.path])


def test_g_step_updates_g_only(gan):
    _, _, fake_ids, fake_lengths, z = _inputs(4)
    g0, d0, r0 = (trainable_snapshot(gan.generator), trainable_snapshot(gan.discriminator),
                  snapshot(gan.recognizer))
    adv, ctc, a, n_inf = gan.g_step(fake_ids, fake_lengths, z)
    assert np.isfinite(float(adv)) and float(ctc) > 0 and float(a) > 0 and int(n_inf) == 0
    _assert_unchanged(d0, gan.discriminator, trainable_only=True)  # (D's u vectors may move)
    _assert_unchanged(r0, gan.recognizer)  # R runs in inference mode: nothing moves
    changed = _changed(g0, gan.generator)
    assert {gan.generator.filter_bank.kernel.path, gan.generator.out_conv.kernel.path} <= changed
    assert len(changed) > 0.8 * len(g0)


def test_g_step_single_backward_pass_equals_the_naive_gradient(gan):
    """g_step pushes (dL_adv/dx + a dL_ctc/dx) through G once. The naive way: one tape over G,
    L = L_adv + stop_gradient(a) * L_ctc, tape.gradient(L, G). Same state, same inputs, so the two
    must agree to float rounding. The gradient of L_adv alone differs clearly (a * L_ctc matters)."""
    _, _, fake_ids, fake_lengths, z = _inputs(5)
    g, d, r = gan.generator, gan.discriminator, gan.recognizer
    state = [snapshot(m) for m in (g, d, r)]
    opt, gan.g_optimizer = gan.g_optimizer, CaptureGradients()
    try:
        _, _, a_step, _ = gan.g_step(fake_ids, fake_lengths, z)
        captured = gan.g_optimizer.grads
    finally:
        gan.g_optimizer = opt
    for m, s in zip((g, d, r), state):
        _restore(m, s)
    widths = 16 * fake_lengths
    with tf.GradientTape(persistent=True) as tape:
        fake = g((fake_ids, fake_lengths, z), training=True)
        with tf.GradientTape(persistent=True) as x_tape:
            x_tape.watch(fake)
            adv = -tf.reduce_mean(d((fake, widths), training=True))
            per, _ = losses.ctc_loss(fake_ids, fake_lengths, r(fake, training=False),
                                     Recognizer.logit_lengths(widths))
            ctc = tf.reduce_mean(per)
        g_adv, g_ctc = x_tape.gradient(adv, fake).numpy(), x_tape.gradient(ctc, fake).numpy()
        a = tf.constant(np.std(g_adv) / (1e-8 + np.std(g_ctc)), tf.float32)  # alpha = 1
        total = adv + a * ctc
    assert float(a_step) == pytest.approx(float(a), rel=1e-4)
    want = {v.path: gr.numpy() for v, gr in zip(g.trainable_variables,
                                                 tape.gradient(total, g.trainable_variables))}
    adv_only = {v.path: gr.numpy() for v, gr in zip(g.trainable_variables,
                                                    tape.gradient(adv, g.trainable_variables))}
    del tape, x_tape
    _assert_close(captured, want)
    scale = max(np.abs(w).max() for w in want.values())
    assert max(np.abs(captured[k] - adv_only[k]).max() for k in want) > 100 * 1e-5 * scale


def _train_data(seed):
    images, widths, labels, label_lengths = real_batch(["hi", "yes", "on", "cat"], seed=seed)
    return {"image": tf.constant(images), "image_width": tf.constant(widths),
            "label": tf.constant(labels), "label_length": tf.constant(label_lengths)}


def _check_metrics(out):
    assert set(out) == set(METRIC_NAMES)
    vals = {k: float(v) for k, v in out.items()}
    assert all(np.isfinite(v) for v in vals.values()), vals
    # |D| << 1 at (near) initialisation, so both hinge terms are ~1
    assert 1.8 < vals["d_loss"] < 2.2
    assert vals["r_ctc"] > 0 and vals["g_ctc"] > 0 and vals["gb_scale"] > 0
    assert vals["ctc_inf"] == 0.0


def test_train_step_eager_and_traced():
    """One iteration = g_every (2) D and R mini-batches of B = 2 and one G update: eagerly, then once
    traced with tf.function (graph mode; the suite's only trace, ~25 s)."""
    gan = tiny_gan(g_every=2, seed=3)
    d0 = trainable_snapshot(gan.discriminator)
    g0 = trainable_snapshot(gan.generator)
    r0 = trainable_snapshot(gan.recognizer)
    assert int(gan.step.numpy()) == 0
    _check_metrics(gan.train_step(_train_data(0)))
    assert int(gan.step.numpy()) == 1
    for before, m in ((d0, gan.discriminator), (g0, gan.generator), (r0, gan.recognizer)):
        assert _changed(before, m)
    # two D steps of SGD and one G step happened: the D optimizer counted 2 iterations, G 1
    assert int(gan.d_optimizer.iterations.numpy()) == 2
    assert int(gan.r_optimizer.iterations.numpy()) == 2
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    step = tf.function(gan.train_step, jit_compile=False)
    _check_metrics(step(_train_data(1)))
    assert int(gan.step.numpy()) == 2
    assert int(gan.g_optimizer.iterations.numpy()) == 2


def test_traced_mini_batch_loop_equals_the_unrolled_mini_batches():
    """Traced on one device, the g_every mini-batches run as one tf.while_loop, one after the
    other; the same iteration with them unrolled (as under MirroredStrategy) gives the same
    metrics and weights (SGD: a mini-batch that read the weights before the previous update
    would differ by a whole step)."""
    looped, unrolled = tiny_gan(g_every=2, seed=5), tiny_gan(g_every=2, seed=5)
    unrolled._can_loop = lambda: False
    assert looped._can_loop()
    outs = [tf.function(g.train_step, jit_compile=False)(_train_data(2)) for g in (looped, unrolled)]
    for k in outs[1]:
        np.testing.assert_allclose(float(outs[0][k]), float(outs[1][k]), rtol=1e-5, err_msg=k)
    for a, b in zip(looped.weights, unrolled.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    assert int(looped.d_optimizer.iterations.numpy()) == 2 == int(looped.r_optimizer.iterations.numpy())
    assert int(looped.step.numpy()) == 1


def test_warmup_step_updates_r_only():
    """An R warm-up iteration (optim.r_warmup_steps): the g_every R updates of train_step, no D or
    G update, and it counts as an iteration."""
    gan = tiny_gan(g_every=2, seed=4)
    d0, g0 = snapshot(gan.discriminator), snapshot(gan.generator)
    r0 = trainable_snapshot(gan.recognizer)
    out = gan.warmup_step(_train_data(0))
    _assert_unchanged(d0, gan.discriminator)
    _assert_unchanged(g0, gan.generator)
    assert _changed(r0, gan.recognizer)
    assert int(gan.r_optimizer.iterations.numpy()) == 2
    assert int(gan.d_optimizer.iterations.numpy()) == 0 == int(gan.g_optimizer.iterations.numpy())
    assert int(gan.step.numpy()) == 1
    assert float(out["r_ctc"]) > 0


def test_read_returns_r_logits_and_lengths(gan):
    """R reads 4 logit columns per 16-pixel character: widths 48 and 32 -> 12 and 8 columns."""
    images, widths, _, _ = real_batch(["hi", "yes"], seed=2)
    logits, lengths = gan.read(images, widths)
    assert logits.shape == (2, 12, 81) and logits.dtype == tf.float32
    assert list(lengths.numpy()) == [8, 12]
