"""Building blocks of G and D: spectral-normed conv/dense, the filter bank, masked conditional norm,
BigGAN residual up/down blocks.

Layout is NHWC throughout. A ``valid`` mask is a float tensor [B, 1, W, 1] with 1 on the valid columns of
each sample (words of different lengths share a batch) and 0 on padding.

Spectral normalisation (Miyato et al., ICLR 2018, "Spectral Normalization for GANs") is implemented
here as a reparameterisation, like PyTorch's ``torch.nn.utils.spectral_norm`` used by the official
ScrabbleGAN/BigGAN code: the trainable kernel W is kept as is and the layer uses ``W / sigma(W)``,
with sigma estimated by one power iteration per training call and gradients flowing through sigma.
(``keras.layers.SpectralNormalization`` instead overwrites the kernel with its normalised value and
gives no gradient through sigma; we chose the PyTorch semantics deliberately.)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import hardware


def normal_init(std: float) -> keras.initializers.Initializer:
    """N(0, std) initialiser (BigGAN / ScrabbleGAN use std 0.02)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=std)


def _l2_normalize(x: tf.Tensor, eps: float) -> tf.Tensor:
    return x / (tf.norm(x) + eps)


class UnitNormal(keras.initializers.Initializer):
    """A random direction: N(0, 1) samples scaled to unit L2 norm (PyTorch's spectral_norm
    initialises its u vector this way, so sigma is a lower bound of the top singular value from
    the start)."""

    def __init__(self, seed=None):
        self._normal = keras.initializers.RandomNormal(0.0, 1.0, seed=seed)

    def __call__(self, shape, dtype=None):
        x = self._normal(shape, dtype=dtype)
        return x / tf.norm(x)

    def get_config(self):
        return {}


def power_iteration(w_mat: tf.Tensor, u: tf.Tensor, eps: float, update: bool):
    """One power iteration (Miyato et al. 2018, Algorithm 1) on ``w_mat`` [in, out]: (v, u), both
    constants (stop-gradient), v [1, in] and u [1, out] unit vectors. With ``update=False`` u is
    used as is (inference). sigma = v^T W u estimates W's largest singular value."""
    u = tf.stop_gradient(u)
    v = tf.stop_gradient(_l2_normalize(tf.matmul(u, w_mat, transpose_b=True), eps))  # [1, in]
    if update:
        u = tf.stop_gradient(_l2_normalize(tf.matmul(v, w_mat), eps))  # [1, out]
    return v, u


