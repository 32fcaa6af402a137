"""``ScrabbleGAN``: a Keras model owning G, D and R, with the training iteration in ``train_step``.

One call of ``train_step(batch)`` is one training iteration. The batch holds ``g_every`` consecutive
mini-batches of real labelled words (``g_every * B`` rows, padded to a common width), and the step
does, for each mini-batch in turn,

- a D step: hinge loss on the real mini-batch vs. G's images of fresh lexicon words with fresh z;
- an R step: CTC loss on the real mini-batch (R never sees generated images as training data);

then one G step: ``L_adv + a * L_ctc`` on fresh words and z, with ``a`` from ``balance_coefficient``
of the gradients of both terms w.r.t. the generated images, and a single backward pass through G
(the combined image gradient is pushed through G once).

Why G runs every ``g_every`` mini-batches *inside* one step instead of behind a ``tf.cond``:
under ``tf.distribute.MirroredStrategy`` an optimizer update (a cross-replica sync point) inside a
``tf.cond`` branch fails ("merge_call called while defining a new graph"). Unrolling the D/R
mini-batches keeps every update at the top level of the replica function, so the same step runs on
one device, under ``MirroredStrategy``, and with ``model.fit``.

Losses are divided by the number of replicas before differentiation because Keras 3 optimizers sum
the replicas' gradients.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from scrabblegan_tf import losses
from scrabblegan_tf.recognizer import Recognizer

METRIC_NAMES = ("d_loss", "d_real", "d_fake", "r_ctc", "g_adv", "g_ctc", "gb_scale", "ctc_inf")


def concat_padded(images, value: float = 1.0):
    """Concatenates [B_i, H, W_i, C] images along the batch, padding each on the right with
    ``value`` (white) to the widest."""
    width = tf.reduce_max(tf.stack([tf.shape(im)[2] for im in images]))
    return tf.concat(
        [tf.pad(im, [[0, 0], [0, 0], [0, width - tf.shape(im)[2]], [0, 0]], constant_values=value)
         for im in images], 0)


class ScrabbleGAN(keras.Model):
    def __init__(self, *, generator, discriminator, recognizer, word_ids, word_lengths,
                 g_every: int = 4, gb_alpha: float = 1.0, gb_epsilon: float = 1e-8, seed: int = 0,
                 semi_supervised: bool = False, disjoint: bool = False,
                 name: str = "scrabblegan", **kwargs):
        """``word_ids`` [N, L] / ``word_lengths`` [N]: the lexicon the fake words are drawn from
        (ids from the alphabet, 0-padded).

        ``semi_supervised``: batches also carry ``unlabeled_image`` / ``unlabeled_width`` (real
        images without labels, e.g. of the test-time domain), and every mini-batch adds a D step on
        them (Fogel et al. 2020, Sec. 3.4). ``disjoint``: D trains on the unlabeled images only and
        R on the labelled ones only.
        """
        if disjoint and not semi_supervised:
            raise ValueError("disjoint training needs an unlabeled stream (semi_supervised=True)")
        super().__init__(name=name, **kwargs)
        self.semi_supervised = bool(semi_supervised)
        self.disjoint = bool(disjoint)
        self.generator = generator
        self.discriminator = discriminator
        self.recognizer = recognizer
        self.g_every = int(g_every)
        self.gb_alpha = float(gb_alpha)
        self.gb_epsilon = float(gb_epsilon)
        self.z_dim = generator.z_dim
        self.char_width = generator.char_width
        self.word_ids = tf.constant(word_ids, tf.int32)
        self.word_lengths = tf.constant(word_lengths, tf.int32)
        if self.word_ids.shape[0] == 0:
            raise ValueError("The lexicon is empty: no word to generate.")
        self.rng = tf.random.Generator.from_seed(seed)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        names = list(METRIC_NAMES)
        if self.semi_supervised:
            names[names.index("d_real")] = "d_real_labelled"
            names.insert(names.index("d_real_labelled") + 1, "d_real_unlabeled")
            if self.disjoint:
                names.remove("d_real_labelled")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    # -- Keras plumbing ---------------------------------------------------------------------
    def compile(self, g_optimizer, d_optimizer, r_optimizer, **kwargs):
        """One optimizer per network; build them inside ``strategy.scope()`` (``build_optimizers``)."""
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.r_optimizer = r_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build_all(self, max_len: int = 4, batch: int = 1):
        """Create every weight (G, D, R and the optimizers' slots) with a dummy forward pass."""
        ids = tf.ones((batch, max_len), tf.int32)
        lengths = tf.fill((batch,), max_len)
        z = tf.zeros((batch, self.z_dim))
        x = self.generator((ids, lengths, z))
        self.discriminator((x, None))
        self.recognizer(x)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.r_optimizer.build(self.recognizer.trainable_variables)
        self.built = True

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # -- sampling -------------------------------------------------------------------------
    def sample_words(self, n):
        """``n`` lexicon words (ids [n, max_len_in_sample], lengths [n]) drawn uniformly."""
        idx = self.rng.uniform((n,), 0, tf.shape(self.word_ids, out_type=tf.int64)[0], dtype=tf.int64)
        lengths = tf.gather(self.word_lengths, idx)
        ids = tf.gather(self.word_ids, idx)[:, : tf.reduce_max(lengths)]
        return ids, lengths

    def sample_z(self, n):
        return self.rng.normal((n, self.z_dim))

    # -- the three updates ----------------------------------------------------------------
    def _scale(self):
        return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync

    def d_step(self, real, real_widths, fake_ids, fake_lengths, z):
        """Hinge update of D on real images vs. G(fake words, z). G is not updated."""
        fake = self.generator((fake_ids, fake_lengths, z), training=True)
        fake_widths = fake_lengths * self.char_width
        # One D pass over real and fake together (both padded with white to a common width):
        # a larger batch per convolution is faster on CPU than two half-size passes.
        both = concat_padded([real, fake])
        widths = tf.concat([tf.cast(real_widths, tf.int32), fake_widths], 0)
        n_real = tf.shape(real)[0]
        with tf.GradientTape() as tape:
            scores = self.discriminator((both, widths), training=True)
            real_scores, fake_scores = scores[:n_real], scores[n_real:]
            loss, _, _ = losses.d_hinge_loss(real_scores, fake_scores)
            scaled = loss * self._scale()
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        return loss, tf.reduce_mean(real_scores), tf.reduce_mean(fake_scores)

    def r_step(self, real, real_widths, labels, label_lengths):
        """CTC update of R on real labelled images."""
        with tf.GradientTape() as tape:
            logits = self.recognizer(real, training=True)
            per_sample, n_inf = losses.ctc_loss(
                labels, label_lengths, logits, Recognizer.logit_lengths(real_widths))
            loss = tf.reduce_mean(per_sample)
            scaled = loss * self._scale()
        grads = tape.gradient(scaled, self.recognizer.trainable_variables)
        self.r_optimizer.apply_gradients(zip(grads, self.recognizer.trainable_variables))
        return loss, n_inf

    def g_step(self, fake_ids, fake_lengths, z):
        """Balanced update of G: one backward pass of ``d(L_adv + a L_ctc)/dx`` through G."""
        with tf.GradientTape() as g_tape:
            fake = self.generator((fake_ids, fake_lengths, z), training=True)
        widths = fake_lengths * self.char_width
        with tf.GradientTape(persistent=True) as x_tape:
            x_tape.watch(fake)
            adv = losses.g_hinge_loss(self.discriminator((fake, widths), training=True))
            logits = self.recognizer(fake, training=False)
            per_sample, n_inf = losses.ctc_loss(
                fake_ids, fake_lengths, logits, Recognizer.logit_lengths(widths))
            ctc = tf.reduce_mean(per_sample)
        grad_adv = x_tape.gradient(adv, fake)
        grad_ctc = x_tape.gradient(ctc, fake)
        del x_tape
        a = losses.balance_coefficient(grad_adv, grad_ctc, self.gb_alpha, self.gb_epsilon)
        grad_x = (grad_adv + a * grad_ctc) * self._scale()
        variables = self.generator.trainable_variables
        grads = g_tape.gradient(fake, variables, output_gradients=grad_x)
        self.g_optimizer.apply_gradients(zip(grads, variables))
        return adv, ctc, a, n_inf

    # -- one training iteration -----------------------------------------------------------
    def train_step(self, data):
        """``data``: dict with ``image`` [g_every*B, 32, W, 1], ``image_width`` [g_every*B],
        ``label`` [g_every*B, L], ``label_length`` [g_every*B] (per replica); in semi-supervised
        mode also ``unlabeled_image`` [g_every*B, 32, W', 1] and ``unlabeled_width``."""
        images = tf.split(data["image"], self.g_every)
        widths = tf.split(data["image_width"], self.g_every)
        labels = tf.split(data["label"], self.g_every)
        label_lengths = tf.split(data["label_length"], self.g_every)
        if self.semi_supervised:
            u_images = tf.split(data["unlabeled_image"], self.g_every)
            u_widths = tf.split(data["unlabeled_width"], self.g_every)
        n = tf.shape(images[0])[0]
        t = self.trackers
        real_key = "d_real_labelled" if self.semi_supervised else "d_real"
        for i in range(self.g_every):
            if not self.disjoint:
                ids, lengths = self.sample_words(n)
                d_loss, d_real, d_fake = self.d_step(images[i], widths[i], ids, lengths,
                                                     self.sample_z(n))
                t["d_loss"].update_state(d_loss)
                t[real_key].update_state(d_real)
                t["d_fake"].update_state(d_fake)
            if self.semi_supervised:
                m = tf.shape(u_images[i])[0]
                ids, lengths = self.sample_words(m)
                d_loss, d_real, d_fake = self.d_step(u_images[i], u_widths[i], ids, lengths,
                                                     self.sample_z(m))
                t["d_loss"].update_state(d_loss)
                t["d_real_unlabeled"].update_state(d_real)
                t["d_fake"].update_state(d_fake)
            r_loss, r_inf = self.r_step(images[i], widths[i], labels[i], label_lengths[i])
            t["r_ctc"].update_state(r_loss)
            t["ctc_inf"].update_state(tf.cast(r_inf, tf.float32))
        ids, lengths = self.sample_words(n)
        adv, ctc, a, g_inf = self.g_step(ids, lengths, self.sample_z(n))
        t["g_adv"].update_state(adv)
        t["g_ctc"].update_state(ctc)
        t["gb_scale"].update_state(a)
        t["ctc_inf"].update_state(tf.cast(g_inf, tf.float32))
        self.step.assign_add(1)
        return {m.name: m.result() for m in self.metrics}

    # -- inference ------------------------------------------------------------------------
    def generate(self, ids, lengths, z):
        """Images [B, 32, 16 * max_len, 1] in [-1, 1] (inference-mode norms)."""
        return self.generator((ids, lengths, z), training=False)
