"""TFDS examples -> batched tf.data pipelines for the GAN, the recognizers and the discriminator.

Input: a ``tf.data.Dataset`` of dicts with ``image`` (uint8 ``[H, W, C]``, C in 1/3/4, or encoded
PNG/JPEG bytes when the TFDS split was loaded with ``tfds.decode.SkipDecoding()``) and, for labelled
pipelines, ``text`` (tf.string, UTF-8). ``(image, text)`` tuples (``as_supervised=True``) also work.

Output batches (dicts):

- ``image``: float32 ``[B, height, W, 1]`` in [-1, 1], ink dark (-1), paper white (+1); W is the widest
  image of the batch and narrower images are padded on the right with white (+1.0);
- ``image_width``: int32 ``[B]``, the valid width of each image;
- ``label``: int32 ``[B, L]`` alphabet ids (1..N), padded with 0 (the CTC blank) to the longest label;
- ``label_length``: int32 ``[B]``.

Labelled GAN training (``labelled_pipeline``, ``per_char_width=True``): each image is resized to
``height`` and then to exactly ``char_width * len(label)`` columns, so that real words have the
geometry of generated ones. Texts that are empty, longer than ``max_label_len`` or have a character
outside the alphabet are filtered out in the graph; ``count_unencodable`` counts them (and names the
characters) on the Python side so that training can warn.

Text encoding happens in the graph, with no Python in the hot path: ``text_encoder.TextEncoder``
(the same encoder as the exported SavedModel; NFC for the alphabet's symbols, a constant code point
-> id table, no lookup resource, so that the trainer can checkpoint its iterator).

Batches are formed with ``bucket_by_sequence_length`` (on label length for labelled pipelines, on image
width for unlabeled ones) to cut padding.
"""

from __future__ import annotations

import collections
import unicodedata
from typing import Iterable, Sequence

import tensorflow as tf

from scrabblegan_tf.core import pixels
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.text_encoder import TextEncoder

AUTOTUNE = tf.data.AUTOTUNE
PAPER = pixels.PAPER  # white, in model units


# ----------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------


def count_unencodable(
    ds_or_texts, alphabet: Alphabet, *, max_label_len: int | None = None
) -> dict:
    """How many texts a labelled pipeline drops, and why.

    ``ds_or_texts``: an iterable of str / bytes, or a ``tf.data.Dataset`` of texts or of dicts with
    ``text`` (load TFDS splits with ``decoders={"image": tfds.decode.SkipDecoding()}`` to avoid
    decoding images just to count).

    Returns a dict: ``total``, ``kept``, ``dropped``, ``empty``, ``unencodable`` (texts with a
    character outside the alphabet), ``too_long`` (encodable but longer than ``max_label_len``) and
    ``chars`` ({character: number of texts it made unencodable}, most frequent first).
    """
    if isinstance(ds_or_texts, tf.data.Dataset):
        ds = ds_or_texts
        spec = ds.element_spec
        if isinstance(spec, dict):
            ds = ds.map(lambda ex: ex["text"])
        elif isinstance(spec, tuple):
            ds = ds.map(lambda *ex: ex[1])
        texts: Iterable = ds.as_numpy_iterator()
    else:
        texts = ds_or_texts
    total = empty = unencodable = too_long = 0
    chars: collections.Counter[str] = collections.Counter()
    for t in texts:
        total += 1
        text = unicodedata.normalize("NFC", t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t))
        if not text:
            empty += 1
            continue
        bad = alphabet.unknown(text)
        if bad:
            unencodable += 1
            chars.update(bad)
        elif max_label_len and len(text) > max_label_len:
            too_long += 1
    dropped = empty + unencodable + too_long
    return {
        "total": total,
        "kept": total - dropped,
        "dropped": dropped,
        "empty": empty,
        "unencodable": unencodable,
        "too_long": too_long,
        "chars": dict(chars.most_common()),
    }


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


