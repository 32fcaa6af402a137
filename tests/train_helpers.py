"""Tiny training configs and data for the tests that train (Bazel runfiles hold helper modules,
not other test files, so tests share these through this module)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import config as config_lib

WORDS = ["hello", "ab", "world", "the", "quick", "fox", "Only", "brown"]


def tiny_config(steps: int) -> config_lib.Config:
    # float32 and the labels as lexicon (fast, no system word list), no legibility signal: the
    # tests of those set them explicitly.
    cfg = config_lib.get_config("smoke", ["optim.g_every=2", "data.batch_size=2",
                                          "data.shuffle_buffer=8", "run.log_every=1",
                                          "run.mixed_precision=", "data.lexicon=labels",
                                          "run.eval_every=0"])
    cfg.run.steps = steps
    cfg.run.checkpoint_every = 2
    cfg.run.sample_every = 100
    return cfg


def in_memory_dataset() -> tf.data.Dataset:
    """Word images of random ink on white, one per word, like a TFDS split's examples (all 40 x 60:
    the pipeline rescales the width to 16 px per character anyway). Built from tensors, not a
    Python generator, so that the input iterator can be checkpointed."""
    rng = np.random.default_rng(0)
    images = np.full((len(WORDS), 40, 60, 1), 255, np.uint8)
    images[:, 10:30] = rng.integers(0, 255, (len(WORDS), 20, 60, 1), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices({"image": images, "text": WORDS})