def sigma_of(w: tf.Tensor, v: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """sigma = v^T W u, W: ``w`` viewed as [-1, out]; with u and v constant, d sigma / dW = v u^T."""
    return tf.reduce_sum(tf.matmul(v, tf.reshape(w, (-1, w.shape[-1]))) * u)


def spectral_sigma(w_mat: tf.Tensor, u: tf.Tensor, eps: float, update: bool):
    """(sigma, u_new) of one ``power_iteration``: sigma = v^T W u with u and v held constant, so
    that d sigma / dW = v u^T, as in PyTorch's spectral_norm."""
    v, u = power_iteration(w_mat, u, eps, update)
    return sigma_of(w_mat, v, u), u


def divide_by_sigma(kernel: tf.Tensor, v: tf.Tensor, u: tf.Tensor, dtype) -> tf.Tensor:
    """``kernel / sigma`` cast to ``dtype``, sigma = v^T W u (W: ``kernel`` as [-1, out]; v, u from
    ``power_iteration``), with the gradient written out so that it takes two kernel-sized float32
    buffers instead of autodiff's four or five (the paper D's three 1024 x 1024 x 3 x 3 kernels are
    38 MB each; bench/memory_substeps.py).

    For y = W / sigma and an upstream gradient g = dL/dy (Miyato et al. 2018, Sec. 2.2):
    dL/dW = g / sigma - (sum(g * W) / sigma^2) v^T u, the same as autodiff of the division and of
    sigma = v^T W u with u, v constant. sum(g * W) is one matrix-vector product (no temporary
    of W's size).
    """

    @tf.custom_gradient
    def normalize(w):
        sigma = sigma_of(w, v, u)
        inv = 1.0 / sigma

        def grad(dy):
            g = tf.reshape(tf.cast(dy, tf.float32), (-1, w.shape[-1]))  # [in, out]
            dot = tf.matmul(tf.reshape(g, (1, -1)), tf.reshape(w, (-1, 1)))[0, 0]  # sum(g * W)
            rank_one = tf.matmul(v * (dot * inv), u, transpose_a=True)  # [in, out]
            return tf.reshape((g - rank_one) * inv, tf.shape(w))

        return tf.cast(w / sigma, dtype), grad

    return normalize(tf.convert_to_tensor(kernel, tf.float32))


def gather_divided_by_sigma(kernel: tf.Tensor, rows: tf.Tensor, v: tf.Tensor, u: tf.Tensor,
                            dtype) -> tf.Tensor:
    """``tf.gather(kernel, rows) / sigma`` cast to ``dtype``: some rows of a spectrally normalised
    kernel [S, ...], sigma = v^T W u of the whole kernel viewed as [-1, out] (``divide_by_sigma``).

    The gradient is dense (sigma depends on every row): dL/dW = -(sum(g * W[rows]) / sigma^2)
    v^T u, plus g / sigma added to the selected rows, built in one kernel-sized buffer
    (autodiff adds a dense copy of the gathered rows' gradient to the rank-one term: three buffers
    of the paper filter bank's 84 MB). ``rows`` may repeat (their gradients add up)."""

    @tf.custom_gradient
    def select(w):
        sigma = sigma_of(w, v, u)
        inv = 1.0 / sigma

        def grad(dy):
            g = tf.cast(dy, tf.float32)
            dot = tf.reduce_sum(g * tf.gather(w, rows))
            rank_one = tf.matmul(v * (-dot * inv * inv), u, transpose_a=True)
            return tf.tensor_scatter_nd_add(tf.reshape(rank_one, tf.shape(w)), rows[:, None], g * inv)

        return tf.cast(tf.gather(w, rows) / sigma, dtype), grad

    return select(tf.convert_to_tensor(kernel, tf.float32))


class _SpectralNormMixin:
    """Adds a power-iteration vector ``u`` and ``normalized(kernel, training)`` to a layer.

    Under a mixed-precision policy the kernel and ``u`` are not autocast (``_add_kernel``): the
    power iteration and the division run in float32 and only the normalised kernel is cast to the
    layer's compute dtype (bfloat16 would give sigma about 3 significant digits, a noisy scale)."""

    def _add_kernel(self, shape):
        return self.add_weight(name="kernel", shape=shape, initializer=normal_init(self.init_std),
                               autocast=False)

    def _add_u(self, out_dim: int):
        self.sn_u = self.add_weight(
            name="sn_u",
            shape=(1, out_dim),
            initializer=UnitNormal(),
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
        )

    sn_frozen = False  # set by freeze_spectral_norm: the kernel already holds W / sigma

    def power_iteration(self, kernel, training):
        """(v, u) of one ``power_iteration`` on the kernel viewed as [-1, out] (u updated in
        training), or None when frozen (the kernel already holds W / sigma)."""
        if self.sn_frozen:
            if training:
                raise RuntimeError(f"{self.name}: spectral norm frozen for inference; cannot train")
            return None
        kernel = tf.cast(kernel, tf.float32)
        w_mat = tf.reshape(kernel, (-1, kernel.shape[-1]))
        v, u_new = power_iteration(w_mat, tf.cast(self.sn_u, tf.float32), self.sn_eps,
                                   update=bool(training))
        if training:
            self.sn_u.assign(u_new)
        return v, u_new

    def normalized(self, kernel, training):
        """``kernel / sigma(kernel viewed as [-1, out])`` in the compute dtype (``divide_by_sigma``);
        one power iteration (u updated) in training."""
        vu = self.power_iteration(kernel, training)
        if vu is None:
            return tf.cast(kernel, self.compute_dtype)
        return divide_by_sigma(kernel, *vu, self.compute_dtype)

    def sigma(self) -> float:
        """Largest singular value of the normalised kernel, by SVD (for tests/monitoring)."""
        w = tf.convert_to_tensor(self.kernel)
        w_mat = tf.reshape(w, (-1, w.shape[-1]))
        sigma, _ = spectral_sigma(w_mat, self.sn_u, self.sn_eps, update=False)
        s = tf.linalg.svd(w_mat / sigma, compute_uv=False)
        return float(s[0])


class SNConv2D(_SpectralNormMixin, keras.layers.Layer):
    """Conv2D whose kernel is divided by its spectral norm (kernel viewed as [kh*kw*in, out]).

    ``upsample=(fh, fw)``: the layer convolves ``upsample_nearest(x, upsample)``, computed at x's
    resolution (``resize_conv``); ``avg_pool``: its output is 2x2 average-pooled (VALID), computed
    as one stride-2 convolution (``pooled_conv``). Both with stride 1 and SAME padding; the
    variables are the plain convolution's either way. ``frozen_kernel`` (set by
    ``freeze_spectral_norm``) holds the transformed kernel for inference.
    """

    def __init__(self, filters, kernel_size=3, *, strides=1, padding="same", use_bias=True,
                 upsample=(1, 1), avg_pool=False, init_std=0.02, sn_eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = strides
        self.padding = padding.upper()
        self.use_bias = use_bias
        self.upsample = tuple(int(f) for f in upsample)
        self.avg_pool = bool(avg_pool)
        if (self.upsample != (1, 1) or self.avg_pool) and (strides != 1 or self.padding != "SAME"):
            raise ValueError("upsample / avg_pool need strides=1 and padding='same'")
        if self.upsample != (1, 1) and self.avg_pool:
            raise ValueError("upsample and avg_pool together are not supported")
        self.init_std = init_std
        self.sn_eps = sn_eps
        self.frozen_kernel = None

    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        self.kernel = self._add_kernel((*self.kernel_size, in_ch, self.filters))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)
        self._add_u(self.filters)

    @property
    def transforms_kernel(self) -> bool:
        return self.upsample != (1, 1) or self.avg_pool

    def conv_kernel(self, w):
        """The kernel the convolution runs with, from the normalised one."""
        if self.upsample != (1, 1):
            return resize_conv_kernel(w, self.upsample)
        if self.avg_pool:
            return pooled_conv_kernel(w)
        return w

    def call(self, x, training=False):
        if self.frozen_kernel is not None and not training:
            k = tf.cast(self.frozen_kernel, self.compute_dtype)
        else:
            k = self.conv_kernel(self.normalized(self.kernel, training))
        if self.upsample != (1, 1):
            y = resize_conv(x, k, self.upsample)
        elif self.avg_pool:
            y = pooled_conv(x, k)
        else:
            y = conv2d(x, k, self.strides, self.padding)
        if self.bias is not None:
            y = tf.nn.bias_add(y, self.bias)
        return y


class SNDense(_SpectralNormMixin, keras.layers.Layer):
    """Dense layer with a spectrally normalised kernel [in, units]."""

    def __init__(self, units, *, use_bias=True, init_std=0.02, sn_eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        self.init_std = init_std
        self.sn_eps = sn_eps

    def build(self, input_shape):
        self.kernel = self._add_kernel((int(input_shape[-1]), self.units))
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
                     if self.use_bias else None)
        self._add_u(self.units)

    def call(self, x, training=False):
        y = tf.matmul(x, self.normalized(self.kernel, training))
        if self.bias is not None:
            y = y + self.bias
        return y


class FilterBank(_SpectralNormMixin, keras.layers.Layer):
    """ScrabbleGAN's character filter bank (Fogel et al. 2020, Sec. 3.1).

    One filter per symbol (ids 1..num_classes-1; id 0 is padding): a linear map from the first style
    chunk z_1 (``z_chunk`` dims) to a ``height x width x channels`` tensor (4 x 4 x 512 = 8192 values
    in the paper), plus one bias shared by all symbols. For ids [B, n] the output is the
    concatenation along the width of the per-character tensors: [B, height, n*width, channels];
    padding positions give zeros.

    The kernel is [symbols, z_chunk, filter_dim], spectrally normalised as the stacked
    [symbols * z_chunk, filter_dim] matrix, i.e. exactly the official code's
    ``SNLinear(z_chunk * n_classes -> 8192)`` applied to ``z_1`` placed in the symbol's one-hot block.
    (Normalising the [z_chunk, symbols * filter_dim] view instead divides by a ~6x larger sigma and
    caps the whole bank's output energy below the batch-norm epsilon.) Only the symbols present in
    the batch are multiplied with z_1, and only their rows are divided by sigma and cast to the
    compute dtype (the paper bank is 21M weights; a bfloat16 copy of all of it per call cost more
    than the whole rest of a one-word generation's non-convolution work).
    """

    def __init__(self, num_classes, *, z_chunk=32, height=4, width=4, channels=512,
                 init_std=0.02, sn_eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes}: need padding (0) and at least one symbol")
        self.num_classes = num_classes
        self.z_chunk = z_chunk
        self.fh, self.fw, self.channels = height, width, channels
        self.init_std = init_std
        self.sn_eps = sn_eps

    @property
    def filter_dim(self) -> int:
        return self.fh * self.fw * self.channels

    @property
    def num_symbols(self) -> int:
        return self.num_classes - 1

    def build(self, input_shape=None):
        self.kernel = self._add_kernel((self.num_symbols, self.z_chunk, self.filter_dim))
        self.bias = self.add_weight(name="bias", shape=(self.filter_dim,), initializer="zeros")
        self._add_u(self.filter_dim)

    def call(self, ids, z1, training=False):
        ids = tf.cast(ids, tf.int32)
        n = tf.shape(ids)[1]
        # The distinct symbols of the batch, then each sample's filter response for those only.
        symbols, pos = tf.unique(tf.reshape(ids, [-1]))
        rows = tf.maximum(symbols - 1, 0)
        vu = self.power_iteration(self.kernel, training)  # of the stacked [S * z, F] matrix
        if vu is None:
            selected = tf.cast(tf.gather(self.kernel, rows), self.compute_dtype)  # [U, z, F]
        else:
            selected = gather_divided_by_sigma(self.kernel, rows, *vu, self.compute_dtype)
        z1 = tf.cast(z1, selected.dtype)
        per_symbol = tf.einsum("bz,uzf->buf", z1, selected) + tf.cast(self.bias, selected.dtype)
        feats = tf.gather(per_symbol, tf.reshape(pos, tf.shape(ids)), batch_dims=1)  # [B, n, F]
        feats = feats * tf.cast(ids > 0, feats.dtype)[..., None]
        feats = tf.reshape(feats, (-1, n, self.fh, self.fw, self.channels))
        feats = tf.transpose(feats, (0, 2, 1, 3, 4))  # [B, fh, n, fw, C]
        return tf.reshape(feats, (-1, self.fh, n * self.fw, self.channels))


def freeze_spectral_norm(model) -> int:
    """For inference only: replaces every spectrally normalised kernel of ``model`` by its
    inference-mode value ``W / sigma`` (the same division the layer would do on every call, done
    once) and marks the layers frozen, so a forward pass no longer runs the power iteration's
    matrix products nor copies each kernel (for the paper G, ~24M weights per call); convolutions
    that upsample or pool (``SNConv2D.conv_kernel``) also keep their transformed kernel
    (``frozen_kernel``, a variable outside ``model.weights``: saved by SavedModel exports, not by
    ``model_folder``). Outputs are unchanged; the model must not be trained or saved as a training
    checkpoint afterwards. Returns the number of layers frozen."""
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
        if isinstance(layer, _SpectralNormMixin) and layer.built and not layer.sn_frozen:
            value = tf.cast(layer.normalized(layer.kernel, training=False), tf.float32)
            layer.kernel.assign(value)
            layer.sn_frozen = True
            if isinstance(layer, SNConv2D) and layer.transforms_kernel:
                layer.frozen_kernel = tf.Variable(layer.conv_kernel(value), trainable=False,
                                                  name=f"{layer.name}_frozen_kernel")
            count += 1
    return count


def width_mask(widths: tf.Tensor, total_width, dtype=tf.float32) -> tf.Tensor:
    """[B, 1, total_width, 1] mask, 1 where column < widths[b]."""
    m = tf.sequence_mask(widths, total_width, dtype=dtype)
    return m[:, None, :, None]


def masked_moments(x, valid):
    """(mean, variance, count): per-channel mean and (biased) variance of ``x`` [B, H, W, C] over
    batch, height and the valid columns (``valid`` [B, 1, W, 1]), and how many positions that is
    (at least 1). Inside ``strategy.run`` the moments are over the
    global batch (all replicas; two all-reduces: sums, then squared deviations), so a replicated
    step normalises exactly like one device holding the whole batch (synchronised batch norm)."""
    ctx = _sync_context()
    count = tf.reduce_sum(valid) * tf.cast(tf.shape(x)[1], x.dtype)
    total = tf.reduce_sum(x * valid, axis=(0, 1, 2))
    if ctx is not None:
        count, total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [count, total])
    count = tf.maximum(count, 1.0)
    mean = total / count
    sq = tf.reduce_sum(tf.square(x - mean) * valid, axis=(0, 1, 2))
    if ctx is not None:
        sq = ctx.all_reduce(tf.distribute.ReduceOp.SUM, sq)
    return mean, sq / count, count