def _as_dict(ds: tf.data.Dataset) -> tf.data.Dataset:
    spec = ds.element_spec
    if isinstance(spec, dict):
        return ds
    if isinstance(spec, tuple) and len(spec) == 2:
        return ds.map(lambda image, text: {"image": image, "text": text})
    if isinstance(spec, tf.TensorSpec):
        return ds.map(lambda image: {"image": image})
    raise TypeError(f"Expected dicts with 'image' (and 'text') or (image, text) tuples, got {spec}")


def _grayscale(image: tf.Tensor) -> tf.Tensor:
    """Any TFDS image (uint8 [H, W, C] or encoded bytes) -> float32 [H, W, 1] in [0, 255]."""
    if image.dtype == tf.string:
        image = tf.io.decode_image(image, channels=1, expand_animations=False)
        image.set_shape([None, None, 1])
    channels = image.shape[-1]
    x = tf.cast(image, tf.float32)
    if channels == 1:
        return x
    if channels == 3:
        return tf.image.rgb_to_grayscale(x)
    if channels == 4:  # composite over white paper
        alpha = x[..., 3:] / 255.0
        return tf.image.rgb_to_grayscale(x[..., :3]) * alpha + 255.0 * (1.0 - alpha)
    if channels is None and image.shape.rank == 2:
        return x[..., None]
    raise ValueError(f"Unsupported image shape {image.shape} (need [H, W, 1|3|4])")


def _resize(gray: tf.Tensor, height: int, width: tf.Tensor) -> tf.Tensor:
    """float [H, W, 1] in [0, 255] -> model units [height, width, 1] (area-weighted when shrinking)."""
    out = tf.image.resize(gray, tf.stack([height, width]), method="bilinear", antialias=True)
    return pixels.to_model(out)


def _aspect_width(gray: tf.Tensor, height: int, max_width: int | None) -> tf.Tensor:
    shape = tf.shape(gray)
    h = tf.cast(shape[0], tf.float32)
    w = tf.cast(shape[1], tf.float32)
    width = tf.maximum(1, tf.cast(tf.round(w * height / tf.maximum(h, 1.0)), tf.int32))
    if max_width:
        width = tf.minimum(width, max_width)
    return width


def _nonempty(image_shape: tf.Tensor) -> tf.Tensor:
    return tf.logical_and(image_shape[0] > 0, image_shape[1] > 0)


# ----------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------


