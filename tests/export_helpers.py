"""Test helper for tests/test_export.py and tests/test_client.py: a training workdir without training.

A helper module rather than a function of test_export.py, because under Bazel each test file is its
own py_test whose runfiles hold the helper modules of tests/ but not the other test files.
"""

from __future__ import annotations

import pathlib

import tensorflow as tf

from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.core import run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.models.factory import make_generator


def make_workdir(path, *, alphabet: str = "english", seed: int = 0) -> str:
    """A training workdir without training: smoke-config G, config.json, alphabet.json and a
    ``tf.train.Checkpoint(generator=G)`` in ``<path>/checkpoints`` (what generate.load_generator
    restores). Two training-mode calls move the norms' statistics and the power-iteration vectors
    away from their initial values."""
    import keras

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = config_lib.get_config("smoke")
    cfg.data.alphabet = alphabet
    abc = Alphabet.preset(alphabet)
    keras.utils.set_random_seed(seed)
    gen = make_generator(cfg.model, abc.num_classes)
    ids, lengths = abc.encode_batch(["hello", "ab", "world", "Q"])
    z = tf.random.stateless_normal((4, cfg.model.z_dim), seed=(seed, 1))
    for _ in range(2):
        gen((ids, lengths, z), training=True)
    run_folder.write_settings(str(path), cfg.to_json(), abc.to_json())
    run_folder.Checkpoints(tf.train.Checkpoint(generator=gen), str(path), keep=1).save(1)
    return str(path)
