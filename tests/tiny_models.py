"""Tiny G / D / R / ScrabbleGAN for the tests: the ``smoke`` preset (width multiplier 1/16, z_dim 32).

Models are constructed directly from the library classes (not through ``model_factory``) so that these
tests depend only on the modules under test; the channel counts come from ``ModelConfig.scaled`` so they
follow the preset.
"""

from __future__ import annotations

import keras
import numpy as np

from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import smoke
from scrabblegan_tf.models.discriminator import Discriminator
from scrabblegan_tf.models.generator import Generator
from scrabblegan_tf.models.recognizer import Recognizer

ALPHABET = Alphabet.preset("english")
NUM_CLASSES = ALPHABET.num_classes  # 81: 80 symbols + CTC blank
CFG = smoke().model  # width_mult 1/16, z_dim 32, 4 chunks of 8
Z_DIM = CFG.z_dim


def tiny_generator(seed: int = 0) -> Generator:
    keras.utils.set_random_seed(seed)
    return Generator(num_classes=NUM_CLASSES, z_dim=CFG.z_dim, num_z_chunks=CFG.num_z_chunks,
                     channels=CFG.scaled(CFG.g_channels), upsample=CFG.g_upsample)


def tiny_discriminator(seed: int = 1) -> Discriminator:
    keras.utils.set_random_seed(seed)
    return Discriminator(channels=CFG.scaled(CFG.d_channels), num_down=CFG.d_num_down)


def tiny_recognizer(seed: int = 2) -> Recognizer:
    keras.utils.set_random_seed(seed)
    return Recognizer(num_classes=NUM_CLASSES, channels=CFG.scaled(CFG.r_channels))


LEXICON = ["ab", "cab", "dog", "a", "bad"]


def tiny_gan(g_every: int = 2, optimizer=lambda: keras.optimizers.SGD(0.1), seed: int = 0):
    """A built ScrabbleGAN with tiny networks; ``optimizer`` makes one optimizer per network."""
    from scrabblegan_tf.models.gan import ScrabbleGAN

    word_ids, word_lengths = ALPHABET.encode_batch(LEXICON)
    gan = ScrabbleGAN(generator=tiny_generator(seed), discriminator=tiny_discriminator(seed + 1),
                      recognizer=tiny_recognizer(seed + 2), word_ids=word_ids,
                      word_lengths=word_lengths, g_every=g_every, seed=seed)
    gan.compile(optimizer(), optimizer(), optimizer())
    gan.build_all()
    return gan


def real_batch(texts, seed: int = 0, width: int | None = None):
    """Random "real" images [B, 32, W, 1] in [-1, 1], 16 px per character, white padding, labels."""
    rng = np.random.default_rng(seed)
    ids, lengths = ALPHABET.encode_batch(texts)
    widths = (16 * lengths).astype(np.int32)
    width = width or int(widths.max())
    images = np.ones((len(texts), 32, width, 1), np.float32)
    for row, w in zip(images, widths):
        row[:, :w] = rng.uniform(-1.0, 1.0, (32, w, 1))
    return images, widths, ids, lengths


def snapshot(model):
    """Copies of all of a model's weights (trainable and not), keyed by variable path."""
    return {v.path: np.array(v.numpy()) for v in model.weights}


def trainable_snapshot(model):
    return {v.path: np.array(v.numpy()) for v in model.trainable_variables}
