"""Rendering text with a trained generator: loading a training run or a shipped model folder
(``load_generator``), style vectors from seeds (``style_vectors``, the function the SavedModel uses
too, so a seed gives the same image everywhere) and uint8 images of texts (``render``)."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import imaging, pixels, run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import GENERATION_PRECISIONS, Config
from scrabblegan_tf.inference import model_folder
from scrabblegan_tf.models.factory import generator_for
from scrabblegan_tf.models.layers import freeze_spectral_norm


def style_vectors(seeds, z_dim: int):
    """z [len(seeds), z_dim] float32: ``tf.random.stateless_normal`` with seed (s, 0) per row."""
    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal([z_dim], seed=tf.stack([s, tf.constant(0, tf.int64)])),
        seeds, fn_output_signature=tf.TensorSpec([z_dim], tf.float32))


def resolve_model(workdir: str | None) -> str:
    """``workdir`` itself; a shipped model's name (``german_dhsd``: a folder of
    ``scrabblegan_tf/pretrained/``) when no such path exists; the default model when None or empty."""

    if workdir:
        shipped = model_folder.PRETRAINED_DIR / workdir
        if not os.path.exists(workdir) and os.sep not in workdir and model_folder.is_model_folder(shipped):
            return str(shipped)
        return workdir
    if not model_folder.is_model_folder(model_folder.DEFAULT_MODEL):
        raise FileNotFoundError(f"No --workdir given and no default model in {model_folder.DEFAULT_MODEL}")
    return str(model_folder.DEFAULT_MODEL)


def load_run(workdir: str) -> tuple[Config, Alphabet]:
    """The config and alphabet a training run (or a model folder) holds in ``workdir``."""
    text, alphabet = run_folder.read_settings(workdir, kind="training workdir or model folder")
    return Config.from_json(text), alphabet


def load_generator(workdir: str | None, checkpoint: str | None = None, *,
                   precision: str = "float32", inference: bool = True):
    """(generator, config, alphabet, weights path) from a training workdir (latest checkpoint, or
    ``checkpoint``), a model folder (``inference.model_folder``), or the default model when
    ``workdir`` is None. ``precision="bfloat16"``: G computes in bfloat16 (float32 weights and
    output image; several times faster on CPUs with AMX or AVX512-BF16). ``inference``: the
    spectral norms are frozen (``layers.freeze_spectral_norm``: same images, less work per call);
    False keeps G as trained (to save it again, e.g. as a model folder)."""
    if precision not in GENERATION_PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {GENERATION_PRECISIONS}")
    workdir = resolve_model(workdir)
    cfg, alphabet = load_run(workdir)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        gen = generator_for(cfg.model, alphabet)
        gen((np.ones((1, 1), np.int32), np.ones((1,), np.int32),
             np.zeros((1, cfg.model.z_dim), np.float32)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    if model_folder.is_model_folder(workdir) and not checkpoint:
        path = os.path.join(workdir, model_folder.WEIGHTS_FILE)
        model_folder.load_weights(gen, path)
    else:
        path = run_folder.restore_trained(tf.train.Checkpoint(generator=gen), workdir, checkpoint)
    if inference:
        freeze_spectral_norm(gen)
    return gen, cfg, alphabet, path


def render(generator, alphabet: Alphabet, texts, seeds=None, z=None) -> list[np.ndarray]:
    """uint8 [32, char_width * len(text)] images of ``texts``, one style per text (from ``seeds`` or ``z``)."""
    texts = list(texts)
    ids, lengths = alphabet.encode_batch(texts)
    if z is None:
        z = style_vectors(np.asarray(seeds, np.int64), generator.z_dim)
    images = generator((ids, lengths, z), training=False).numpy()
    return [imaging.crop_width(pixels.to_uint8(im), generator.char_width * n)[..., 0]
            for im, n in zip(images, lengths)]
