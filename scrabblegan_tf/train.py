"""Training driver: strategy, data, models, checkpoints, summaries, samples, resume.

``train(config, workdir)`` is the whole job. A workdir holds

- ``config.json`` (the resolved config) and ``alphabet.json``;
- ``checkpoints/`` (``tf.train.CheckpointManager``: G, D, R, the three optimizers, the iteration
  counter ``step``, the fake-word/noise RNG state and the input iterator's position);
- ``tb/`` TensorBoard scalars and sample images, ``samples/step_XXXXXXX.png`` sample grids;
- ``legibility.jsonl``, ``samples/heldout_XXXXXXX.png`` and ``heldout/step_XXXXXXX.npz``: the
  legibility signal (``scrabblegan_tf.monitor``) and the held-out images it read.

Running ``train`` again on the same workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from scrabblegan_tf import pixels, progress, run_folder
from scrabblegan_tf.alphabet import Alphabet
from scrabblegan_tf.config import DATASET_ALPHABETS, DEFAULT_WORD_LISTS, Config

SAMPLE_WORDS = ("ScrabbleGAN", "handwriting", "Only", "the", "quick", "brown", "fox", "jumps")


# -- devices and strategy -----------------------------------------------------------------------
def configure_cpu_devices(n: int) -> None:
    """Split the first physical CPU into ``n`` logical devices (to try MirroredStrategy without
    GPUs). Must run before TensorFlow initialises its devices."""
    import tensorflow as tf

    if n <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError as e:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != n:
            raise RuntimeError(
                f"cannot split the CPU into {n} devices: TensorFlow is already initialised with "
                f"{existing}") from e


def make_strategy(name: str = "auto", cpu_devices: int = 0):
    """``auto``: MirroredStrategy when more than one GPU is visible, else the default strategy;
    ``mirrored``: MirroredStrategy over all GPUs, or over the logical CPUs (``cpu_devices``);
    ``multi_worker``: MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG`` (see
    ``scrabblegan_tf.multiworker``; created once per process, before any other TensorFlow op);
    ``default``: no distribution."""
    import tensorflow as tf

    if name == "multi_worker":
        # Before anything else touches TensorFlow: collective ops are configured at start-up.
        from scrabblegan_tf import multiworker

        if cpu_devices > 1:
            raise ValueError("--cpu_devices is not supported with --strategy=multi_worker "
                             "(each worker uses its GPUs, or one CPU replica)")
        return multiworker.multi_worker_strategy()
    configure_cpu_devices(cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default" or (name == "auto" and len(gpus) <= 1 and cpu_devices <= 1):
        return tf.distribute.get_strategy()
    if name in ("auto", "mirrored"):
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(
            [d.name for d in cpus],
            cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=cpus[0].name))
    raise ValueError(f"Unknown strategy {name!r}; choose auto, mirrored, multi_worker or default")


# -- learning rate ---------------------------------------------------------------------------------
def linear_decay_second_half(base_lr: float, total_steps: int):
    """Constant ``base_lr`` for the first half of ``total_steps``, then linear decay to 0
    (BigGAN-style schedule used by the ScrabbleGAN code's ``--lr_policy linear``)."""
    import keras
    import tensorflow as tf

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
    """Adam for G, D and R; ``loss_scale``: each wrapped in ``keras.optimizers.LossScaleOptimizer``
    (dynamic loss scaling, for ``mixed_float16``). With ``optim.lr_decay`` the rates follow
    ``linear_decay_second_half`` of the training iteration ``step`` (a variable; required then)."""
    import keras

    o = cfg.optim
    if o.lr_decay and step is None:
        raise ValueError("optim.lr_decay needs the training step variable")

    def adam(lr):
        rate = _StepDriven(linear_decay_second_half(lr, cfg.run.steps), step) if o.lr_decay else lr
        opt = keras.optimizers.Adam(rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.adam_eps)
        return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt

    return adam(o.g_lr), adam(o.d_lr), adam(o.r_lr)


MIXED_PRECISION_POLICIES = ("", "auto", "mixed_float16", "mixed_bfloat16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU flags that make bfloat16 fast here (oneDNN uses them for bfloat16 convolutions and
    matmuls): ``amx_bf16`` (AMX tiles) and ``avx512_bf16``; read from /proc/cpuinfo (Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


def resolve_mixed_precision(name: str, *, gpu: bool | None = None,
                            cpuinfo: str | None = None) -> tuple[str, str]:
    """``run.mixed_precision`` -> (Keras dtype policy name or "" for float32, why). ``auto``:
    ``mixed_float16`` (with loss scaling) when a GPU is visible, ``mixed_bfloat16`` on a CPU with
    AMX or AVX512-BF16 (``cpu_bf16_flags``), float32 elsewhere (bfloat16 is emulated, hence slower,
    on CPUs without them)."""
    if name not in MIXED_PRECISION_POLICIES:
        raise ValueError(f"run.mixed_precision={name!r}: choose one of {MIXED_PRECISION_POLICIES}")
    if name != "auto":
        return name, "set in the config" if name else "float32 set in the config"
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        return "mixed_float16", "auto: a GPU is visible"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "mixed_bfloat16", f"auto: the CPU has {' and '.join(flags)}"
    return "", "auto: float32, the CPU has neither AMX nor AVX512-BF16"


# -- data ------------------------------------------------------------------------------------------
def resolve_alphabet(cfg: Config) -> Alphabet:
    name = cfg.data.alphabet or DATASET_ALPHABETS.get(cfg.data.dataset, "english")
    return Alphabet.preset(name)


def load_split(cfg: Config, split: str, *, data_dir=None, manual_dir=None, decoders=None):
    """The TFDS split of the configured dataset, building it on first use."""
    from scrabblegan_tf import builders

    builder = builders.get_builder(cfg.data.dataset, data_dir=data_dir,
                                   config=cfg.data.builder_config or None, manual_dir=manual_dir)
    builders.ensure_prepared(builder, manual_dir=manual_dir)
    return builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)


def training_texts(cfg: Config, *, data_dir=None, manual_dir=None) -> list[str]:
    import tensorflow_datasets as tfds

    ds = load_split(cfg, cfg.data.train_split, data_dir=data_dir, manual_dir=manual_dir,
                    decoders={"image": tfds.decode.SkipDecoding()})
    return [t.decode("utf-8") for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]


def make_lexicon(cfg: Config, alphabet: Alphabet, texts: list[str], *, exclude=()):
    """The fake-word lexicon of ``cfg.data.lexicon`` (see ``DataConfig``), without ``exclude``."""
    from scrabblegan_tf.lexicon import Lexicon

    kw = dict(alphabet=alphabet, max_len=cfg.data.lexicon_max_len,
              capitalize=cfg.data.lexicon_capitalize, exclude=exclude)
    path = cfg.data.lexicon
    if path == "auto":
        path = DEFAULT_WORD_LISTS.get(alphabet.name, "")
        if path and not os.path.exists(path):
            path = ""  # e.g. wamerican not installed: the labels, as the log line says
        if path:
            return Lexicon.from_file(path, letters_only=True, **kw)
    if path in ("", "labels"):
        return Lexicon.from_labels(texts, **kw)
    return Lexicon.from_file(path, **kw)


def parse_unlabeled_spec(spec: str) -> tuple[str, str | None, str]:
    """``"<name>[/<config>][:<split>]"`` -> (name, config or None, split (default train)).
    ``"folder:/path"`` -> ("folder", None, "/path")."""
    if spec.startswith("folder:"):
        path = spec[len("folder:"):]
        if not path:
            raise ValueError("--unlabeled_dataset=folder:<path> needs a path")
        return "folder", None, path
    name, _, split = spec.partition(":")
    name, _, config = name.partition("/")
    if not name:
        raise ValueError(f"Bad unlabeled dataset spec {spec!r}: expected <name>[/<config>][:<split>]")
    return name, config or None, split or "train"


def unlabeled_images(cfg: Config, *, data_dir=None, log=print):
    """The unlabeled image source named by ``cfg.data.unlabeled_dataset`` (a tf.data.Dataset of
    dicts with ``image``; any labels are ignored)."""
    import tensorflow_datasets as tfds

    from scrabblegan_tf import builders

    name, config, split = parse_unlabeled_spec(cfg.data.unlabeled_dataset)
    if name == "folder":
        from scrabblegan_tf.image_folder import load_image_folder

        ds, _ = load_image_folder(split, height=cfg.model.image_height, log=log)
        return ds
    manual_dir = cfg.data.unlabeled_manual_dir or None
    builder = builders.get_builder(name, data_dir=data_dir, config=config, manual_dir=manual_dir)
    builders.ensure_prepared(builder, manual_dir=manual_dir, log=log)
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
    return ds.map(lambda ex: {"image": ex["image"]})


# -- the job ---------------------------------------------------------------------------------------
def make_gan(cfg: Config, alphabet: Alphabet, word_ids, word_lengths, *, policy: str = "",
             semi: bool = False):
    """The compiled and built ScrabbleGAN of ``cfg`` (call inside ``strategy.scope()``).

    Seeding right before creating the networks makes the initial weights depend on the seed alone
    (not on what ran before in the process). ``policy``: a Keras mixed-precision policy for G, D and
    R (``resolve_mixed_precision``): variables stay float32, convolutions run in the policy's
    compute dtype; G's batch-norm statistics, spectral norms, output image, the losses and the
    gradient-balancing std stay float32 (see ``layers`` and ``gan``). The global policy is restored
    on return.
    """
    import keras

    from scrabblegan_tf.gan import ScrabbleGAN
    from scrabblegan_tf.model_factory import generator_for, make_discriminator, make_recognizer

    keras.utils.set_random_seed(cfg.run.seed)
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        gan = ScrabbleGAN(
            generator=generator_for(cfg.model, alphabet),
            discriminator=make_discriminator(cfg.model),
            recognizer=make_recognizer(cfg.model, alphabet.num_classes),
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


def _check_config_compatible(cfg: Config, workdir: str) -> None:
    path = os.path.join(workdir, run_folder.CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = Config.from_json(f.read())
    if old.model != cfg.model:
        raise ValueError(
            f"{workdir} holds a run with another model config ({path}); use a new --workdir or the "
            f"same --config/--config_override.")


class _SigtermFlag:
    """Installs a SIGTERM handler that only records the signal (the training loop checks the flag
    after each iteration, saves a checkpoint and stops); ``restore()`` puts the previous handler
    back. Does nothing outside the main thread (Python delivers signals to the main thread only)."""

    def __init__(self):
        import signal
        import threading

        self.signal = signal
        self.received = False
        self.previous = None
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.received = True

    def restore(self):
        if self.installed:
            # None: the previous handler was not installed from Python; the default is closest.
            previous = self.signal.SIG_DFL if self.previous is None else self.previous
            self.signal.signal(self.signal.SIGTERM, previous)
            self.installed = False


def _split_texts_or_empty(cfg: Config, split: str, data_dir, manual_dir) -> list[str]:
    """The texts of ``split`` of the configured dataset, or [] when it has no such split."""
    import tensorflow_datasets as tfds

    try:
        ds = load_split(cfg, split, data_dir=data_dir, manual_dir=manual_dir,
                        decoders={"image": tfds.decode.SkipDecoding()})
    except (ValueError, KeyError):
        return []
    return [t.decode("utf-8") for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]


def train(cfg: Config, workdir: str, *, data_dir: str | None = None,
          manual_dir: str | None = None, dataset=None, eval_texts=None, eval_readers=None,
          log=print) -> TrainResult:
    """Trains (or resumes) a ScrabbleGAN run in ``workdir``.

    ``dataset``: optional ready tf.data.Dataset of examples with ``image`` (uint8 [H, W, 1]) and
    ``text`` (tf.string), used instead of TFDS (tests); ``eval_texts``: candidate held-out words
    (default: the texts of ``data.eval_split``) for the legibility signal; ``eval_readers``:
    ``{name: reader}``, more readers of the held-out words (``scrabblegan_tf.monitor``), e.g. an
    HTR trained on real images.

    Stops early, with a checkpoint, on SIGTERM (``TrainResult.interrupted == "SIGTERM"``), and with a
    ``NonFiniteTrainingError`` (no checkpoint written: the last one is the last good state) after
    ``run.max_bad_steps`` consecutive iterations whose updates had to be skipped (non-finite loss
    or gradient).
    """
    # The strategy first: MultiWorkerMirroredStrategy must exist before any other TensorFlow op.
    strategy = make_strategy(cfg.run.strategy, cfg.run.cpu_devices)
    run_folder.check_workdir(workdir)
    _check_config_compatible(cfg, workdir)

    import keras
    import tensorflow as tf

    from scrabblegan_tf import data as data_lib
    from scrabblegan_tf import imaging
    from scrabblegan_tf import monitor as monitor_lib
    from scrabblegan_tf import multiworker
    from scrabblegan_tf.htr.data import pad_uint8_batch

    chief = multiworker.is_chief(strategy)
    multi_worker = multiworker.is_multi_worker(strategy)
    if multi_worker:
        task_type, task_id = multiworker.task(strategy)
        log(f"multi-worker: {task_type} {task_id} of {multiworker.num_workers(strategy)} workers, "
            f"{strategy.num_replicas_in_sync} replicas in all"
            + (" (chief: writes configs, summaries, samples, checkpoints)" if chief else ""))
    keras.utils.set_random_seed(cfg.run.seed)
    alphabet = resolve_alphabet(cfg)
    replicas = strategy.num_replicas_in_sync
    policy, why = resolve_mixed_precision(cfg.run.mixed_precision)
    log(f"precision: {policy or 'float32'} ({why})")

    # Data.
    if dataset is None:
        texts = training_texts(cfg, data_dir=data_dir, manual_dir=manual_dir)
        raw = load_split(cfg, cfg.data.train_split, data_dir=data_dir, manual_dir=manual_dir)
    else:
        raw = dataset
        texts = [t.decode("utf-8") for t in raw.map(lambda ex: ex["text"]).as_numpy_iterator()]
    counts = data_lib.count_unencodable(texts, alphabet, max_label_len=cfg.data.max_label_len)
    if counts.get("dropped", 0):
        log(f"warning: {counts['dropped']} of {len(texts)} training labels dropped "
            f"(outside the {alphabet.name} alphabet, empty or longer than "
            f"{cfg.data.max_label_len}): {counts}")
    # Held-out words for the legibility signal: never fake-word targets, never training labels.
    eval_words: list[str] = []
    if cfg.run.eval_every > 0 and cfg.run.eval_words > 0:
        from scrabblegan_tf.monitor import heldout_words

        if eval_texts is None:  # the eval split's texts (none for a dataset given directly)
            eval_texts = ([] if dataset is not None else
                          _split_texts_or_empty(cfg, cfg.data.eval_split, data_dir, manual_dir))
        candidates = list(eval_texts)
        candidates += make_lexicon(cfg, alphabet, texts).words
        eval_words = heldout_words(candidates, texts, alphabet, num=cfg.run.eval_words,
                                   max_len=cfg.data.lexicon_max_len, seed=cfg.run.seed)
        if not eval_words:
            log("legibility signal off: no candidate word outside the training labels")
    lexicon = make_lexicon(cfg, alphabet, texts, exclude=eval_words)
    log(f"lexicon: {len(lexicon)} words from {lexicon.source} ({lexicon.num_dropped} dropped"
        + (f", {lexicon.num_excluded} of them held out for the legibility signal)"
           if eval_words else ")"))
    word_ids, word_lengths = lexicon.as_tensors()

    # Every process (worker) reads the same pipeline with the same seed, so all see the same
    # global batches; each replica slices its rows by its global replica id (replica_step).
    per_replica = cfg.data.batch_size * cfg.optim.g_every
    ds = data_lib.labelled_pipeline(
        raw, alphabet=alphabet, batch_size=per_replica * replicas,
        char_width=cfg.model.char_width, height=cfg.model.image_height,
        max_label_len=cfg.data.max_label_len, shuffle_buffer=cfg.data.shuffle_buffer,
        seed=cfg.run.seed, bucket_boundaries=cfg.data.bucket_boundaries)
    semi = bool(cfg.data.unlabeled_dataset)
    if cfg.data.disjoint and not semi:
        raise ValueError("--disjoint needs --unlabeled_dataset")
    if semi:
        # Both streams repeat forever, so the zip never ends: the shorter one simply repeats.
        unl = data_lib.unlabeled_pipeline(
            unlabeled_images(cfg, data_dir=data_dir, log=log), batch_size=per_replica * replicas,
            height=cfg.model.image_height, max_width=cfg.data.unlabeled_max_width,
            shuffle_buffer=cfg.data.shuffle_buffer, seed=cfg.run.seed + 1)
        ds = tf.data.Dataset.zip((ds, unl)).map(
            lambda lab, u: {**lab, "unlabeled_image": u["image"], "unlabeled_width": u["image_width"]})
        log(f"semi-supervised: unlabeled images from {cfg.data.unlabeled_dataset}"
            + (" (disjoint: D on unlabeled only, R on labelled only)" if cfg.data.disjoint else ""))

    # Models and optimizers, all inside the strategy scope.
    with strategy.scope():
        gan = make_gan(cfg, alphabet, word_ids, word_lengths, policy=policy, semi=semi)
        # A plain (checkpointable) iterator over global batches; each replica takes its slice
        # inside the step (a distributed iterator cannot be checkpointed).
        iterator = iter(ds)
        ckpt = tf.train.Checkpoint(
            generator=gan.generator, discriminator=gan.discriminator,
            recognizer=gan.recognizer, g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer, r_optimizer=gan.r_optimizer, step=gan.step,
            rng=gan.rng, iterator=iterator)

    # Disk: fail now rather than at the first checkpoint save if they will not fit.
    chief_ckpt_dir = run_folder.checkpoint_dir(workdir)
    model_weights = [v for m in (gan.generator, gan.discriminator, gan.recognizer) for v in m.weights]
    ckpt_vars = model_weights + [v for o in (gan.g_optimizer, gan.d_optimizer, gan.r_optimizer) for v in o.variables]
    # + the input iterator's state (mostly the shuffle buffer of raw examples; ~32 KiB each, a
    # generous guess for word images) and 1% for the checkpoint's own bookkeeping.
    run_folder.reserve_checkpoint_space(workdir, ckpt_vars, cfg.run.keep_checkpoints,
                                        extra_bytes=cfg.data.shuffle_buffer * 32 * 1024,
                                        check=chief, log=log)

    # Checkpoints: every worker saves (the variables are read collectively); only the chief keeps
    # them (the others write to a temporary folder deleted right after), and everybody restores
    # the chief's latest. A checkpoint becomes the latest only once completely written (the
    # manager updates its state file atomically after writing the data and index files), so a
    # process killed while saving resumes from the previous one.
    manager = tf.train.CheckpointManager(ckpt, multiworker.checkpoint_dir(workdir, strategy),
                                         max_to_keep=cfg.run.keep_checkpoints)
    latest = run_folder.restore(ckpt, chief_ckpt_dir, log=log)
    if latest:
        log(f"Resumed from {latest} at step {int(gan.step.numpy())}")
    else:
        log(f"Starting a new run in {workdir}")
    if multi_worker:
        _check_same_step_on_all_workers(strategy, gan.step)

    def save(step: int) -> str:
        # Never replace good checkpoints by a diverged state (an update with finite gradients can
        # still produce Inf weights, e.g. with an absurd learning rate).
        if not _all_finite(model_weights):
            raise NonFiniteTrainingError(
                f"Not saving step {step}: the weights are no longer finite. The last checkpoint, "
                f"{tf.train.latest_checkpoint(chief_ckpt_dir)}, is intact; lower the learning "
                f"rates or check the data.")
        path = manager.save(checkpoint_number=step)
        multiworker.cleanup_after_save(workdir, strategy)
        return path if chief else f"(worker: temporary {path}, deleted)"

    if chief:
        run_folder.remove_partial_files(workdir, log)
        run_folder.write_settings(workdir, cfg.to_json(), alphabet.to_json())
    log(f"G {gan.generator.count_params():,} D {gan.discriminator.count_params():,} "
        f"R {gan.recognizer.count_params():,} parameters; {replicas} replica(s); "
        f"batch {cfg.data.batch_size} x g_every {cfg.optim.g_every} per replica")

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

    # Fixed sample words and styles, so grids of different steps compare.
    sample_words = [w for w in SAMPLE_WORDS if alphabet.can_encode(w)][: cfg.run.num_samples]
    sample_z = np.random.default_rng(cfg.run.seed).standard_normal(
        (len(sample_words), cfg.model.z_dim)).astype(np.float32)

    def render_words(words, z) -> list[np.ndarray]:
        """uint8 [32, 16 len] images of ``words`` (G in inference mode)."""
        ids, lengths = alphabet.encode_batch(list(words))
        imgs = tf.cast(gan.generate(ids, lengths, np.asarray(z, np.float32)), tf.float32).numpy()
        return [imaging.crop_width(pixels.to_uint8(im), gan.char_width * n)[..., 0]
                for im, n in zip(imgs, lengths)]

    def write_samples(step: int) -> str | None:
        if not chief or not sample_words:
            return None
        picture = monitor_lib.labelled_grid(render_words(sample_words, sample_z), sample_words)
        path = imaging.save_png(picture, os.path.join(workdir, "samples", f"step_{step:07d}.png"))
        with writer.as_default(step=step):
            tf.summary.image("samples", picture[None, ..., None], max_outputs=1)
        return path

    def log_samples(step: int) -> None:
        path = write_samples(step)
        if path:
            log(f"samples: {path}")

    monitor = None
    if eval_words and chief:
        def read_r(images):
            x, w = pad_uint8_batch(images, height=cfg.model.image_height)
            logits, lengths = gan.read(x, w)
            return monitor_lib.ctc_greedy_texts(logits.numpy(), lengths.numpy(), alphabet)

        eval_z = np.random.default_rng([cfg.run.seed, 1]).standard_normal(
            (len(eval_words), cfg.model.z_dim)).astype(np.float32)
        monitor = monitor_lib.LegibilityMonitor(eval_words, z=eval_z, render=render_words,
                                                read_r=read_r, readers=eval_readers)
        log(f"legibility signal: {len(eval_words)} held-out words every {cfg.run.eval_every} "
            f"iterations, read by R" + "".join(f" and {k}" for k in (eval_readers or {})))

    def evaluate(step: int) -> None:
        if monitor is None:
            return
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
        log(f"legibility at step {step}: " + "  ".join(f"{k} {v:.3f}" for k, v in results.items())
            + f"  ({examples}; {path})")

    writer = (tf.summary.create_file_writer(os.path.join(workdir, "tb")) if chief
              else tf.summary.create_noop_writer())
    step = int(gan.step.numpy())
    start_step = step
    images_per_iter = per_replica * replicas
    t0 = time.perf_counter()
    wall0 = time.time() - _previous_minutes(workdir) * 60.0
    last_t, last_step = t0, step
    metrics: dict = {}
    interrupted = ""
    sigterm = _SigtermFlag()
    warmup_logged = False
    try:
        while step < cfg.run.steps:
            warmup = step < cfg.optim.r_warmup_steps
            if warmup and not warmup_logged:
                log(f"R warm-up: iterations {step + 1}..{cfg.optim.r_warmup_steps} update R only")
                warmup_logged = True
            iteration = warmup_iteration if warmup else train_iteration
            bad_steps, stop = (int(x) for x in iteration(
                next(iterator), tf.constant(int(sigterm.received), tf.int32)).numpy())
            step += 1
            if step == start_step + 1:  # the first call traces: leave it out of the rates
                log(f"step {step}: traced and ran the first iteration in "
                    f"{time.perf_counter() - t0:.1f} s")
                t0 = last_t = time.perf_counter()
                last_step = step
            if bad_steps:
                log(f"step {step}: non-finite loss or gradient, update(s) skipped "
                    f"({bad_steps} iteration(s) in a row)")
                if 0 < cfg.run.max_bad_steps <= bad_steps:
                    raise NonFiniteTrainingError(
                        f"Stopped at step {step}: {bad_steps} consecutive iterations had non-finite "
                        f"losses or gradients (their updates were skipped, so the weights are "
                        f"those of the last good update). The last checkpoint, "
                        f"{tf.train.latest_checkpoint(chief_ckpt_dir)}, is intact. Check the data "
                        f"for NaN/Inf, lower the learning rates, or raise run.max_bad_steps.")
            if step % cfg.run.log_every == 0 or step == cfg.run.steps:
                metrics = {m.name: float(m.result()) for m in gan.metrics}
                for m in gan.metrics:
                    m.reset_state()
                now = time.perf_counter()
                rate = (step - last_step) / max(now - last_t, 1e-9) if step > last_step else 0.0
                overall = (step - start_step - 1) / max(now - t0, 1e-9)
                with writer.as_default(step=step):
                    for k, v in metrics.items():
                        tf.summary.scalar(k, v)
                    tf.summary.scalar("images_per_s", rate * images_per_iter)
                shown = {k: v for k, v in metrics.items()
                         if not (step <= cfg.optim.r_warmup_steps and k not in ("r_ctc", "ctc_inf"))}
                log(f"step {step}/{cfg.run.steps}  {rate:.2f} it/s  "
                    f"{rate * images_per_iter:.1f} img/s  ETA {progress.eta(step, cfg.run.steps, overall)}  "
                    + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
                last_t, last_step = now, step
            if step % cfg.run.sample_every == 0:
                log_samples(step)
            if cfg.run.eval_every > 0 and step % cfg.run.eval_every == 0 and step < cfg.run.steps:
                evaluate(step)
            # One process: act on the signal now; several: on the all-reduced flag, which every
            # worker gets from the same iteration (at most one iteration later).
            if (stop or (sigterm.received and not multi_worker)) and step < cfg.run.steps:
                interrupted = "SIGTERM"
                log(f"checkpoint: {save(step)}")
                log(f"SIGTERM: saved checkpoint at step {step}")
                break
            if step % cfg.run.checkpoint_every == 0 and step < cfg.run.steps:
                log(f"checkpoint: {save(step)}")
    finally:
        sigterm.restore()
    if not interrupted and (step != start_step or not latest):
        log(f"checkpoint: {save(step)}")
        log_samples(step)
        evaluate(step)
    writer.flush()
    elapsed = time.perf_counter() - t0
    timed = step - start_step - 1
    ips = timed * images_per_iter / elapsed if timed > 0 else 0.0
    log(f"{'stopped' if interrupted else 'done'}: step {step}, {ips:.1f} real images/s")
    return TrainResult(step=step, metrics=metrics, images_per_s=ips, interrupted=interrupted,
                       gan=gan)


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
    import tensorflow as tf

    sums = [tf.reduce_sum(tf.cast(v, tf.float32)) for v in variables]
    return bool(tf.math.is_finite(tf.add_n(sums)))


def _check_same_step_on_all_workers(strategy, step_var) -> None:
    """Every worker must resume from the same checkpoint (the chief's): with a workdir that is not
    shared, a worker would start at step 0 while the others resume."""
    import tensorflow as tf

    local = int(step_var.numpy())
    per_replica = strategy.run(lambda: tf.cast(step_var, tf.float32))
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
    if total != local * strategy.num_replicas_in_sync:
        raise RuntimeError(
            f"Workers resume from different steps (this one from {local}): every worker must see "
            f"the chief's checkpoints, so --workdir must be on a filesystem shared by all workers.")
