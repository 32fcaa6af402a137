"""The evaluation HTR: a small CRNN (Shi et al., TPAMI 2017) with a BiLSTM head, trained with CTC.

This recognizer is separate from the GAN's R (``scrabblegan_tf.models.recognizer``): R has no recurrent head
on purpose (it must judge what G draws, not guess words), while this one is a conventional HTR, the
kind ScrabbleGAN's synthetic data is meant to improve.

Input: float32 images [B, height, W, 1] in [-1, 1] (paper white = +1, as ``scrabblegan_tf.data.pipeline``
produces them) and optionally the valid width of each image [B]. Six 3x3 convolutions with batch norm
and ReLU, max-pooling height 32 -> 2 and width by ``width_reduction`` (2 or 4); the 2 remaining rows
are stacked into the features of each column; ``lstm_layers`` bidirectional LSTMs (masked to the
valid columns, so the backward direction starts at the word's end, not in the white padding); a dense
layer gives per-column scores for ``num_classes`` classes, class 0 = the CTC blank
(``scrabblegan_tf.core.alphabet.BLANK_ID``).

Default size (``width_mult=1``): channels 16-32-64-64-128-128, 2 x 128 LSTM units per direction, 1.1M
parameters (with DHSD's 90 classes): 2 to 5 training steps per second at batch 32 on two CPU cores. ``width_mult`` scales every channel
count and the LSTM units (at least 4). ``width_reduction=2`` keeps one logit column per 2 pixel
columns: DHSD's 128-pixel-wide names of up to 37 characters need more than the 32 columns that a
reduction of 4 would leave (CTC needs one column per symbol plus one per repeated neighbour).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import pixels
from scrabblegan_tf.core.alphabet import BLANK_ID, Alphabet

CONV_CHANNELS = (16, 32, 64, 64, 128, 128)
LSTM_UNITS = 128
# Height pooling after each conv (None: none): 32 -> 16 -> 8 -> 4 -> 2. Width: see _pools().
_HEIGHT_POOLS = (2, 2, None, 2, None, 2)
HEIGHT_REDUCTION = 16


def _pools(width_reduction: int):
    if width_reduction not in (1, 2, 4):
        raise ValueError(f"width_reduction must be 1, 2 or 4, got {width_reduction}")
    widths = {1: (1, 1), 2: (2, 1), 4: (2, 2)}[width_reduction]
    out = []
    for i, h in enumerate(_HEIGHT_POOLS):
        if h is None:
            out.append(None)
        else:
            out.append((h, widths[i] if i < 2 else 1))
    return tuple(out)


def scaled(channels, width_mult: float):
    if isinstance(channels, int):
        return max(4, int(round(channels * width_mult)))
    return tuple(max(4, int(round(c * width_mult))) for c in channels)


class CRNN(keras.Model):
    """CRNN + BiLSTM + CTC head (see the module docstring). Explicit keyword arguments only."""

    def __init__(self, *, num_classes: int, width_mult: float = 1.0,
                 conv_channels=CONV_CHANNELS, lstm_units: int = LSTM_UNITS, lstm_layers: int = 2,
                 dropout: float = 0.25, width_reduction: int = 2, height: int = 32,
                 bn_momentum: float = 0.99, name: str = "htr_crnn", **kwargs):
        super().__init__(name=name, **kwargs)
        if height % HEIGHT_REDUCTION:
            raise ValueError(f"height must be a multiple of {HEIGHT_REDUCTION}, got {height}")
        if len(conv_channels) != len(_HEIGHT_POOLS):
            raise ValueError(f"the CRNN has {len(_HEIGHT_POOLS)} convolutions; got {len(conv_channels)} widths")
        self.num_classes = int(num_classes)
        self.width_reduction = int(width_reduction)
        self.height = int(height)
        self.pools = _pools(self.width_reduction)
        self.channels = scaled(tuple(conv_channels), width_mult)
        self.units = scaled(int(lstm_units), width_mult)
        self.num_lstm = int(lstm_layers)
        # Layers as attributes (conv0.., bn0.., lstm0..): Keras 3 lists of layers are invisible to
        # tf.train.Checkpoint.
        for i, c in enumerate(self.channels):
            setattr(self, f"conv{i}", keras.layers.Conv2D(c, 3, padding="same", use_bias=False,
                                                          kernel_initializer="he_normal", name=f"conv{i}"))
            setattr(self, f"bn{i}", keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}"))
        self.dropout = keras.layers.Dropout(dropout)
        for i in range(self.num_lstm):
            setattr(self, f"lstm{i}", keras.layers.Bidirectional(
                keras.layers.LSTM(self.units, return_sequences=True), name=f"lstm{i}"))
        self.classifier = keras.layers.Dense(self.num_classes, name="classifier")

    # -- geometry ---------------------------------------------------------------------------------
    def logit_lengths(self, widths):
        """Valid logit columns of images with the given valid widths: ceil(width / reduction), >= 1."""
        w = tf.convert_to_tensor(widths, tf.int32)
        r = self.width_reduction
        return tf.maximum(1, (w + r - 1) // r)

    # -- forward ----------------------------------------------------------------------------------
    def _columns(self, images, training):
        x = tf.convert_to_tensor(images, tf.float32)
        r = self.width_reduction
        pad = (-tf.shape(x)[2]) % r  # right-pad with white to a multiple of the reduction
        x = tf.pad(x, [[0, 0], [0, 0], [0, pad], [0, 0]], constant_values=1.0)
        for i, pool in enumerate(self.pools):
            x = getattr(self, f"conv{i}")(x)
            x = getattr(self, f"bn{i}")(x, training=training)
            x = tf.nn.relu(x)
            if pool is not None:
                x = tf.nn.max_pool2d(x, pool, pool, "VALID")
        # [B, h, T, C] -> [B, T, h * C]
        rows = self.height // HEIGHT_REDUCTION
        x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], rows * self.channels[-1]])

    def sequence_features(self, images, widths=None, training=False):
        """The last BiLSTM's outputs [B, T, 2 * units] and the mask [B, T] of valid columns."""
        x = self._columns(images, training)
        steps = tf.shape(x)[1]
        if widths is None:
            mask = tf.ones(tf.shape(x)[:2], tf.bool)
        else:
            mask = tf.sequence_mask(tf.minimum(self.logit_lengths(widths), steps), steps)
        x = self.dropout(x, training=training)
        for i in range(self.num_lstm):
            x = getattr(self, f"lstm{i}")(x, mask=mask, training=training)
        return x, mask

    def call(self, images, widths=None, training=False):
        """Logits [B, T, num_classes], T = ceil(W / width_reduction)."""
        x, _ = self.sequence_features(images, widths, training=training)
        x = self.dropout(x, training=training)
        return self.classifier(x)

    def features(self, images, widths=None):
        """One vector per image [B, 2 * units]: the last BiLSTM's outputs averaged over the valid
        columns (inference mode). The feature space of ``scrabblegan_tf.evaluation.quality``'s Fréchet distance."""
        x, mask = self.sequence_features(images, widths, training=False)
        m = tf.cast(mask, x.dtype)[..., None]
        return tf.reduce_sum(x * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)


