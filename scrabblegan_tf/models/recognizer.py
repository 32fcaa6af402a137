"""ScrabbleGAN recognizer R: the convolutional part of CRNN (Shi et al., TPAMI 2017) without the
recurrent head, as in Fogel et al. 2020, Sec. 3.3 and the official code's ``OCR_network.CRNN`` with
``use_rnn=False``: per-column class scores from local evidence only, so R judges what is drawn, not
a language model's guess.

Six 3x3 convolutions and a final 2x2 one (batch norm after the 3rd, 5th and 7th, as in CRNN), four
max-poolings ((2,2), (2,2), then two height-only (2,1)) and the final 2x2 'valid' convolution take a
32-pixel-high image to height 1. Each logit column covers 4 pixel columns (4 columns per 16-pixel
character). Output: logits [B, W/4, num_classes], class 0 = CTC blank. (The official code pads its
height-only poolings by one column and gets W/4 + 1 columns; we pad once before the last conv to
keep exactly W/4, which makes the per-sample logit length simply width // 4.)
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Pooling after each conv (None: none): heights 32 -> 16 -> 8 -> 4 -> 2, then the 2x2 conv -> 1.
POOLS = ((2, 2), (2, 2), None, (2, 1), None, (2, 1), None)
BATCH_NORM = (False, False, True, False, True, False, True)
KERNELS = (3, 3, 3, 3, 3, 3, 2)
WIDTH_REDUCTION = 4


class Recognizer(keras.Model):
    def __init__(self, *, num_classes: int, channels=(64, 128, 256, 256, 512, 512, 512),
                 bn_momentum: float = 0.9, bn_eps: float = 1e-5, name: str = "recognizer",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if len(channels) != len(POOLS):
            raise ValueError(f"the recognizer has {len(POOLS)} convolutions; got {len(channels)} widths")
        self.num_classes = num_classes
        # Attributes conv0.., bn2.. rather than lists: Keras 3 lists of layers are invisible to
        # tf.train.Checkpoint (batch-norm statistics would not be saved).
        for i, (c, k, bn) in enumerate(zip(channels, KERNELS, BATCH_NORM)):
            setattr(self, f"conv{i}", keras.layers.Conv2D(
                c, k, padding="same" if k == 3 else "valid", use_bias=not bn,
                kernel_initializer="he_normal", name=f"conv{i}"))
            if bn:  # synchronised across replicas: a replicated R step equals a single-device one
                setattr(self, f"bn{i}", keras.layers.BatchNormalization(
                    momentum=bn_momentum, epsilon=bn_eps, synchronized=True, name=f"bn{i}"))
        self.classifier = keras.layers.Dense(num_classes, name="classifier")

    @property
    def convs(self):
        return [getattr(self, f"conv{i}") for i in range(len(POOLS))]

    @property
    def norms(self):
        return [getattr(self, f"bn{i}", None) for i in range(len(POOLS))]

    def call(self, images, training=False):
        x = images
        for conv, bn, pool, k in zip(self.convs, self.norms, POOLS, KERNELS):
            if k == 2:  # one column of padding on the right keeps W/4 columns after the 2x2 conv
                x = tf.pad(x, [[0, 0], [0, 0], [0, 1], [0, 0]])
            x = conv(x)
            if bn is not None:
                x = bn(x, training=training)
            x = tf.nn.relu(x)
            if pool is not None:
                x = tf.nn.max_pool2d(x, pool, pool, "VALID")
        x = tf.reduce_mean(x, axis=1)  # height is 1 for 32-pixel inputs
        return self.classifier(x)

    @staticmethod
    def logit_lengths(widths):
        """Number of valid logit columns for images of the given valid widths."""
        return tf.maximum(1, tf.convert_to_tensor(widths, tf.int32) // WIDTH_REDUCTION)
