"""Input pipelines of the evaluation HTR: real TFDS splits, synthetic sets, mixing, augmentation.

Preprocessing is the project's (``scrabblegan_tf.data.pipeline.labelled_pipeline`` with
``per_char_width=False``): grayscale, height 32 with the aspect ratio kept, wider than ``max_width``
squeezed, batches padded on the right with white, labels as alphabet ids.

Mixing (``synthetic_dir`` + ``synthetic_ratio`` r): the real training split and the synthetic set
(``tfds.builder_from_directory(synthetic_dir)``, written by ``scrabblegan_tf.synthesize``) are each
shuffled and repeated, then ``tf.data.Dataset.sample_from_datasets`` draws every example from the
synthetic set with probability r (r = 1: synthetic data only).

Augmentation (``augment_batch``): one random affine map per image, in TensorFlow
(``ImageProjectiveTransformV3``, bilinear, white fill): scale s in [aug_scale_min, aug_scale_max]
about the image's centre, an extra horizontal stretch in [1 - aug_stretch, 1 + aug_stretch] (the
horizontal factor capped at aug_scale_max so words do not grow past their valid width), horizontal
shear with |tan| <= aug_shear about the middle row, translation of up to aug_translate pixels. Widths
and labels are unchanged by it; before it, each image's width is resized by a random factor in
[aug_width_min, aug_width_max) (``labelled_pipeline(width_jitter=...)``).
"""

from __future__ import annotations

import unicodedata

import tensorflow as tf
import tensorflow_datasets as tfds

from scrabblegan_tf.core import pixels
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import DATASET_ALPHABETS
from scrabblegan_tf.core.htr_config import HTRConfig
from scrabblegan_tf.data import builders
from scrabblegan_tf.data import pipeline as data_lib

# Label-length buckets for batching (padding is by the widest image of a bucket).
BUCKETS = (4, 6, 8, 10, 13, 16, 20, 25)


def resolve_alphabet(cfg: HTRConfig) -> Alphabet:
    return Alphabet.preset(cfg.alphabet or DATASET_ALPHABETS.get(cfg.dataset, "english"))


def _image_text(ds: tf.data.Dataset) -> tf.data.Dataset:
    return ds.map(lambda ex: {"image": ex["image"], "text": ex["text"]})


def real_split(cfg: HTRConfig, split: str, *, data_dir=None, manual_dir=None, shuffle_files=False,
               log=print) -> tf.data.Dataset:
    """``{"image", "text"}`` examples of a split of ``datasets/<cfg.dataset>`` (built on first use)."""
    builder = builders.get_builder(cfg.dataset, data_dir=data_dir,
                                   config=cfg.builder_config or None, manual_dir=manual_dir)
    builders.ensure_prepared(builder, manual_dir=manual_dir, log=log)
    return _image_text(builder.as_dataset(split=split, shuffle_files=shuffle_files))


def synthetic_split(path: str, split: str = "train", *, shuffle_files=True) -> tf.data.Dataset:
    """``{"image", "text"}`` examples of a synthetic set (any folder TFDS reads with
    ``tfds.builder_from_directory``)."""
    return _image_text(tfds.builder_from_directory(path).as_dataset(split=split,
                                                                     shuffle_files=shuffle_files))