def _bucketed(
    ds: tf.data.Dataset,
    *,
    key: str,
    batch_size: int,
    bucket_boundaries: Sequence[int],
    drop_remainder: bool,
    with_labels: bool,
    height: int,
) -> tf.data.Dataset:
    padded_shapes = {"image": [height, None, 1], "image_width": []}
    padding_values = {"image": tf.constant(PAPER, tf.float32), "image_width": tf.constant(0, tf.int32)}
    if with_labels:
        padded_shapes.update({"label": [None], "label_length": []})
        padding_values.update({"label": tf.constant(0, tf.int32), "label_length": tf.constant(0, tf.int32)})
    boundaries = sorted({int(b) for b in bucket_boundaries if int(b) > 0})
    if not boundaries:
        return ds.padded_batch(
            batch_size, padded_shapes=padded_shapes, padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    # bucket_by_sequence_length: length < boundaries[0] -> bucket 0, ..., >= boundaries[-1] -> last.
    return ds.bucket_by_sequence_length(
        element_length_func=lambda ex: ex[key],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=padded_shapes,
        padding_values=padding_values,
        drop_remainder=drop_remainder,
    )


def labelled_pipeline(
    ds: tf.data.Dataset,
    *,
    alphabet: Alphabet,
    batch_size: int,
    char_width: int = 16,
    height: int = 32,
    max_label_len: int = 20,
    shuffle_buffer: int = 2048,
    seed: int | None = 0,
    bucket_boundaries: Sequence[int] = (4, 6, 8, 10, 13),
    drop_remainder: bool = True,
    repeat: bool = True,
    per_char_width: bool = True,
    max_width: int | None = None,
    width_jitter: tuple[float, float] | None = None,
    num_parallel_calls: int = AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of ``{"image", "image_width", "label", "label_length"}`` (see the module docstring).

    ``per_char_width``: width = ``char_width * len(label)`` (GAN training); False keeps the aspect
    ratio (recognizers), optionally capped at ``max_width`` (wider images are squeezed).
    ``width_jitter`` (lo, hi), with ``per_char_width=False``: each image's width is multiplied by a
    random factor in [lo, hi) (recognizers that must read narrow and wide writing alike).
    ``shuffle_buffer`` 0 disables shuffling. Bucketing is on the label length.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    encoder = TextEncoder(alphabet)
    ds = _as_dict(ds)
    if "text" not in ds.element_spec:
        raise ValueError("labelled_pipeline needs examples with a 'text' feature")
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def encode(ex):
        ids = encoder.encode(ex["text"])
        image = ex["image"]
        if image.dtype == tf.string:  # SkipDecoding: decode here, before the shape check
            image = tf.io.decode_image(image, channels=1, expand_animations=False)
            image.set_shape([None, None, 1])
        return {"image": image, "label": ids, "label_length": tf.shape(ids, out_type=tf.int32)[0]}

    def keep(ex):
        n = ex["label_length"]
        ok = tf.logical_and(n > 0, n <= max_label_len)
        ok = tf.logical_and(ok, tf.reduce_all(ex["label"] > 0))
        return tf.logical_and(ok, _nonempty(tf.shape(ex["image"])))

    def prepare(ex):
        gray = _grayscale(ex["image"])
        if per_char_width:
            width = char_width * ex["label_length"]
        elif width_jitter:
            natural = tf.cast(_aspect_width(gray, height, None), tf.float32)
            factor = tf.random.uniform([], width_jitter[0], width_jitter[1], seed=seed)
            width = tf.maximum(1, tf.cast(tf.round(natural * factor), tf.int32))
            if max_width:
                width = tf.minimum(width, max_width)
        else:
            width = _aspect_width(gray, height, max_width)
        return {
            "image": _resize(gray, height, width),
            "image_width": width,
            "label": ex["label"],
            "label_length": ex["label_length"],
        }

    ds = ds.map(encode, num_parallel_calls=num_parallel_calls)
    ds = ds.filter(keep)
    ds = ds.map(prepare, num_parallel_calls=num_parallel_calls)
    ds = _bucketed(
        ds, key="label_length", batch_size=batch_size, bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder, with_labels=True, height=height,
    )
    return ds.prefetch(AUTOTUNE)


def unlabeled_pipeline(
    ds: tf.data.Dataset,
    *,
    batch_size: int,
    height: int = 32,
    max_width: int | None = None,
    shuffle_buffer: int = 2048,
    seed: int | None = 0,
    bucket_boundaries: Sequence[int] = (64, 96, 128, 192, 256),
    drop_remainder: bool = True,
    repeat: bool = True,
    num_parallel_calls: int = AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of ``{"image", "image_width"}``: height ``height``, aspect kept, white padding.

    Any ``text`` is ignored (semi-supervised D training, recognizer inference). ``max_width`` caps
    the width (wider images are squeezed). Bucketing is on the resized width (pixels).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ds = _as_dict(ds)
    ds = ds.map(lambda ex: ex["image"])
    if ds.element_spec.dtype == tf.string:  # SkipDecoding
        ds = ds.map(
            lambda b: tf.ensure_shape(tf.io.decode_image(b, channels=1, expand_animations=False), [None, None, 1]),
            num_parallel_calls=num_parallel_calls,
        )
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def prepare(image):
        gray = _grayscale(image)
        width = _aspect_width(gray, height, max_width)
        return {"image": _resize(gray, height, width), "image_width": width}

    ds = ds.filter(lambda image: _nonempty(tf.shape(image)))
    ds = ds.map(prepare, num_parallel_calls=num_parallel_calls)
    ds = _bucketed(
        ds, key="image_width", batch_size=batch_size, bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder, with_labels=False, height=height,
    )
    return ds.prefetch(AUTOTUNE)
