"""``ScrabbleGAN``: a Keras model owning G, D and R, with the training iteration in ``train_step``.

One call of ``train_step(batch)`` is one training iteration. The batch holds ``g_every`` consecutive
mini-batches of real labelled words (``g_every * B`` rows, padded to a common width), and the step
does, for each mini-batch in turn,

- a D step: hinge loss on the real mini-batch vs. G's images of fresh lexicon words with fresh z;
- an R step: CTC loss on the real mini-batch (R never sees generated images as training data);

then one G step (two with an unlabeled stream, see ``g_updates``): ``L_adv + a * L_ctc`` on fresh
words and z, with ``a`` from ``balance_coefficient``
of the gradients of both terms w.r.t. the generated images, and a single backward pass through G
(the combined image gradient is pushed through G once).

Why G runs every ``g_every`` mini-batches *inside* one step instead of behind a ``tf.cond``:
under ``tf.distribute.MirroredStrategy`` an optimizer update (a cross-replica sync point) inside a
``tf.cond`` branch fails ("merge_call called while defining a new graph"), and so does one inside a
``tf.while_loop``. Where no ``merge_call`` is needed (one device, the default strategy) the D/R
mini-batches are the iterations of a ``tf.while_loop`` (a graph with one copy of them: less tracing
time and memory); under ``MirroredStrategy`` they are unrolled, which keeps every update at the top
level of the replica function (``_each_mini_batch``). The same step runs on one device, under
``MirroredStrategy``, and with ``model.fit``.

Losses are divided by the number of replicas before differentiation because Keras 3 optimizers sum
the replicas' gradients.

Non-finite guard: every update checks that its loss and gradients are finite (one scalar
``loss + sum of every gradient's sum``, all-reduced over the replicas of all workers so that every
replica takes the same decision). A non-finite update is *skipped*: the optimizer is not applied
(weights, Adam's m and v and the iteration counter stay as they were, whatever ``beta_1``) and the
non-trainable state that the update's forward passes moved (batch-norm statistics, spectral-norm u
vectors of the networks run in training mode) is put back, so the step is as if the mini-batch had
not been drawn, apart from the random-number stream. The skip is a ``tf.cond``; as an optimizer
update inside a ``tf.cond`` in a replica context fails under MirroredStrategy, the cond is built in
the cross-replica context (``merge_call``), the pattern of ``keras.optimizers.LossScaleOptimizer``.
Skipped updates are counted (metric ``skipped_updates``, a sum over the logging interval) and
``bad_steps`` holds the number of consecutive iterations with at least one skipped update (the
training loop stops the run after ``run.max_bad_steps``). Why not zero the gradients instead: Adam
with zero gradients still moves the weights when ``beta_1 > 0`` (m decays but stays non-zero) and
always decays v and counts the iteration; restoring every variable with ``tf.where`` after the update
would cost a copy of all weights and slots (3 x 60M floats) per update.

Mixed precision (a ``keras.mixed_precision`` policy for D and R, see ``train.make_gan``; G stays
float32): images are cast to float32 before D and R (which cast them to their compute dtype), scores
and logits are cast to float32, so the hinge and CTC losses, the image gradients and the
gradient-balancing std are float32. With ``mixed_float16``
the optimizers are ``keras.optimizers.LossScaleOptimizer``: losses (and G's image gradient) are
multiplied by the dynamic loss scale before differentiation and the optimizer divides it out; an
overflow is a skipped update like any other non-finite one and halves the scale.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from scrabblegan_tf.models import losses
from scrabblegan_tf.models.recognizer import Recognizer

METRIC_NAMES = ("d_loss", "d_real", "d_fake", "r_ctc", "g_adv", "g_ctc", "gb_scale", "ctc_inf",
                "skipped_updates")
# The batch entries of a labelled mini-batch (``train_step``).
LABELLED_KEYS = ("image", "image_width", "label", "label_length")


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
        # G updates per iteration: the official semi-supervised loop (train_semi_supervised.py) does
        # one G update per stream (labelled, unlabeled) every num_critic_train mini-batches, each
        # of which has a D update per stream: 2 G updates per 2 * g_every D updates, the ratio of
        # the supervised loop (1 per g_every).
        self.g_updates = 2 if self.semi_supervised else 1
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
        self.trackers = {n: (keras.metrics.Sum(name=n) if n == "skipped_updates"
                             else keras.metrics.Mean(name=n)) for n in names}
        # Consecutive iterations with at least one skipped (non-finite) update.
        self.bad_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_steps",
                                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

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

    @staticmethod
    def _loss_scale(optimizer):
        """The dynamic loss scale of a ``LossScaleOptimizer`` (mixed_float16), else None."""
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.cast(optimizer.dynamic_scale, tf.float32)
        return None

    def _fake(self, ids, lengths, z, training):
        """G's images as float32 (G may compute in float16/bfloat16 under mixed precision)."""
        return tf.cast(self.generator((ids, lengths, z), training=training), tf.float32)

    @staticmethod
    def _snapshot(models):
        """(variable, value now) for the non-trainable weights of ``models`` (batch-norm statistics,
        spectral-norm u vectors), to put back if the update is skipped."""
        variables = [v for m in models for v in m.non_trainable_weights]
        return variables, [tf.identity(v.value) for v in variables]

    def _apply_guarded(self, optimizer, loss, grads, variables, snapshot):
        """``optimizer.apply_gradients`` if ``loss`` and every gradient are finite on every replica;
        otherwise no update and the ``snapshot`` state put back. Returns 1.0 if skipped, else 0.0
        (the same value on every replica)."""
        terms = [tf.cast(loss, tf.float32)] + [tf.reduce_sum(tf.cast(g, tf.float32))
                                               for g in grads if g is not None]
        # One scalar: any NaN/Inf in a gradient makes its sum non-finite. (A false alarm needs a
        # gradient sum beyond 3e38, itself a diverged update.)
        bad = tf.cast(tf.logical_not(tf.math.is_finite(tf.add_n(terms))), tf.float32)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)
        ok = tf.equal(bad, 0.0)
        state_vars, state_values = snapshot
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def lower_loss_scale():
            if scaled:  # what LossScaleOptimizer does on an overflow
                optimizer.step_counter.assign(0)
                optimizer.dynamic_scale.assign(optimizer.dynamic_scale * 0.5)

        def apply_here():
            optimizer.apply_gradients(zip(grads, variables))

        def skip_here():
            for v, value in zip(state_vars, state_values):
                v.assign(value)
            lower_loss_scale()

        use_merge_call = (tf.distribute.has_strategy() and ctx is not None
                          and not tf.__internal__.distribute.strategy_supports_no_merge_call())
        if not use_merge_call:
            tf.cond(ok, apply_here, skip_here)
        else:
            def cross_replica(distribution, ok, grads, state_values):
                def apply_all():
                    distribution.extended.call_for_each_replica(
                        lambda g: optimizer.apply_gradients(zip(g, variables)), args=(grads,))

                def skip_all():
                    for v, value in zip(state_vars, state_values):
                        distribution.extended.update(
                            v.value, lambda var, x: var.assign(x), args=(value,), group=False)
                    lower_loss_scale()

                first = distribution.experimental_local_results(ok)[0]
                tf.cond(first, apply_all, skip_all)

            ctx.merge_call(cross_replica, args=(ok, list(grads), list(state_values)))
        return 1.0 - tf.cast(ok, tf.float32)

    def _d_step(self, real, real_widths, fake_ids, fake_lengths, z):
        snapshot = self._snapshot([self.discriminator, self.generator])
        fake = self._fake(fake_ids, fake_lengths, z, training=True)
        fake_widths = fake_lengths * self.char_width
        # One D pass over real and fake together (both padded with white to a common width):
        # a larger batch per convolution is faster on CPU than two half-size passes.
        both = concat_padded([tf.cast(real, tf.float32), fake])
        widths = tf.concat([tf.cast(real_widths, tf.int32), fake_widths], 0)
        n_real = tf.shape(real)[0]
        loss_scale = self._loss_scale(self.d_optimizer)
        with tf.GradientTape() as tape:
            scores = tf.cast(self.discriminator((both, widths), training=True), tf.float32)
            real_scores, fake_scores = scores[:n_real], scores[n_real:]
            loss, _, _ = losses.d_hinge_loss(real_scores, fake_scores)
            scaled = loss * self._scale()
            if loss_scale is not None:
                scaled = scaled * loss_scale
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(scaled, variables)
        skipped = self._apply_guarded(self.d_optimizer, loss, grads, variables, snapshot)
        return loss, tf.reduce_mean(real_scores), tf.reduce_mean(fake_scores), skipped

    def d_step(self, real, real_widths, fake_ids, fake_lengths, z):
        """Hinge update of D on real images vs. G(fake words, z). G is not updated. Returns
        (loss, mean real score, mean fake score); a non-finite update is skipped (see module)."""
        return self._d_step(real, real_widths, fake_ids, fake_lengths, z)[:3]

    def _r_step(self, real, real_widths, labels, label_lengths):
        snapshot = self._snapshot([self.recognizer])
        loss_scale = self._loss_scale(self.r_optimizer)
        with tf.GradientTape() as tape:
            logits = self.recognizer(tf.cast(real, tf.float32), training=True)
            per_sample, n_inf = losses.ctc_loss(
                labels, label_lengths, logits, Recognizer.logit_lengths(real_widths))
            loss = tf.reduce_mean(per_sample)
            scaled = loss * self._scale()
            if loss_scale is not None:
                scaled = scaled * loss_scale
        variables = self.recognizer.trainable_variables
        grads = tape.gradient(scaled, variables)
        skipped = self._apply_guarded(self.r_optimizer, loss, grads, variables, snapshot)
        return loss, n_inf, skipped

    def r_step(self, real, real_widths, labels, label_lengths):
        """CTC update of R on real labelled images. Returns (loss, number of infeasible labels)."""
        return self._r_step(real, real_widths, labels, label_lengths)[:2]

    def _g_step(self, fake_ids, fake_lengths, z):
        snapshot = self._snapshot([self.generator, self.discriminator])
        loss_scale = self._loss_scale(self.g_optimizer)
        with tf.GradientTape() as g_tape:
            fake = self._fake(fake_ids, fake_lengths, z, training=True)
        widths = fake_lengths * self.char_width
        with tf.GradientTape(persistent=True) as x_tape:
            x_tape.watch(fake)
            adv = losses.g_hinge_loss(
                tf.cast(self.discriminator((fake, widths), training=True), tf.float32))
            logits = self.recognizer(fake, training=False)
            per_sample, n_inf = losses.ctc_loss(
                fake_ids, fake_lengths, logits, Recognizer.logit_lengths(widths))
            ctc = tf.reduce_mean(per_sample)
            if loss_scale is not None:  # D and R backpropagate in float16: scale, then unscale
                adv_s, ctc_s = adv * loss_scale, ctc * loss_scale
        if loss_scale is None:
            grad_adv = x_tape.gradient(adv, fake)
            grad_ctc = x_tape.gradient(ctc, fake)
        else:
            grad_adv = x_tape.gradient(adv_s, fake) / loss_scale
            grad_ctc = x_tape.gradient(ctc_s, fake) / loss_scale
        del x_tape
        a = losses.balance_coefficient(grad_adv, grad_ctc, self.gb_alpha, self.gb_epsilon)
        grad_x = (grad_adv + a * grad_ctc) * self._scale()
        if loss_scale is not None:
            grad_x = grad_x * loss_scale
        variables = self.generator.trainable_variables
        grads = g_tape.gradient(fake, variables, output_gradients=grad_x)
        skipped = self._apply_guarded(self.g_optimizer, adv + ctc, grads, variables, snapshot)
        return adv, ctc, a, n_inf, skipped

    def g_step(self, fake_ids, fake_lengths, z):
        """Balanced update of G: one backward pass of ``d(L_adv + a L_ctc)/dx`` through G.
        Returns (L_adv, L_ctc, a, number of infeasible labels)."""
        return self._g_step(fake_ids, fake_lengths, z)[:4]

    # -- one training iteration -----------------------------------------------------------
    def _can_loop(self) -> bool:
        """Whether updates may run inside a ``tf.while_loop``: not where the strategy needs
        ``merge_call`` for them (MirroredStrategy, see the module docstring)."""
        return tf.__internal__.distribute.strategy_supports_no_merge_call()

    def _each_mini_batch(self, data, keys, update):
        """Runs ``update(mini_batch)`` on each of the ``g_every`` mini-batches of ``data`` in turn
        (``mini_batch``: ``keys`` -> that mini-batch's rows) and returns the sum of its results
        (numbers of skipped updates).

        Where the strategy allows (``_can_loop``) the mini-batches are the iterations of one
        ``tf.while_loop`` (one at a time: ``parallel_iterations=1``), so the graph holds one copy
        of the D and R steps instead of ``g_every``: tracing and graph optimisation take about
        half the time and heap (paper config, g_every 4, bench/RESULTS.md). Otherwise they are
        unrolled."""
        if self.g_every == 1 or not self._can_loop():
            parts = {k: tf.split(data[k], self.g_every) for k in keys}
            return tf.add_n([update({k: v[i] for k, v in parts.items()})
                             for i in range(self.g_every)])

        def chunked(x):  # [g_every * B, ...] -> [g_every, B, ...]
            y = tf.reshape(x, tf.concat([[self.g_every, -1], tf.shape(x)[1:]], 0))
            return tf.ensure_shape(y, [self.g_every, None, *x.shape[1:]])

        stacked = {k: chunked(data[k]) for k in keys}

        def body(i, skipped):
            return i + 1, skipped + update({k: tf.gather(v, i) for k, v in stacked.items()})

        _, skipped = tf.while_loop(lambda i, _: i < self.g_every, body,
                                   (tf.constant(0), tf.constant(0.0)), parallel_iterations=1)
        return skipped

    def _track(self, name, value, skipped):
        """Adds ``value`` to the mean ``name``; a skipped update's (non-finite) values stay out."""
        self.trackers[name].update_state(tf.where(skipped > 0, 0.0, tf.cast(value, tf.float32)),
                                         sample_weight=1.0 - skipped)

    def _finish_iteration(self, num_skipped):
        """Counts the iteration's skipped updates and the iteration itself; returns the metrics."""
        # Every replica adds the same (all-reduced) count and the metric sums over replicas.
        self.trackers["skipped_updates"].update_state(num_skipped * self._scale())
        self.bad_steps.assign(tf.where(num_skipped > 0, self.bad_steps + 1, 0))
        self.step.assign_add(1)
        return {m.name: m.result() for m in self.metrics}

    def _r_update(self, mb):
        r_loss, r_inf, skipped = self._r_step(mb["image"], mb["image_width"], mb["label"],
                                              mb["label_length"])
        self._track("r_ctc", r_loss, skipped)
        self.trackers["ctc_inf"].update_state(tf.cast(r_inf, tf.float32))
        return skipped

    def train_step(self, data):
        """``data``: dict with ``image`` [g_every*B, 32, W, 1], ``image_width`` [g_every*B],
        ``label`` [g_every*B, L], ``label_length`` [g_every*B] (per replica); in semi-supervised
        mode also ``unlabeled_image`` [g_every*B, 32, W', 1] and ``unlabeled_width``."""
        keys = list(LABELLED_KEYS)
        if self.semi_supervised:
            keys += ["unlabeled_image", "unlabeled_width"]
        n = tf.shape(data["image"])[0] // self.g_every
        real_key = "d_real_labelled" if self.semi_supervised else "d_real"

        def d_update(images, widths, real_name):
            m = tf.shape(images)[0]
            ids, lengths = self.sample_words(m)
            d_loss, d_real, d_fake, skipped = self._d_step(images, widths, ids, lengths,
                                                           self.sample_z(m))
            self._track("d_loss", d_loss, skipped)
            self._track(real_name, d_real, skipped)
            self._track("d_fake", d_fake, skipped)
            return skipped

        def mini_batch(mb):
            skips = []
            if not self.disjoint:
                skips.append(d_update(mb["image"], mb["image_width"], real_key))
            if self.semi_supervised:
                skips.append(d_update(mb["unlabeled_image"], mb["unlabeled_width"],
                                      "d_real_unlabeled"))
            skips.append(self._r_update(mb))
            return tf.add_n(skips)

        skips = [self._each_mini_batch(data, keys, mini_batch)]
        for _ in range(self.g_updates):
            ids, lengths = self.sample_words(n)
            adv, ctc, a, g_inf, skipped = self._g_step(ids, lengths, self.sample_z(n))
            self._track("g_adv", adv, skipped)
            self._track("g_ctc", ctc, skipped)
            self._track("gb_scale", a, skipped)
            self.trackers["ctc_inf"].update_state(tf.cast(g_inf, tf.float32))
            skips.append(skipped)
        return self._finish_iteration(tf.add_n(skips))

    def warmup_step(self, data):
        """An R warm-up iteration: the ``g_every`` R updates of ``train_step`` on the same batch
        layout, no D and no G update (``optim.r_warmup_steps``: G's CTC gradient is only
        meaningful once R reads real words). Counts as an iteration."""
        return self._finish_iteration(self._each_mini_batch(data, LABELLED_KEYS, self._r_update))

    # -- inference ------------------------------------------------------------------------
    def read(self, images, widths):
        """R's logits [B, W/4, classes] (float32, inference mode) and their valid lengths [B]."""
        logits = self.recognizer(tf.cast(images, tf.float32), training=False)
        return tf.cast(logits, tf.float32), Recognizer.logit_lengths(widths)

    def generate(self, ids, lengths, z):
        """Images [B, 32, 16 * max_len, 1] in [-1, 1] (inference-mode norms)."""
        return self.generator((ids, lengths, z), training=False)