def _sync_context():
    """The replica context when more than one replica is in sync (their sums are all-reduced), else
    None."""
    ctx = tf.distribute.get_replica_context()
    return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None


def masked_batch_norm(x, valid, gain, bias, epsilon: float):
    """Training-mode masked batch norm: (y, mean, var), y = x_hat * gain + bias cast to x's dtype,
    x_hat = (x - mean) / sqrt(var + epsilon) with the ``masked_moments`` of x (float32). ``gain``
    and ``bias`` are per channel [C] or per sample and channel [B, C] (conditional norm).

    Same values and gradients as autodiff of the formula, but the backward pass keeps only x (in
    its own dtype) and recomputes x_hat, where autodiff keeps three or four float32 copies of the
    activation (x, x - mean, x_hat, ...) from the forward to the backward pass: G's seven norms at the
    paper size (bench/memory_substeps.py). The gradient (Ioffe & Szegedy 2015, Sec. 3, with the
    sums of the statistics over the M valid positions m only, while x_hat is formed everywhere):
    with d = dL/dx_hat = dL/dy * gain, S1 = sum(d), S2 = sum(d * x_hat) over all positions (and
    replicas), dL/dx = r (d - m (S1 + x_hat S2) / M), r = 1 / sqrt(var + epsilon).
    """
    per_sample = gain.shape.rank == 2
    dtype = x.dtype
    ctx = _sync_context()

    def expand(t):  # [B, C] -> [B, 1, 1, C]; [C] as is
        return t[:, None, None, :] if per_sample else t

    @tf.custom_gradient
    def norm(x, gain, bias):
        xf = tf.cast(x, tf.float32)
        mean, var, count = masked_moments(xf, valid)
        r = tf.math.rsqrt(var + epsilon)
        y = (xf - mean) * r * expand(gain) + expand(bias)

        def grad(dy, *_):  # the moments' upstream gradients: none (they feed assignments only)
            dyf = tf.cast(dy, tf.float32)
            x_hat = (tf.cast(x, tf.float32) - mean) * r
            sum_axes = (1, 2) if per_sample else (0, 1, 2)
            d_gain = tf.reduce_sum(dyf * x_hat, axis=sum_axes)  # [B, C] or [C]
            d_bias = tf.reduce_sum(dyf, axis=sum_axes)
            # S1, S2 from the per-sample sums (no temporary the size of x): sum(dy gain) and
            # sum(dy gain x_hat) over each sample's positions, times its gain.
            s1 = tf.reduce_sum(d_bias * gain, axis=0) if per_sample else d_bias * gain
            s2 = tf.reduce_sum(d_gain * gain, axis=0) if per_sample else d_gain * gain
            if ctx is not None:
                s1, s2 = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [s1, s2])
            dx = r * (dyf * expand(gain) - valid * ((s1 + x_hat * s2) / count))
            return tf.cast(dx, dtype), d_gain, d_bias

        return (tf.cast(y, dtype), mean, var), grad

    return norm(x, tf.cast(gain, tf.float32), tf.cast(bias, tf.float32))


