"""Pixel scales, in one place: uint8 images (0 = black ink, 255 = white paper) and the models' units
(float in [-1, 1], ink -1, paper +1). Each function takes numpy arrays or TensorFlow tensors and
returns the same kind; ``pad_uint8_batch`` makes a model batch of uint8 images. Rounding is half to even (``np.rint``, ``tf.round``), as PNG writers need."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PAPER = 1.0  # white, in model units
INK = -1.0
SCALE = 127.5  # uint8 = (model + 1) * SCALE


def to_model(image_uint8):
    """uint8 (or float 0..255) -> float32 in [-1, 1], clipped."""
    if tf.is_tensor(image_uint8):
        return tf.clip_by_value(tf.cast(image_uint8, tf.float32) / SCALE - 1.0, INK, PAPER)
    return np.clip(np.asarray(image_uint8, np.float32) / SCALE - 1.0, INK, PAPER)


def to_uint8(image):
    """float in [-1, 1] -> uint8 (clipped, rounded half to even); the inverse of ``to_model``."""
    if tf.is_tensor(image):
        x = (tf.clip_by_value(tf.cast(image, tf.float32), INK, PAPER) + 1.0) * SCALE
        return tf.cast(tf.round(x), tf.uint8)
    x = (np.clip(np.asarray(image, np.float32), INK, PAPER) + 1.0) * SCALE
    return np.rint(x).astype(np.uint8)


def pad_uint8_batch(images, *, height: int = 32, max_width: int | None = None):
    """uint8 images [h, w(, 1)] (0 ink, 255 paper) -> (float32 [B, height, W, 1] in model units,
    padded on the right with white, int32 widths [B]). Images not ``height`` high are resized keeping
    the aspect ratio; wider than ``max_width`` ones are squeezed (as ``data.pipeline.labelled_pipeline``)."""
    xs, widths = [], []
    for im in images:
        im = np.asarray(im)
        if im.ndim == 3:
            im = im[..., 0]
        h, w = im.shape
        target_w = max(1, int(round(w * height / max(h, 1))))
        if max_width:
            target_w = min(target_w, int(max_width))
        x = im.astype(np.float32)[..., None]
        if (h, w) != (height, target_w):
            x = tf.image.resize(x, [height, target_w], method="bilinear", antialias=True).numpy()
        xs.append(to_model(x))
        widths.append(target_w)
    out = np.full((len(xs), height, max(widths), 1), PAPER, np.float32)
    for i, x in enumerate(xs):
        out[i, :, : x.shape[1]] = x
    return out, np.asarray(widths, np.int32)