def mixed_examples(real: tf.data.Dataset, synthetic: tf.data.Dataset | None, ratio: float, *,
                   shuffle_buffer: int, seed: int) -> tf.data.Dataset:
    """An endless stream: each example synthetic with probability ``ratio``, else real."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"synthetic_ratio must be in [0, 1], got {ratio}")

    def endless(ds, s):
        if shuffle_buffer:
            ds = ds.shuffle(shuffle_buffer, seed=s, reshuffle_each_iteration=True)
        return ds.repeat()

    if synthetic is None or ratio == 0.0:
        return endless(real, seed)
    if ratio == 1.0:
        return endless(synthetic, seed + 1)
    return tf.data.Dataset.sample_from_datasets(
        [endless(real, seed), endless(synthetic, seed + 1)], weights=[1.0 - ratio, ratio], seed=seed)


def batches(examples: tf.data.Dataset, cfg: HTRConfig, alphabet: Alphabet, *, training: bool,
            batch_size: int | None = None) -> tf.data.Dataset:
    """Batches of ``{"image", "image_width", "label", "label_length"}``. Training: endless (the
    input must already be endless and shuffled), bucketed, augmented when ``cfg.augment``.
    Evaluation: one pass in order, all examples kept up to ``max_label_len``."""
    ds = data_lib.labelled_pipeline(
        examples, alphabet=alphabet, batch_size=batch_size or cfg.batch_size, height=cfg.height,
        max_label_len=cfg.max_label_len, shuffle_buffer=0, seed=cfg.seed,
        bucket_boundaries=BUCKETS if training else (), drop_remainder=training, repeat=False,
        per_char_width=False, max_width=cfg.max_width,
        width_jitter=((cfg.aug_width_min, cfg.aug_width_max)
                      if training and cfg.augment and (cfg.aug_width_min, cfg.aug_width_max) != (1, 1)
                      else None))
    if training and cfg.augment:
        ds = ds.map(lambda b: augment_batch(b, cfg), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def affine_transforms(widths, height: int, *, shear, scale, stretch, tx, ty) -> tf.Tensor:
    """[B, 8] ``ImageProjectiveTransformV3`` parameters (output pixel -> input pixel) for per-image
    scale (``scale`` vertical, ``scale * stretch`` horizontal) about the valid image's centre,
    horizontal shear about the middle row and translation by (tx, ty) pixels."""
    w = tf.cast(widths, tf.float32)
    cx, cy = w / 2.0, tf.fill(tf.shape(w), height / 2.0)
    sx, sy = scale * stretch, scale
    # x_in = (x - cx) / sx + shear * (y - cy) + cx - tx ;  y_in = (y - cy) / sy + cy - ty
    a0, a1 = 1.0 / sx, shear
    a2 = cx - cx / sx - shear * cy - tx
    b1 = 1.0 / sy
    b2 = cy - cy / sy - ty
    zeros = tf.zeros_like(w)
    return tf.stack([a0, a1, a2, zeros, b1, b2, zeros, zeros], axis=1)


def augment_batch(batch: dict, cfg: HTRConfig, seed=None) -> dict:
    """``batch`` with randomly transformed images (see the module docstring)."""
    images = batch["image"]
    widths = batch["image_width"]
    n = tf.shape(images)[0]

    def uniform(lo, hi, k):
        if seed is None:
            return tf.random.uniform([n], lo, hi)
        return tf.random.stateless_uniform([n], seed=[seed, k], minval=lo, maxval=hi)

    scale = uniform(cfg.aug_scale_min, cfg.aug_scale_max, 0)
    stretch = uniform(1.0 - cfg.aug_stretch, 1.0 + cfg.aug_stretch, 1)
    stretch = tf.minimum(stretch, cfg.aug_scale_max / scale)
    transforms = affine_transforms(
        widths, cfg.height, shear=uniform(-cfg.aug_shear, cfg.aug_shear, 2), scale=scale,
        stretch=stretch, tx=uniform(-cfg.aug_translate, cfg.aug_translate, 3),
        ty=uniform(-cfg.aug_translate, cfg.aug_translate, 4))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=data_lib.PAPER, interpolation="BILINEAR", fill_mode="CONSTANT")
    return {**batch, "image": tf.clip_by_value(out, -1.0, 1.0)}


def real_uint8(cfg: HTRConfig, split: str, *, data_dir=None, manual_dir=None, limit: int = 0,
               log=print) -> tuple[list, list[str]]:
    """uint8 images [height, W] (grayscale, aspect kept, width capped at ``cfg.max_width``) and NFC
    texts of a real split, in split order (``limit`` > 0: the first ``limit``)."""
    ds = real_split(cfg, split, data_dir=data_dir, manual_dir=manual_dir, log=log)
    if limit:
        ds = ds.take(limit)
    images, texts = [], []
    for ex in ds.as_numpy_iterator():
        x, w = pixels.pad_uint8_batch([ex["image"]], height=cfg.height, max_width=cfg.max_width)
        images.append(pixels.to_uint8(x[0, :, : w[0], 0]))
        texts.append(unicodedata.normalize("NFC", ex["text"].decode("utf-8")))
    return images, texts