class MaskedBatchNorm(keras.layers.Layer):
    """Batch norm whose statistics ignore padded columns; optionally class/style-conditional.

    Conditional form (BigGAN's ccbn, Brock et al. 2019; de Vries et al. 2017):
    ``y = x_hat * (1 + gain(z)) + bias(z)`` with ``gain`` and ``bias`` spectral-normed linear maps of
    the style chunk z. Unconditional form: ``y = x_hat * gamma + beta``. In training the mean and
    variance are over (batch, height, valid columns), synchronised across replicas
    (``masked_moments``); moving averages serve inference, so a word's image at inference does not
    depend on the other words of its batch.
    """

    def __init__(self, *, conditional=True, momentum=0.9, epsilon=1e-5, init_std=0.02,
                 sn_eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.conditional = conditional
        self.momentum = momentum
        self.epsilon = epsilon
        self.init_std = init_std
        self.sn_eps = sn_eps

    def build(self, input_shape):
        ch = int(input_shape[-1])
        self.moving_mean = self.add_weight(name="moving_mean", shape=(ch,), initializer="zeros",
                                           trainable=False, autocast=False, aggregation="mean")
        self.moving_var = self.add_weight(name="moving_variance", shape=(ch,), initializer="ones",
                                          trainable=False, autocast=False, aggregation="mean")
        if self.conditional:
            self.gain = SNDense(ch, init_std=self.init_std, sn_eps=self.sn_eps, name="gain",
                                dtype=self.dtype_policy)
            self.bias = SNDense(ch, init_std=self.init_std, sn_eps=self.sn_eps, name="bias",
                                dtype=self.dtype_policy)
        else:
            self.gamma = self.add_weight(name="gamma", shape=(ch,), initializer="ones",
                                         autocast=False)
            self.beta = self.add_weight(name="beta", shape=(ch,), initializer="zeros",
                                        autocast=False)

    def call(self, x, valid, z=None, training=False):
        # Statistics and normalisation in float32 whatever the compute dtype (masked sums over a
        # batch overflow float16 and lose digits in bfloat16); the result in the compute dtype.
        if self.conditional:
            gain = 1.0 + tf.cast(self.gain(z, training=training), tf.float32)
            bias = tf.cast(self.bias(z, training=training), tf.float32)
        else:
            gain, bias = self.gamma, self.beta
        valid = tf.cast(valid, tf.float32)
        if training:
            y, mean, var = masked_batch_norm(x, valid, gain, bias, self.epsilon)
            self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
            self.moving_var.assign(self.momentum * self.moving_var + (1 - self.momentum) * var)
            return y
        x_hat = (tf.cast(x, tf.float32) - self.moving_mean) * tf.math.rsqrt(self.moving_var
                                                                           + self.epsilon)
        if self.conditional:
            y = x_hat * gain[:, None, None, :] + bias[:, None, None, :]
        else:
            y = x_hat * gain + bias
        return tf.cast(y, x.dtype)


# Convolutions with at least (kernel taps x input channels, output channels) of these get their
# kernel gradient from one im2col matrix product (``conv2d``); None: decided on first use by
# ``matmul_filter_grad_min``.
MATMUL_FILTER_GRAD_MIN: tuple[int, int] | None = None
# Measured with D's paper-size layers at batch 16 (bench/conv_filter_grad.py, bench/RESULTS.md).
# 2 AVX512-BF16 cores without AMX: TensorFlow's Conv2DBackpropFilter runs at 160-280 GFLOP/s in
# bfloat16, half its forward rate, the product at ~350; below ~4096 taps x channels (D's first
# blocks, G, R, the cpu preset) the library kernel is as fast or faster.
PRODUCT_KERNEL_GRAD_FROM = (4096, 0)
# 2 cores with AMX tiles: the library runs at 340-690 GFLOP/s on D's 1024-channel layers, the
# product at 760-830 (2.2x on down2/conv2); on the 512-channel ones the library is faster (727 vs
# 547 on down1/conv2).
PRODUCT_KERNEL_GRAD_FROM_AMX = (4096, 1024)
NEVER = (2**62, 2**62)


def default_matmul_filter_grad_min(*, gpu: bool, cpu_flags) -> tuple[int, int]:
    """``PRODUCT_KERNEL_GRAD_FROM`` on CPUs without AMX, ``PRODUCT_KERNEL_GRAD_FROM_AMX`` with AMX
    tiles (where each was measured); ``NEVER`` with a GPU (cuDNN's kernel gradient, no patch
    copies in GPU memory)."""
    if gpu:
        return NEVER
    return PRODUCT_KERNEL_GRAD_FROM_AMX if "amx_bf16" in cpu_flags else PRODUCT_KERNEL_GRAD_FROM


def matmul_filter_grad_min() -> tuple[int, int]:
    """``MATMUL_FILTER_GRAD_MIN``, set from this machine's devices on first use."""
    global MATMUL_FILTER_GRAD_MIN
    if MATMUL_FILTER_GRAD_MIN is None:
        MATMUL_FILTER_GRAD_MIN = default_matmul_filter_grad_min(
            gpu=bool(tf.config.list_logical_devices("GPU")), cpu_flags=hardware.cpu_bf16_flags())
    return MATMUL_FILTER_GRAD_MIN


def uses_product_kernel_grad(kernel_shape) -> bool:
    """Whether ``conv2d`` computes the gradient w.r.t. a kernel of this shape as one product."""
    kh, kw, cin, cout = kernel_shape
    min_taps_cin, min_cout = matmul_filter_grad_min()
    return kh * kw * cin >= min_taps_cin and cout >= min_cout


def conv2d(x, k, strides: int = 1, padding: str = "VALID"):
    """``tf.nn.conv2d(x, k, strides, padding)``; for large kernels (``matmul_filter_grad_min``) the
    gradient w.r.t. ``k`` is computed as patches(x)^T @ dy (Chellapilla et al. 2006, "High
    performance convolutional neural networks for document processing": a convolution is a
    matrix product of the input's patches), the gradient w.r.t. ``x`` as usual. Same function and
    gradients up to float rounding."""
    kh, kw, _, _ = k.shape
    padding = padding.upper()
    if (not uses_product_kernel_grad(k.shape) or not isinstance(strides, int)
            or (padding == "SAME" and strides != 1)):
        return tf.nn.conv2d(x, k, strides, padding)
    if padding == "SAME":  # stride 1: TensorFlow's split, the extra row / column after
        x = tf.pad(x, [[0, 0], [(kh - 1) // 2, kh // 2], [(kw - 1) // 2, kw // 2], [0, 0]])
    return _valid_conv_matmul_filter_grad(strides)(x, k)


_VALID_CONVS = {}


def _valid_conv_grads(x, k, dy, stride: int):
    """Gradients of ``conv2d(x, k, stride, VALID)`` w.r.t. x (the library's) and k (one product)."""
    kh, kw, cin, cout = k.shape
    dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=k, out_backprop=dy,
                                        strides=[1, stride, stride, 1], padding="VALID")
    # patches [B, H', W', kh*kw*cin] in the kernel's (row, column, channel) order.
    patches = tf.image.extract_patches(x, [1, kh, kw, 1], [1, stride, stride, 1], [1, 1, 1, 1],
                                       "VALID")
    dk = tf.matmul(tf.reshape(patches, (-1, kh * kw * cin)), tf.reshape(dy, (-1, cout)),
                   transpose_a=True)
    return dx, tf.reshape(dk, (kh, kw, cin, cout))


def _valid_conv_matmul_filter_grad(stride: int):
    """A VALID convolution of the given stride whose kernel gradient is one matrix product."""
    if stride not in _VALID_CONVS:
        @tf.custom_gradient
        def conv(x, k):
            scope = tf.get_current_name_scope()  # the layer's: profiles then name the network

            def grad(dy):
                with tf.name_scope(f"{scope}/matmul_kernel_grad".lstrip("/")):
                    return _valid_conv_grads(x, k, dy, stride)

            return tf.nn.conv2d(x, k, stride, "VALID"), grad

        _VALID_CONVS[stride] = conv
    return _VALID_CONVS[stride]


def upsample_nearest(x, factor):
    fh, fw = factor
    if fh > 1:
        x = tf.repeat(x, fh, axis=1)
    if fw > 1:
        x = tf.repeat(x, fw, axis=2)
    return x


# Which taps of a 3-tap kernel fall on which input offset, per output phase of a 2x nearest
# upsampling: output 2i reads upsampled rows 2i-1, 2i, 2i+1 = input rows i-1, i, i (taps 0 | 1, 2);
# output 2i+1 reads 2i, 2i+1, 2i+2 = input rows i, i, i+1 (taps 0, 1 | 2). Rows: the 2 input
# offsets (from i-1 for phase 0, from i for phase 1); columns: the kernel's taps.
_PHASE_TAPS_2X = (np.array([[1, 0, 0], [0, 1, 1]], np.float32),
                  np.array([[1, 1, 0], [0, 0, 1]], np.float32))


def _phase_matrices(factor: int):
    if factor == 1:
        return (np.eye(3, dtype=np.float32),)  # one phase, the kernel's own 3 taps
    if factor == 2:
        return _PHASE_TAPS_2X
    raise ValueError(f"upsampling factor {factor} not supported (1 or 2)")


def _interleave(parts, axis):
    """[t_0, ..., t_{k-1}] (same shape) -> one tensor whose index j * k + p along ``axis`` is
    t_p's index j."""
    if len(parts) == 1:
        return parts[0]
    y = tf.stack(parts, axis=axis + 1)
    shape = tf.shape(parts[0])
    new_shape = tf.concat([shape[:axis], [shape[axis] * len(parts)], shape[axis + 1:]], 0)
    return tf.reshape(y, new_shape)


def conv_after_upsample(x, kernel, factor):
    """``conv2d(upsample_nearest(x, factor), kernel)`` (stride 1, SAME) at x's resolution.

    With nearest upsampling every output phase (row and column parity) of a 3x3 convolution reads
    only 2 input rows (columns) per upsampled dimension, with some of the kernel's taps summed
    (``_PHASE_TAPS_2X``): "resize-convolution" as one convolution of x with a 2x2 (2x3 for
    (2, 1)) kernel per phase, the phases stacked as output channels and interleaved back. For
    (2, 2) that is 4 x 4 taps at x's resolution instead of 9 at 4 times as many positions: 2.25x
    fewer multiply-adds (1.5x for (2, 1)), less one extra row and column of positions (the phases
    start one apart); a 1x1 kernel commutes with the upsampling (4x / 2x).
    Same result up to float rounding (sums of taps); zero padding at the upsampled resolution is
    zero padding of x. Gradients flow to ``kernel`` through the tap sums.
    """
    return resize_conv(x, resize_conv_kernel(kernel, factor), factor)


def _combine_taps(kernel, mix):
    """[n, 9] weights x a 3x3 kernel's taps -> [n, cin, cout]: n new taps, each a weighted sum of
    the kernel's 9 (row-major)."""
    kh, kw, cin, cout = kernel.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"1x1 or 3x3 kernels only, got {kh}x{kw}")
    k = tf.matmul(tf.constant(mix, kernel.dtype), tf.reshape(kernel, (9, cin * cout)))
    return tf.reshape(k, (mix.shape[0], cin, cout))


def resize_conv_kernel(kernel, factor):
    """A 3x3 kernel -> the kernel ``resize_conv`` runs: [th, tw, cin, phases * cout], th = 2 for
    an upsampled dimension (3 otherwise), phase (a, b) in channel block a * fw + b. 1x1: as is."""
    if tuple(kernel.shape[:2]) == (1, 1):
        return kernel
    _, _, cin, cout = kernel.shape
    rows, cols = _phase_matrices(int(factor[0])), _phase_matrices(int(factor[1]))
    th, tw = rows[0].shape[0], cols[0].shape[0]
    # [phases * th * tw, 9]: each phase's small kernel as sums of the 3x3 taps.
    mix = np.concatenate([np.einsum("pi,qj->pqij", r, c).reshape(th * tw, 9)
                          for r in rows for c in cols])
    nph = len(rows) * len(cols)
    k = tf.reshape(_combine_taps(kernel, mix), (nph, th, tw, cin, cout))
    return tf.reshape(tf.transpose(k, (1, 2, 3, 0, 4)), (th, tw, cin, nph * cout))


def resize_conv(x, k, factor):
    """``conv_after_upsample`` with the kernel already transformed (``resize_conv_kernel``)."""
    fh, fw = (int(f) for f in factor)
    if tuple(k.shape[:2]) == (1, 1):
        return upsample_nearest(conv2d(x, k), (fh, fw))
    cout = k.shape[-1] // (fh * fw)
    y = conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), k)
    # y: [B, H + 1 (2x) or H, W + 1 or W, phases * cout]; phase (a, b) starts at row a, column b.
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    out_rows = []
    for a in range(fh):
        parts = []
        for b in range(fw):
            p = a * fw + b
            parts.append(y[:, a:a + h, b:b + w, p * cout:(p + 1) * cout])
        out_rows.append(_interleave(parts, axis=2))
    return _interleave(out_rows, axis=1)


