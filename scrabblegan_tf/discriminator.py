"""ScrabbleGAN discriminator D: BigGAN-style residual down-blocks, fully convolutional.

Each position of the last feature map scores one overlapping patch of the input (its receptive
field); the image's score is the mean of the patch scores over the valid columns only (Fogel et al.
2020, Sec. 3.2), so the padding of a short word to the batch width adds no patch of its own. (The
valid patches next to the end still see some padding through their receptive fields, so the score
changes slightly with padding; padding is white, like the paper around real words.)
"""

from __future__ import annotations

import keras
import tensorflow as tf

from scrabblegan_tf import layers as L


class Discriminator(keras.Model):
    def __init__(self, *, channels=(64, 512, 1024, 1024), num_down: int = 3,
                 init_std: float = 0.02, sn_eps: float = 1e-8, name: str = "discriminator",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= num_down <= len(channels):
            raise ValueError("num_down must be between 0 and the number of blocks")
        kw = dict(init_std=init_std, sn_eps=sn_eps)
        self.num_down = num_down
        # Attributes down0, down1, ... rather than a list (see Generator: checkpoint tracking).
        self.num_blocks = len(channels)
        for i, c in enumerate(channels):
            setattr(self, f"down{i}", L.DownBlock(c, downsample=i < num_down, preactivation=i > 0,
                                                  name=f"down{i}", **kw))
        self.out = L.SNDense(1, name="patch_score", **kw)

    @property
    def blocks(self):
        return [getattr(self, f"down{i}") for i in range(self.num_blocks)]

    def patch_scores(self, images, training=False):
        """[B, H', W'] scores, H' = H / 2**num_down, W' = W / 2**num_down."""
        x = images
        for block in self.blocks:
            x = block(x, training=training)
        return tf.squeeze(self.out(tf.nn.relu(x), training=training), -1)

    def call(self, inputs, training=False):
        """inputs: (images [B, 32, W, 1], widths int32 [B] or None) -> scores [B]."""
        images, widths = inputs
        scores = self.patch_scores(images, training=training)
        if widths is None:
            return tf.reduce_mean(scores, axis=(1, 2))
        f = 2 ** self.num_down
        cols = tf.maximum(1, (tf.convert_to_tensor(widths, tf.int32) + f - 1) // f)
        valid = tf.sequence_mask(cols, tf.shape(scores)[2], dtype=scores.dtype)[:, None, :]
        total = tf.reduce_sum(scores * valid, axis=(1, 2))
        return total / (tf.reduce_sum(valid, axis=(1, 2)) * tf.cast(tf.shape(scores)[1], scores.dtype))
