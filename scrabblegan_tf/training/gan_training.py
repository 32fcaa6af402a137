"""Training of the GAN: ``train(config, workdir)`` is the whole job (a "task": inputs, networks and
optimizers, checkpoints, the step loop with its logging / sample / evaluation hooks).

A workdir holds

- ``config.json`` (the resolved config) and ``alphabet.json``;
- ``checkpoints/`` (``run_folder.Checkpoints``: G, D, R, the three optimizers, the iteration
  counter ``step``, the fake-word/noise RNG state and the input iterator's position);
- ``tb/`` TensorBoard scalars and sample images, ``samples/step_XXXXXXX.png`` sample grids;
- ``legibility.jsonl``, ``samples/heldout_XXXXXXX.png`` and ``heldout/step_XXXXXXX.npz``: the
  legibility signal (``training.monitor``) and the held-out images it read.

Running ``train`` again on the same workdir resumes from the latest checkpoint. The pieces live in
``data.inputs`` (what is read), ``training.distribution`` (strategy and precision) and
``training.loop`` (the step loop shared with the HTR).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import imaging, pixels, run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import Config
from scrabblegan_tf.core.progress import Progress
from scrabblegan_tf.data.inputs import training_inputs
from scrabblegan_tf.models.factory import generator_for, make_discriminator, make_recognizer
from scrabblegan_tf.models.gan import ScrabbleGAN
from scrabblegan_tf.training import distribution, monitor as monitor_lib, multiworker
from scrabblegan_tf.training.loop import Hook, run_loop
from scrabblegan_tf.training.optimizers import FusedAdam

SAMPLE_WORDS = ("ScrabbleGAN", "handwriting", "Only", "the", "quick", "brown", "fox", "jumps")


# -- optimizers and networks ------------------------------------------------------------------
def linear_decay_second_half(base_lr: float, total_steps: int):
    """Constant ``base_lr`` for the first half of ``total_steps``, then linear decay to 0
    (BigGAN-style schedule used by the ScrabbleGAN code's ``--lr_policy linear``)."""
    class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            half = total_steps / 2.0
            frac = (tf.cast(step, tf.float32) - half) / max(half, 1.0)
            return base_lr * (1.0 - tf.clip_by_value(frac, 0.0, 1.0))

        def get_config(self):
            return {"base_lr": base_lr, "total_steps": total_steps}

    return _Schedule()


class _StepDriven:
    """A learning rate read from a shared training-iteration counter (a Keras optimizer calls a
    zero-argument callable for its learning rate), so G, D and R follow the same schedule however
    many updates each takes per iteration (D takes two per mini-batch with an unlabeled stream)."""

    def __init__(self, schedule, step):
        self.schedule = schedule
        self.step = step

    def __call__(self):
        return self.schedule(self.step)


def make_optimizers(cfg: Config, *, step=None, loss_scale: bool = False):
    """Adam (``FusedAdam``) for G, D and R; ``loss_scale``: each wrapped in
    ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling, for ``mixed_float16``). With
    ``optim.lr_decay`` the rates follow ``linear_decay_second_half`` of the training iteration
    ``step`` (a variable; required then)."""
    o = cfg.optim
    if o.lr_decay and step is None:
        raise ValueError("optim.lr_decay needs the training step variable")

    def adam(lr):
        rate = _StepDriven(linear_decay_second_half(lr, cfg.run.steps), step) if o.lr_decay else lr
        opt = FusedAdam(rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.adam_eps)
        return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt

    return adam(o.g_lr), adam(o.d_lr), adam(o.r_lr)


def make_gan(cfg: Config, alphabet: Alphabet, word_ids, word_lengths, *, policy: str = "",
             semi: bool = False):
    """The compiled and built ScrabbleGAN of ``cfg`` (call inside ``strategy.scope()``).

    Seeding right before creating the networks makes the initial weights depend on the seed alone
    (not on what ran before in the process). ``policy``: a Keras mixed-precision policy for G, D and
    R (``resolve_mixed_precision``), except the networks of ``run.float32_networks``: variables stay
    float32, convolutions run in the policy's compute dtype; G's batch-norm statistics, spectral norms, output image, the losses and the
    gradient-balancing std stay float32 (see ``layers`` and ``gan``). The global policy is restored
    on return.
    """
    keras.utils.set_random_seed(cfg.run.seed)
    float32_nets = distribution.float32_networks(cfg.run.float32_networks)
    previous_policy = keras.mixed_precision.global_policy()

    def build(net, make):
        keras.mixed_precision.set_global_policy(
            policy if policy and net not in float32_nets else "float32")
        return make()

    try:
        gan = ScrabbleGAN(
            generator=build("G", lambda: generator_for(cfg.model, alphabet)),
            discriminator=build("D", lambda: make_discriminator(cfg.model)),
            recognizer=build("R", lambda: make_recognizer(cfg.model, alphabet.num_classes)),
            word_ids=word_ids, word_lengths=word_lengths, g_every=cfg.optim.g_every,
            gb_alpha=cfg.optim.gb_alpha, gb_epsilon=cfg.optim.gb_epsilon, seed=cfg.run.seed,
            semi_supervised=semi, disjoint=cfg.data.disjoint)
        gan.compile(*make_optimizers(cfg, step=gan.step, loss_scale=policy == "mixed_float16"))
        gan.build_all()
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return gan


@dataclass
class TrainResult:
    step: int
    metrics: dict
    images_per_s: float
    interrupted: str = ""  # "SIGTERM" when a SIGTERM stopped the run (after saving a checkpoint)
    gan: object = field(default=None, repr=False)  # the trained ScrabbleGAN (G, D, R, optimizers)


# Exit status of train_main.py after a SIGTERM stopped the run with a checkpoint (128 + SIGTERM, the
# status of a process killed by SIGTERM, so schedulers see an unfinished run).
EXIT_SIGTERM = 128 + 15


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive training iterations had non-finite losses or gradients."""


def train(cfg: Config, workdir: str, *, data_dir: str | None = None,
          manual_dir: str | None = None, dataset=None, eval_texts=None, eval_readers=None,
          log=print) -> TrainResult:
    """Trains (or resumes) a ScrabbleGAN run in ``workdir``.

    ``dataset``: optional ready tf.data.Dataset of examples with ``image`` (uint8 [H, W, 1]) and
    ``text`` (tf.string), used instead of TFDS (tests); ``eval_texts``: candidate held-out words
    (default: the texts of ``data.eval_split``) for the legibility signal; ``eval_readers``:
    ``{name: reader}``, more readers of the held-out words (``training.monitor``), e.g. an HTR
    trained on real images.

    Stops early, with a checkpoint, on SIGTERM (``TrainResult.interrupted == "SIGTERM"``), and with a
    ``NonFiniteTrainingError`` (no checkpoint written: the last one is the last good state) after
    ``run.max_bad_steps`` consecutive iterations whose updates had to be skipped (non-finite loss
    or gradient).
    """
    # The strategy first: MultiWorkerMirroredStrategy must exist before any other TensorFlow op.
    strategy = distribution.make_strategy(cfg.run.strategy, cfg.run.cpu_devices,
                                          cfg.run.inter_op_threads)
    run_folder.check_workdir(workdir)
    run_folder.check_compatible(workdir, cfg.model, parse=lambda text: Config.from_json(text).model,
                                hint="use a new --workdir or the same --config/--config_override")
    chief = multiworker.is_chief(strategy)
    multi_worker = multiworker.is_multi_worker(strategy)
    if multi_worker:
        task_type, task_id = multiworker.task(strategy)
        log(f"multi-worker: {task_type} {task_id} of {multiworker.num_workers(strategy)} workers, "
            f"{strategy.num_replicas_in_sync} replicas in all"
            + (" (chief: writes configs, summaries, samples, checkpoints)" if chief else ""))
    keras.utils.set_random_seed(cfg.run.seed)
    replicas = strategy.num_replicas_in_sync
    policy, why = distribution.resolve_mixed_precision(cfg.run.mixed_precision)
    float32_nets = distribution.float32_networks(cfg.run.float32_networks)
    log(f"precision: {policy or 'float32'} ({why})"
        + (f"; in float32: {', '.join(sorted(float32_nets))}" if policy and float32_nets else ""))

    inputs = training_inputs(cfg, replicas=replicas, dataset=dataset, eval_texts=eval_texts,
                             data_dir=data_dir, manual_dir=manual_dir, log=log)
    alphabet, ds, eval_words = inputs.alphabet, inputs.dataset, inputs.eval_words
    word_ids, word_lengths = inputs.lexicon.as_tensors()
    per_replica = cfg.data.batch_size * cfg.optim.g_every

    # Models and optimizers, all inside the strategy scope.
    with strategy.scope():
        gan = make_gan(cfg, alphabet, word_ids, word_lengths, policy=policy,
                       semi=inputs.semi_supervised)
        # A plain (checkpointable) iterator over global batches; each replica takes its slice
        # inside the step (a distributed iterator cannot be checkpointed).
        iterator = iter(ds)
        ckpt = tf.train.Checkpoint(
            generator=gan.generator, discriminator=gan.discriminator,
            recognizer=gan.recognizer, g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer, r_optimizer=gan.r_optimizer, step=gan.step,
            rng=gan.rng, iterator=iterator)

    # Checkpoints: every worker saves (the variables are read collectively); only the chief keeps
    # them (the others write to a temporary folder deleted right after), and everybody restores
    # the chief's latest. The space check counts the input iterator's state too (mostly the
    # shuffle buffer of raw examples; ~32 KiB each, a generous guess for word images).
    model_weights = [v for m in (gan.generator, gan.discriminator, gan.recognizer) for v in m.weights]
    optimizer_vars = [v for o in (gan.g_optimizer, gan.d_optimizer, gan.r_optimizer) for v in o.variables]
    checkpoints = run_folder.Checkpoints(
        ckpt, workdir, keep=cfg.run.keep_checkpoints, variables=model_weights + optimizer_vars,
        extra_bytes=cfg.data.shuffle_buffer * 32 * 1024, chief=chief,
        write_dir=multiworker.checkpoint_dir(workdir, strategy), log=log)
    latest = checkpoints.restore()
    log(f"Resumed from {latest} at step {int(gan.step.numpy())}" if latest
        else f"Starting a new run in {workdir}")
    if multi_worker:
        distribution.check_same_step_on_all_workers(strategy, gan.step)

    def save(step: int) -> str:
        # Never replace good checkpoints by a diverged state (an update with finite gradients can
        # still produce Inf weights, e.g. with an absurd learning rate).
        if not _all_finite(model_weights):
            raise NonFiniteTrainingError(
                f"Not saving step {step}: the weights are no longer finite. The last checkpoint, "
                f"{checkpoints.latest()}, is intact; lower the learning rates or check the data.")
        path = checkpoints.save(step)
        multiworker.cleanup_after_save(workdir, strategy)
        return path if chief else f"(worker: temporary {path}, deleted)"

    if chief:
        run_folder.write_settings(workdir, cfg.to_json(), alphabet.to_json())
    log(f"G {gan.generator.count_params():,} D {gan.discriminator.count_params():,} "
        f"R {gan.recognizer.count_params():,} parameters; {replicas} replica(s); "
        f"batch {cfg.data.batch_size} x g_every {cfg.optim.g_every} per replica")

    # -- the step ----------------------------------------------------------------------------------
    def replica_step(batch, stop, warmup):
        ctx = tf.distribute.get_replica_context()
        if replicas > 1:
            i = ctx.replica_id_in_sync_group  # global over all workers' replicas
            batch = {k: v[i * per_replica:(i + 1) * per_replica] for k, v in batch.items()}
        if warmup:
            gan.warmup_step(batch)
        else:
            gan.train_step(batch)
        if replicas > 1:  # a stop request (SIGTERM) of any worker stops all of them
            stop = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(stop, tf.float32))
        return tf.stack([gan.bad_steps.read_value(), tf.cast(stop > 0, tf.int64)])

    def make_iteration(warmup: bool):
        @tf.function(input_signature=[ds.element_spec, tf.TensorSpec([], tf.int32)],
                     jit_compile=bool(cfg.run.jit_compile))
        def iteration(batch, stop):
            return strategy.experimental_local_results(
                strategy.run(replica_step, args=(batch, stop, warmup)))[0]
        return iteration

    train_iteration = make_iteration(False)
    warmup_iteration = make_iteration(True) if cfg.optim.r_warmup_steps > 0 else None
    start_step = int(gan.step.numpy())
    images_per_iter = per_replica * replicas
    progress = Progress(cfg.run.steps, start=start_step, per_step={"img/s": images_per_iter},
                        log=log, description="GAN")
    say = progress.say
    state: dict = {"metrics": {}, "warmup_logged": False}

    def step_fn(step: int, stop_requested: bool) -> bool:
        warmup = step <= cfg.optim.r_warmup_steps
        if warmup and not state["warmup_logged"]:
            say(f"R warm-up: iterations {step}..{cfg.optim.r_warmup_steps} update R only")
            state["warmup_logged"] = True
        iteration = warmup_iteration if warmup else train_iteration
        bad_steps, stop = (int(x) for x in iteration(
            next(iterator), tf.constant(int(stop_requested), tf.int32)).numpy())
        if bad_steps:
            say(f"step {step}: non-finite loss or gradient, update(s) skipped "
                f"({bad_steps} iteration(s) in a row)")
            if 0 < cfg.run.max_bad_steps <= bad_steps:
                raise NonFiniteTrainingError(
                    f"Stopped at step {step}: {bad_steps} consecutive iterations had non-finite "
                    f"losses or gradients (their updates were skipped, so the weights are "
                    f"those of the last good update). The last checkpoint, "
                    f"{checkpoints.latest()}, is intact. Check the data "
                    f"for NaN/Inf, lower the learning rates, or raise run.max_bad_steps.")
        return bool(stop)

    # -- hooks: metrics, samples, the legibility signal --------------------------------------------
    writer = (tf.summary.create_file_writer(os.path.join(workdir, "tb")) if chief
              else tf.summary.create_noop_writer())

    def log_metrics(step: int) -> None:
        metrics = {m.name: float(m.result()) for m in gan.metrics}
        for m in gan.metrics:
            m.reset_state()
        state["metrics"] = metrics
        shown = {k: v for k, v in metrics.items()
                 if not (step <= cfg.optim.r_warmup_steps and k not in ("r_ctc", "ctc_inf"))}
        rate = progress.report(step, shown)
        with writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(k, v)
            tf.summary.scalar("images_per_s", rate * images_per_iter)

    # Fixed sample words and styles, so grids of different steps compare.
    sample_words = [w for w in SAMPLE_WORDS if alphabet.can_encode(w)][: cfg.run.num_samples]
    sample_z = np.random.default_rng(cfg.run.seed).standard_normal(
        (len(sample_words), cfg.model.z_dim)).astype(np.float32)

    def render_words(words, z) -> list[np.ndarray]:
        """uint8 [32, char_width len] images of ``words`` (G in inference mode)."""
        ids, lengths = alphabet.encode_batch(list(words))
        imgs = tf.cast(gan.generate(ids, lengths, np.asarray(z, np.float32)), tf.float32).numpy()
        return [imaging.crop_width(pixels.to_uint8(im), gan.char_width * n)[..., 0]
                for im, n in zip(imgs, lengths)]

    def write_samples(step: int) -> None:
        if not chief or not sample_words:
            return
        picture = monitor_lib.labelled_grid(render_words(sample_words, sample_z), sample_words)
        path = imaging.save_png(picture, os.path.join(workdir, "samples", f"step_{step:07d}.png"))
        with writer.as_default(step=step):
            tf.summary.image("samples", picture[None, ..., None], max_outputs=1)
        say(f"samples: {path}")

    monitor = None
    if eval_words and chief:
        def read_r(images):
            x, w = pixels.pad_uint8_batch(images, height=cfg.model.image_height)
            logits, lengths = gan.read(x, w)
            return monitor_lib.ctc_greedy_texts(logits.numpy(), lengths.numpy(), alphabet)

        eval_z = np.random.default_rng([cfg.run.seed, 1]).standard_normal(
            (len(eval_words), cfg.model.z_dim)).astype(np.float32)
        monitor = monitor_lib.LegibilityMonitor(eval_words, z=eval_z, render=render_words,
                                                read_r=read_r, readers=eval_readers)
        log(f"legibility signal: {len(eval_words)} held-out words every {cfg.run.eval_every} "
            f"iterations, read by R" + "".join(f" and {k}" for k in (eval_readers or {})))
    wall0 = time.time() - _previous_minutes(workdir) * 60.0

    def evaluate(step: int) -> None:
        if monitor is None:
            return
        with progress.paused():
            results, images, reads = monitor.evaluate()
        with writer.as_default(step=step):
            for k, v in results.items():
                tf.summary.scalar(f"legibility/{k}", v)
            tf.summary.image("legibility", monitor.grid(images)[None, ..., None], max_outputs=1)
        path = imaging.save_png(monitor.grid(images),
                                os.path.join(workdir, "samples", f"heldout_{step:07d}.png"))
        monitor_lib.save_images(os.path.join(workdir, "heldout", f"step_{step:07d}.npz"), images,
                                monitor.words)
        _append_jsonl(os.path.join(workdir, "legibility.jsonl"),
                      {"step": step, "minutes": round((time.time() - wall0) / 60.0, 2), **results})
        examples = ", ".join(f"{w!r}->{reads[k][i]!r}" for k in list(reads)[-1:]
                             for i, w in list(enumerate(monitor.words))[:: max(1, len(monitor.words) // 4)])
        say(f"legibility at step {step}: " + "  ".join(f"{k} {v:.3f}" for k, v in results.items())
            + f"  ({examples}; {path})")

    hooks = [Hook(cfg.run.log_every, log_metrics),
             Hook(cfg.run.sample_every, write_samples),
             Hook(cfg.run.eval_every, evaluate)]
    result = run_loop(step_fn, start=start_step, total=cfg.run.steps, checkpoints=checkpoints,
                      checkpoint_every=cfg.run.checkpoint_every, hooks=hooks, progress=progress,
                      save=save, collective_stop=multi_worker)
    writer.flush()
    ips = result.timed_steps * images_per_iter / result.seconds if result.timed_steps > 0 else 0.0
    log(f"{'stopped' if result.interrupted else 'done'}: step {result.step}, {ips:.1f} real images/s")
    return TrainResult(step=result.step, metrics=state["metrics"], images_per_s=ips,
                       interrupted=result.interrupted, gan=gan)


def _append_jsonl(path: str, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _previous_minutes(workdir: str) -> float:
    """Training minutes already spent in ``workdir`` (last line of legibility.jsonl), so that a
    resumed run's legibility curve continues its time axis."""
    path = os.path.join(workdir, "legibility.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln for ln in f if ln.strip()]
        return float(json.loads(lines[-1]).get("minutes", 0.0)) if lines else 0.0
    except (OSError, ValueError):
        return 0.0


def _all_finite(variables) -> bool:
    sums = [tf.reduce_sum(tf.cast(v, tf.float32)) for v in variables]
    return bool(tf.math.is_finite(tf.add_n(sums)))
