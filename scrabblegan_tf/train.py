"""Training driver: strategy, data, models, checkpoints, summaries, samples, resume.

``train(config, workdir)`` is the whole job. A workdir holds

- ``config.json`` (the resolved config) and ``alphabet.json``;
- ``checkpoints/`` (``tf.train.CheckpointManager``: G, D, R, the three optimizers, the iteration
  counter ``step``, the fake-word/noise RNG state and the input iterator's position);
- ``tb/`` TensorBoard scalars and sample images, ``samples/step_XXXXXXX.png`` sample grids.

Running ``train`` again on the same workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from scrabblegan_tf.alphabet import Alphabet
from scrabblegan_tf.config import DATASET_ALPHABETS, Config

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
    ``default``: no distribution."""
    import tensorflow as tf

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
    raise ValueError(f"Unknown strategy {name!r}; choose auto, mirrored or default")


# -- learning rate ---------------------------------------------------------------------------------
def linear_decay_second_half(base_lr: float, total_updates: int):
    """Constant ``base_lr`` for the first half of ``total_updates``, then linear decay to 0
    (BigGAN-style schedule used by the ScrabbleGAN code's ``--lr_policy linear``)."""
    import keras
    import tensorflow as tf

    class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            half = total_updates / 2.0
            frac = (tf.cast(step, tf.float32) - half) / max(half, 1.0)
            return base_lr * (1.0 - tf.clip_by_value(frac, 0.0, 1.0))

        def get_config(self):
            return {"base_lr": base_lr, "total_updates": total_updates}

    return _Schedule()


def make_optimizers(cfg: Config):
    import keras

    o = cfg.optim
    total_g = cfg.run.steps
    total_dr = cfg.run.steps * o.g_every

    def adam(lr, total):
        rate = linear_decay_second_half(lr, total) if o.lr_decay else lr
        return keras.optimizers.Adam(rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.adam_eps)

    return adam(o.g_lr, total_g), adam(o.d_lr, total_dr), adam(o.r_lr, total_dr)


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


def make_lexicon(cfg: Config, alphabet: Alphabet, texts: list[str]):
    from scrabblegan_tf.lexicon import Lexicon

    kw = dict(alphabet=alphabet, max_len=cfg.data.lexicon_max_len,
              capitalize=cfg.data.lexicon_capitalize)
    if cfg.data.lexicon:
        return Lexicon.from_file(cfg.data.lexicon, **kw)
    return Lexicon.from_labels(texts, **kw)


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
@dataclass
class TrainResult:
    step: int
    metrics: dict
    images_per_s: float


def check_workdir(workdir: str) -> None:
    """Fails early, with a clear message, if the workdir cannot be written."""
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_probe_{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"x" * 4096)
        os.remove(probe)
    except OSError as e:
        raise RuntimeError(f"Workdir {workdir!r} is not writable: {e}") from e


def _check_config_compatible(cfg: Config, workdir: str) -> None:
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = Config.from_json(f.read())
    if old.model != cfg.model:
        raise ValueError(
            f"{workdir} holds a run with another model config ({path}); use a new --workdir or the "
            f"same --config/--config_override.")


