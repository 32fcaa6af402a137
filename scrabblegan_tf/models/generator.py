"""ScrabbleGAN generator G (Fogel et al., CVPR 2020, Sec. 3.1 and Fig. 2).

z (z_dim = num_chunks x chunk) is split in chunks. Chunk 0 multiplies each character's filter from
the filter bank (one filter per symbol), giving a [4, 4n, C0] map for n characters; chunks 1..k
condition the norms of the k residual up-blocks; a norm, ReLU, 3x3 conv and tanh give a
[32, c n, 1] image in [-1, 1] (c = char_width: 16 with 4-column filters, 12 with 3-column ones).
Columns beyond c * len of a shorter word are set to background
(+1, white), and every block zeroes its padded columns, so with inference-mode norms a word's image
does not depend on the other words of its batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from scrabblegan_tf.models import layers as L


class Generator(keras.Model):
    def __init__(self, *, num_classes: int, z_dim: int = 128, num_z_chunks: int = 4,
                 channels=(512, 256, 128, 64), upsample=((2, 2), (2, 2), (2, 1)),
                 base_height: int = 4, base_width: int = 4, init_std: float = 0.02,
                 sn_eps: float = 1e-8, bn_momentum: float = 0.9, bn_eps: float = 1e-5,
                 gap_ids=(), name: str = "generator", **kwargs):
        """``gap_ids``: symbols drawn as blank paper between words (the space): their columns are
        treated like padding at every layer, so the letters on either side see a word boundary,
        exactly as when each word is drawn alone with the same z, and the gap is white."""
        super().__init__(name=name, **kwargs)
        if len(upsample) != len(channels) - 1:
            raise ValueError("need one upsample factor per up-block (len(channels) - 1)")
        if num_z_chunks != len(channels):
            raise ValueError(
                f"num_z_chunks={num_z_chunks} must equal 1 (filter bank) + {len(channels) - 1} blocks")
        if z_dim % num_z_chunks:
            raise ValueError(f"z_dim={z_dim} not divisible by num_z_chunks={num_z_chunks}")
        self.num_classes = num_classes
        self.gap_ids = tuple(int(i) for i in gap_ids)
        self.z_dim = z_dim
        self.num_z_chunks = num_z_chunks
        self.upsample = tuple(tuple(u) for u in upsample)
        self.base_width = base_width
        self.char_width = base_width
        for _, fw in self.upsample:
            self.char_width *= fw
        self.image_height = base_height
        for fh, _ in self.upsample:
            self.image_height *= fh
        kw = dict(init_std=init_std, sn_eps=sn_eps)
        self.filter_bank = L.FilterBank(num_classes, z_chunk=z_dim // num_z_chunks,
                                        height=base_height, width=base_width,
                                        channels=channels[0], name="filter_bank", **kw)
        # Sub-layers are plain attributes (up0, up1, ...), not a list: Keras 3 lists of layers are
        # invisible to tf.train.Checkpoint, whose saves would then miss their non-trainable state.
        self.num_blocks = len(channels) - 1
        for i, (c, u) in enumerate(zip(channels[1:], self.upsample)):
            setattr(self, f"up{i}", L.UpBlock(c, upsample=u, bn_momentum=bn_momentum,
                                              bn_eps=bn_eps, name=f"up{i}", **kw))
        self.out_bn = L.MaskedBatchNorm(conditional=False, momentum=bn_momentum, epsilon=bn_eps,
                                        name="out_bn", **kw)
        self.out_conv = L.SNConv2D(1, 3, name="out_conv", **kw)

    def call(self, inputs, training=False):
        """inputs: (ids int32 [B, n], lengths int32 [B], z float32 [B, z_dim]) -> [B, 32, char_width n, 1]."""
        ids, lengths, z = inputs
        ids = tf.cast(ids, tf.int32)
        lengths = tf.cast(lengths, tf.int32)
        cd = self.compute_dtype  # float32, or bfloat16/float16 under a mixed-precision policy
        z = tf.cast(z, cd)
        # Ids at or beyond a word's length are padding, whatever the caller put there.
        n = tf.shape(ids)[1]
        ids = ids * tf.sequence_mask(lengths, n, dtype=tf.int32)
        drawn = ids > 0  # [B, n]: symbols within the length that are not gaps
        for g in self.gap_ids:
            drawn &= ids != g
        ids = ids * tf.cast(drawn, tf.int32)
        chunks = tf.split(z, self.num_z_chunks, axis=-1)
        x = self.filter_bank(ids, chunks[0], training=training)
        span = self.base_width
        valid = self._column_mask(drawn, span, cd)
        for block, (_, fw), zk in zip(self.blocks, self.upsample, chunks[1:]):
            span *= fw
            valid_out = self._column_mask(drawn, span, cd)
            x = block(x, valid, valid_out, zk, training=training)
            valid = valid_out
        x = tf.nn.relu(self.out_bn(x, valid, training=training)) * valid
        # The image in float32: tanh, then exact white (+1) beyond each word.
        x = tf.tanh(tf.cast(self.out_conv(x, training=training), tf.float32))
        valid = tf.cast(valid, tf.float32)
        return x * valid + (1.0 - valid)

    @staticmethod
    def _column_mask(drawn, span: int, dtype):
        """[B, 1, n * span, 1]: 1 on the columns of drawn symbols (``span`` columns each)."""
        m = tf.repeat(tf.cast(drawn, dtype), span, axis=1)
        return m[:, None, :, None]

    @property
    def blocks(self):
        return [getattr(self, f"up{i}") for i in range(self.num_blocks)]

    def image_widths(self, lengths):
        return tf.convert_to_tensor(lengths, tf.int32) * self.char_width
