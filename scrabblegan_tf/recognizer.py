"""ScrabbleGAN recognizer R: the convolutional part of CRNN (Shi et al., TPAMI 2017) without the
recurrent head, as in Fogel et al. 2020, Sec. 3.3: per-column class scores from local evidence only,
so R judges what is drawn, not a language model's guess.

Seven 3x3 convolutions and five height poolings bring a 32-pixel-high image to height 1; the first
two poolings also halve the width, so each logit column covers 4 pixel columns (4 columns per
16-pixel character). Output: logits [B, W/4, num_classes], class 0 = CTC blank.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Pooling after each conv (None: no pooling): heights 32 -> 16 -> 8 -> 4 -> 2 -> 1, widths / 4.
POOLS = ((2, 2), (2, 2), None, (2, 1), None, (2, 1), (2, 1))
WIDTH_REDUCTION = 4


class Recognizer(keras.Model):
    def __init__(self, *, num_classes: int, channels=(64, 128, 256, 256, 512, 512, 512),
                 bn_momentum: float = 0.99, name: str = "recognizer", **kwargs):
        super().__init__(name=name, **kwargs)
        if len(channels) != len(POOLS):
            raise ValueError(f"the recognizer has {len(POOLS)} convolutions; got {len(channels)} widths")
        self.num_classes = num_classes
        self.convs = [keras.layers.Conv2D(c, 3, padding="same", use_bias=False,
                                          kernel_initializer="he_normal", name=f"conv{i}")
                      for i, c in enumerate(channels)]
        self.norms = [keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")
                      for i in range(len(channels))]
        self.classifier = keras.layers.Dense(num_classes, name="classifier")

    def call(self, images, training=False):
        x = images
        for conv, bn, pool in zip(self.convs, self.norms, POOLS):
            x = tf.nn.relu(bn(conv(x), training=training))
            if pool is not None:
                x = tf.nn.max_pool2d(x, pool, pool, "VALID")
        x = tf.reduce_mean(x, axis=1)  # height is 1 for 32-pixel inputs
        return self.classifier(x)

    @staticmethod
    def logit_lengths(widths):
        """Number of valid logit columns for images of the given valid widths."""
        return tf.maximum(1, tf.convert_to_tensor(widths, tf.int32) // WIDTH_REDUCTION)