# -- decoding -------------------------------------------------------------------------------------
def greedy_decode(logits, logit_lengths=None, blank: int = BLANK_ID) -> list[list[int]]:
    """Best-path CTC decoding (Graves et al., ICML 2006): the arg-max class of every valid column,
    consecutive repeats collapsed, then blanks dropped. A blank between two equal symbols keeps both
    (``a - a`` -> ``aa``, ``a a`` -> ``a``).

    ``logits``: [B, T, C] (any scores; only the arg-max matters), numpy or tensor.
    ``logit_lengths``: [B] valid columns (None: all T). Returns one list of class ids per sample.
    """
    scores = np.asarray(logits)
    if scores.ndim != 3:
        raise ValueError(f"logits must be [batch, time, classes], got shape {scores.shape}")
    best = scores.argmax(axis=-1)
    lengths = (np.full(len(best), best.shape[1]) if logit_lengths is None
               else np.asarray(logit_lengths).reshape(-1))
    out = []
    for row, n in zip(best, lengths):
        seq, prev = [], None
        for c in row[: int(n)]:
            c = int(c)
            if c != prev and c != blank:
                seq.append(c)
            prev = c
        out.append(seq)
    return out


def count_params(model: keras.Model) -> int:
    return int(sum(math.prod(v.shape) for v in model.weights if v.trainable))


# -- reading ----------------------------------------------------------------------------------------
def _infer_fn(model):
    fn = getattr(model, "_htr_infer", None)
    if fn is None:
        @tf.function(input_signature=[tf.TensorSpec([None, model.height, None, 1], tf.float32),
                                      tf.TensorSpec([None], tf.int32)], jit_compile=False)
        def fn(images, widths):
            return model(images, widths=widths, training=False), model.logit_lengths(widths)
        model._htr_infer = fn  # pylint: disable=protected-access
    return fn


def read_batch(model, alphabet: Alphabet, images, widths) -> list[str]:
    """Greedy transcriptions of model-unit images [B, H, W, 1] with valid widths [B]."""
    logits, lengths = _infer_fn(model)(np.asarray(images, np.float32), np.asarray(widths, np.int32))
    return [alphabet.decode(ids) for ids in greedy_decode(logits.numpy(), lengths.numpy())]


def read_uint8(model, alphabet: Alphabet, images: list[np.ndarray], *, batch_size: int = 64,
               max_width: int | None = None) -> list[str]:
    """Transcriptions of uint8 images [32, W(, 1)] (0 ink, 255 paper), height already 32; widths over
    ``max_width`` are squeezed like the training pipeline does."""
    out = []
    for i in range(0, len(images), batch_size):
        x, w = pixels.pad_uint8_batch(images[i:i + batch_size], height=model.height, max_width=max_width)
        out.extend(read_batch(model, alphabet, x, w))
    return out
