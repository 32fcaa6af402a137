"""ScrabbleGAN discriminator D: BigGAN-style residual down-blocks, fully convolutional.

Each position of the last feature map scores one overlapping patch of the input (its receptive
field); the image's score is the mean of the patch scores over the valid columns only (Fogel et al.
2020, Sec. 3.2), so the padding of a short word to the batch width adds no patch of its own. (The
valid patches next to the end see the padding through their receptive fields; padding is white,
like the paper around real words.)

White margin: before the first convolution D appends ``pad_columns`` white (+1) columns on the right
(by default the receptive field's reach beyond the last valid patch, rounded up to the pooling
factor). Without it the convolutions' zero padding, which is grey (0) in image units, reaches the last
patches of the widest image of each batch only (often a fake word), a cue about the batch layout
rather than about handwriting. With it, a word's score does not depend on how wide the rest of its
batch is.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from scrabblegan_tf.models import layers as L


class Discriminator(keras.Model):
    def __init__(self, *, channels=(64, 512, 1024, 1024), num_down: int = 3,
                 init_std: float = 0.02, sn_eps: float = 1e-8, pad_columns: int = -1,
                 name: str = "discriminator", **kwargs):
        """``pad_columns``: white columns appended on the right before scoring; -1 (default): the
        receptive field's reach (``receptive_reach``) rounded up to a multiple of 2**num_down."""
        super().__init__(name=name, **kwargs)
        if not 0 <= num_down <= len(channels):
            raise ValueError("num_down must be between 0 and the number of blocks")
        kw = dict(init_std=init_std, sn_eps=sn_eps)
        self.num_down = num_down
        f = 2 ** num_down
        reach = self.receptive_reach(len(channels), num_down)
        self.pad_columns = int(pad_columns) if pad_columns >= 0 else -(-reach // f) * f
        # Attributes down0, down1, ... rather than a list (see Generator: checkpoint tracking).
        self.num_blocks = len(channels)
        for i, c in enumerate(channels):
            setattr(self, f"down{i}", L.DownBlock(c, downsample=i < num_down, preactivation=i > 0,
                                                  name=f"down{i}", **kw))
        self.out = L.SNDense(1, name="patch_score", **kw)

    @property
    def blocks(self):
        return [getattr(self, f"down{i}") for i in range(self.num_blocks)]

    @staticmethod
    def receptive_reach(num_blocks: int, num_down: int) -> int:
        """How many input columns to the right of the last column of its pooling footprint a patch
        score depends on. Walking back from one output column [j, j]: a block without pooling widens
        the interval by its two 3x3 convolutions ([a - 2, b + 2]); a pooling block maps it to
        [2a, 2b + 1], then widens by 2. With 4 blocks, 3 pooling: [8j - 30, 8j + 37], so a reach of
        37 - 7 = 30 columns beyond the footprint [8j, 8j + 7]."""
        a = b = 0
        for i in reversed(range(num_blocks)):
            if i < num_down:
                a, b = 2 * a, 2 * b + 1
            a, b = a - 2, b + 2
        return b - (2 ** num_down - 1)

    def patch_scores(self, images, training=False):
        """[B, H', W'] scores, H' = H / 2**num_down, W' = W / 2**num_down."""
        x = images
        for block in self.blocks:
            x = block(x, training=training)
        return tf.squeeze(self.out(tf.nn.relu(x), training=training), -1)

    def call(self, inputs, training=False):
        """inputs: (images [B, 32, W, 1], widths int32 [B] or None) -> scores [B]."""
        images, widths = inputs
        if widths is None:
            widths = tf.fill(tf.shape(images)[:1], tf.shape(images)[2])
        f = 2 ** self.num_down
        if self.pad_columns:
            # Up to a multiple of f (the VALID poolings drop nothing), plus the white margin.
            extra = self.pad_columns + (-tf.shape(images)[2]) % f
            images = tf.pad(images, [[0, 0], [0, 0], [0, extra], [0, 0]], constant_values=1.0)
        scores = self.patch_scores(images, training=training)
        cols = tf.maximum(1, (tf.convert_to_tensor(widths, tf.int32) + f - 1) // f)
        valid = tf.sequence_mask(cols, tf.shape(scores)[2], dtype=scores.dtype)[:, None, :]
        total = tf.reduce_sum(scores * valid, axis=(1, 2))
        return total / (tf.reduce_sum(valid, axis=(1, 2)) * tf.cast(tf.shape(scores)[1], scores.dtype))
