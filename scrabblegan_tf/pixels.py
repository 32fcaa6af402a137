"""Pixel scales, in one place: uint8 images (0 = black ink, 255 = white paper) and the models' units
(float in [-1, 1], ink -1, paper +1). Each function takes numpy arrays or TensorFlow tensors and
returns the same kind. Rounding is half to even (``np.rint``, ``tf.round``), as PNG writers need."""

from __future__ import annotations

import sys

import numpy as np

PAPER = 1.0  # white, in model units
INK = -1.0
SCALE = 127.5  # uint8 = (model + 1) * SCALE


def _is_tensor(x) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and tf.is_tensor(x)


def to_model(image_uint8):
    """uint8 (or float 0..255) -> float32 in [-1, 1], clipped."""
    if _is_tensor(image_uint8):
        import tensorflow as tf

        return tf.clip_by_value(tf.cast(image_uint8, tf.float32) / SCALE - 1.0, INK, PAPER)
    return np.clip(np.asarray(image_uint8, np.float32) / SCALE - 1.0, INK, PAPER)


def to_uint8(image):
    """float in [-1, 1] -> uint8 (clipped, rounded half to even); the inverse of ``to_model``."""
    if _is_tensor(image):
        import tensorflow as tf

        x = (tf.clip_by_value(tf.cast(image, tf.float32), INK, PAPER) + 1.0) * SCALE
        return tf.cast(tf.round(x), tf.uint8)
    x = (np.clip(np.asarray(image, np.float32), INK, PAPER) + 1.0) * SCALE
    return np.rint(x).astype(np.uint8)