# 2x2 average pooling after a 3-tap convolution, per dimension: pooled output i reads padded input
# rows 2i .. 2i + 3 (x rows 2i - 1 .. 2i + 2); row e gets tap d from both pooled rows a = e - d in
# {0, 1}, each with weight 1/2. Rows: the 4 input offsets; columns: the kernel's taps.
_POOL_TAPS_2X = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32) / 2.0


def conv_then_avg_pool(x, kernel):
    """``avg_pool2d(conv2d(x, kernel, SAME), 2, 2, VALID)`` as one convolution with stride 2.

    A 3x3 kernel becomes 4x4 (the 2x2 pooling window's four shifted copies of it, averaged), read
    at every other position: 16 taps per output at a quarter of the positions, 2.25x fewer
    multiply-adds than 9 taps at all of them; a 1x1 kernel commutes with the pooling (4x). Same
    result up to float rounding, odd sizes included (the last row / column is dropped either way).
    """
    return pooled_conv(x, pooled_conv_kernel(kernel))


def pooled_conv_kernel(kernel):
    """A 3x3 kernel -> the 4x4 kernel ``pooled_conv`` runs with stride 2; 1x1: as is."""
    if tuple(kernel.shape[:2]) == (1, 1):
        return kernel
    _, _, cin, cout = kernel.shape
    mix = np.einsum("ei,fj->efij", _POOL_TAPS_2X, _POOL_TAPS_2X).reshape(16, 9)
    return tf.reshape(_combine_taps(kernel, mix), (4, 4, cin, cout))