def _write_json(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def train(cfg: Config, workdir: str, *, data_dir: str | None = None,
          manual_dir: str | None = None, dataset=None, log=print) -> TrainResult:
    """Trains (or resumes) a ScrabbleGAN run in ``workdir``.

    ``dataset``: optional ready tf.data.Dataset of examples with ``image`` (uint8 [H, W, 1]) and
    ``text`` (tf.string), used instead of TFDS (tests).
    """
    check_workdir(workdir)
    _check_config_compatible(cfg, workdir)
    strategy = make_strategy(cfg.run.strategy, cfg.run.cpu_devices)

    import keras
    import tensorflow as tf

    from scrabblegan_tf import data as data_lib
    from scrabblegan_tf import imaging
    from scrabblegan_tf.gan import ScrabbleGAN
    from scrabblegan_tf.model_factory import make_discriminator, make_generator, make_recognizer

    keras.utils.set_random_seed(cfg.run.seed)
    alphabet = resolve_alphabet(cfg)
    replicas = strategy.num_replicas_in_sync

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
    lexicon = make_lexicon(cfg, alphabet, texts)
    log(f"lexicon: {len(lexicon)} words ({lexicon.num_dropped} dropped)")
    word_ids, word_lengths = lexicon.as_tensors()

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

    # Models and optimizers, all inside the strategy scope. Seeding right before creating them
    # makes the initial weights depend on the seed alone (not on what ran before in the process).
    keras.utils.set_random_seed(cfg.run.seed)
    with strategy.scope():
        gan = ScrabbleGAN(
            generator=make_generator(cfg.model, alphabet.num_classes),
            discriminator=make_discriminator(cfg.model),
            recognizer=make_recognizer(cfg.model, alphabet.num_classes),
            word_ids=word_ids, word_lengths=word_lengths, g_every=cfg.optim.g_every,
            gb_alpha=cfg.optim.gb_alpha, gb_epsilon=cfg.optim.gb_epsilon, seed=cfg.run.seed,
            semi_supervised=semi, disjoint=cfg.data.disjoint)
        gan.compile(*make_optimizers(cfg))
        gan.build_all()
        # A plain (checkpointable) iterator over global batches; each replica takes its slice
        # inside the step (a distributed iterator cannot be checkpointed).
        iterator = iter(ds)
        ckpt = tf.train.Checkpoint(
            generator=gan.generator, discriminator=gan.discriminator, recognizer=gan.recognizer,
            g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
            r_optimizer=gan.r_optimizer, step=gan.step, rng=gan.rng, iterator=iterator)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "checkpoints"),
                                         max_to_keep=cfg.run.keep_checkpoints)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log(f"Resumed from {manager.latest_checkpoint} at step {int(gan.step.numpy())}")
    else:
        log(f"Starting a new run in {workdir}")
    _write_json(os.path.join(workdir, "config.json"), cfg.to_json())
    _write_json(os.path.join(workdir, "alphabet.json"), alphabet.to_json())
    log(f"G {gan.generator.count_params():,} D {gan.discriminator.count_params():,} "
        f"R {gan.recognizer.count_params():,} parameters; {replicas} replica(s); "
        f"batch {cfg.data.batch_size} x g_every {cfg.optim.g_every} per replica")

    def replica_step(batch):
        if replicas > 1:
            i = tf.distribute.get_replica_context().replica_id_in_sync_group
            batch = {k: v[i * per_replica:(i + 1) * per_replica] for k, v in batch.items()}
        return gan.train_step(batch)

    @tf.function(input_signature=[ds.element_spec], jit_compile=bool(cfg.run.jit_compile))
    def train_iteration(batch):
        strategy.run(replica_step, args=(batch,))

    # Fixed sample words and styles, so grids of different steps compare.
    sample_words = [w for w in SAMPLE_WORDS if alphabet.can_encode(w)][: cfg.run.num_samples]
    sample_ids, sample_lengths = alphabet.encode_batch(sample_words)
    sample_z = np.random.default_rng(cfg.run.seed).standard_normal(
        (len(sample_words), cfg.model.z_dim)).astype(np.float32)

    def write_samples(step: int) -> str:
        imgs = gan.generate(sample_ids, sample_lengths, sample_z).numpy()
        rows = [imaging.crop_width(imaging.to_uint8(im), 16 * n)
                for im, n in zip(imgs, sample_lengths)]
        path = imaging.save_png(imaging.grid(rows),
                                os.path.join(workdir, "samples", f"step_{step:07d}.png"))
        with writer.as_default(step=step):
            tf.summary.image("samples", imaging.grid(rows)[None, ..., None], max_outputs=1)
        return path

    writer = tf.summary.create_file_writer(os.path.join(workdir, "tb"))
    step = int(gan.step.numpy())
    start_step = step
    images_per_iter = per_replica * replicas
    t0 = time.perf_counter()
    last_t, last_step = t0, step
    metrics: dict = {}
    while step < cfg.run.steps:
        train_iteration(next(iterator))
        step += 1
        if step == start_step + 1:  # the first call traces: leave it out of the rates
            log(f"step {step}: traced and ran the first iteration in {time.perf_counter() - t0:.1f} s")
            t0 = last_t = time.perf_counter()
            last_step = step
        if step % cfg.run.log_every == 0 or step == cfg.run.steps:
            metrics = {m.name: float(m.result()) for m in gan.metrics}
            for m in gan.metrics:
                m.reset_state()
            now = time.perf_counter()
            rate = (step - last_step) / max(now - last_t, 1e-9) if step > last_step else 0.0
            with writer.as_default(step=step):
                for k, v in metrics.items():
                    tf.summary.scalar(k, v)
                tf.summary.scalar("images_per_s", rate * images_per_iter)
            log(f"step {step}/{cfg.run.steps}  {rate:.2f} it/s  {rate * images_per_iter:.1f} img/s  "
                + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            last_t, last_step = now, step
        if step % cfg.run.sample_every == 0:
            log(f"samples: {write_samples(step)}")
        if step % cfg.run.checkpoint_every == 0 and step < cfg.run.steps:
            log(f"checkpoint: {manager.save(checkpoint_number=step)}")
    if step != start_step or not manager.latest_checkpoint:
        log(f"checkpoint: {manager.save(checkpoint_number=step)}")
        if step % cfg.run.sample_every:
            log(f"samples: {write_samples(step)}")
    writer.flush()
    elapsed = time.perf_counter() - t0
    timed = step - start_step - 1
    ips = timed * images_per_iter / elapsed if timed > 0 else 0.0
    log(f"done: step {step}, {ips:.1f} real images/s")
    return TrainResult(step=step, metrics=metrics, images_per_s=ips)
