"""A generator-only GAN workdir for the tests of synthesize and quality (a helper module: Bazel
runfiles hold helpers, not other test files)."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.core import run_folder
from scrabblegan_tf.data import inputs

REPO = pathlib.Path(__file__).resolve().parents[1]
DHSD_DUMMY = REPO / "datasets" / "dhsd" / "dummy_data"


def make_tiny_gan(workdir) -> str:
    """A GAN workdir as scrabblegan_tf.training.gan_training writes it (config.json, alphabet.json, checkpoints/)
    holding a freshly initialised smoke-config generator (German alphabet: data.dataset=dhsd).
    Untrained weights draw noise-like words, which is all these tests need; training one step
    (tests/test_experiments.py does) costs ~30 s of tracing."""
    import keras

    from scrabblegan_tf.models.factory import make_generator

    cfg = config_lib.get_config("smoke", ["data.dataset=dhsd"])
    alphabet = inputs.resolve_alphabet(cfg)
    keras.utils.set_random_seed(0)
    gen = make_generator(cfg.model, alphabet.num_classes)
    gen((np.ones((1, 2), np.int32), np.array([2], np.int32), np.zeros((1, cfg.model.z_dim), np.float32)))
    os.makedirs(workdir, exist_ok=True)
    run_folder.write_settings(str(workdir), cfg.to_json(), alphabet.to_json())
    run_folder.Checkpoints(tf.train.Checkpoint(generator=gen), str(workdir), keep=1).save(1)
    return str(workdir)