def pooled_conv(x, k):
    """``conv_then_avg_pool`` with the kernel already transformed (``pooled_conv_kernel``)."""
    if tuple(k.shape[:2]) == (1, 1):
        return conv2d(tf.nn.avg_pool2d(x, 2, 2, "VALID"), k)
    return conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), k, 2)


class UpBlock(keras.layers.Layer):
    """BigGAN generator residual block (Brock et al. 2019, Fig. 15a), masked for variable widths.

    h = conv2(relu(cbn2(conv1(up(relu(cbn1(x, z)))), z))); out = h + conv_sc(up(x)).
    Padded columns are zeroed before every convolution, so a word's valid columns never see the
    padding of a longer word in the same batch. conv1 and conv_sc run at x's resolution
    (``resize_conv``): the same function with 2.25x / 4x fewer multiply-adds.
    """

    def __init__(self, out_channels, *, upsample=(2, 2), init_std=0.02, sn_eps=1e-8,
                 bn_momentum=0.9, bn_eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = out_channels
        self.upsample = tuple(upsample)
        kw = dict(init_std=init_std, sn_eps=sn_eps)
        bn = dict(momentum=bn_momentum, epsilon=bn_eps, **kw)
        self.cbn1 = MaskedBatchNorm(name="cbn1", **bn)
        self.cbn2 = MaskedBatchNorm(name="cbn2", **bn)
        self.conv1 = SNConv2D(out_channels, 3, upsample=self.upsample, name="conv1", **kw)
        self.conv2 = SNConv2D(out_channels, 3, name="conv2", **kw)
        self.conv_sc = SNConv2D(out_channels, 1, upsample=self.upsample, name="conv_sc", **kw)

    def call(self, x, valid_in, valid_out, z, training=False):
        # valid_out is valid_in upsampled, so masking before the upsampling is the same.
        h = tf.nn.relu(self.cbn1(x, valid_in, z, training=training)) * valid_in
        h = self.conv1(h, training=training)
        h = tf.nn.relu(self.cbn2(h, valid_out, z, training=training)) * valid_out
        h = self.conv2(h, training=training)
        sc = self.conv_sc(x, training=training)
        return (h + sc) * valid_out


class DownBlock(keras.layers.Layer):
    """BigGAN discriminator residual block (Brock et al. 2019, Fig. 15b).

    h = pool(conv2(relu(conv1(act(x))))), act = relu except for the first block;
    shortcut = pool(conv_sc(x)), computed as conv_sc(pool(x)) (the same function), and
    pool(conv2(.)) as one stride-2 convolution (``pooled_conv``).
    """

    def __init__(self, out_channels, *, downsample=True, preactivation=True, init_std=0.02,
                 sn_eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = out_channels
        self.downsample = downsample
        self.preactivation = preactivation
        kw = dict(init_std=init_std, sn_eps=sn_eps)
        self.conv1 = SNConv2D(out_channels, 3, name="conv1", **kw)
        self.conv2 = SNConv2D(out_channels, 3, avg_pool=downsample, name="conv2", **kw)
        self.conv_sc = None
        self._kw = kw

    def build(self, input_shape):
        if int(input_shape[-1]) != self.out_channels or self.downsample:
            # Built later than its block: the block's precision, not the global policy of the moment.
            self.conv_sc = SNConv2D(self.out_channels, 1, name="conv_sc", dtype=self.dtype_policy,
                                    **self._kw)

    def _pool(self, x):
        return tf.nn.avg_pool2d(x, 2, 2, "VALID") if self.downsample else x

    def call(self, x, training=False):
        h = tf.nn.relu(x) if self.preactivation else x
        h = self.conv1(h, training=training)
        h = self.conv2(tf.nn.relu(h), training=training)  # pooled when downsampling
        sc = x
        if self.conv_sc is not None:
            # A 1x1 convolution commutes with average pooling: pooling first is the same
            # function as BigGAN's pool(conv_sc(x)) with 4x fewer multiply-adds.
            sc = self.conv_sc(self._pool(sc), training=training)
        return h + sc
