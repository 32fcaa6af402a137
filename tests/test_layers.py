"""Layers: reparameterised spectral norm (power iteration, gradient through sigma), filter bank,
masked (conditional) batch norm, width masks, up/down blocks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.models import layers as L


def _w_over_sigma(layer):
    """The normalised kernel an SNDense uses in inference mode, read from its output: with the
    identity as input and a zero bias, ``y = I @ (W / sigma) = W / sigma``."""
    n_in = layer.kernel.shape[0]
    layer.bias.assign(tf.zeros_like(layer.bias))
    return layer(tf.eye(n_in), training=False).numpy()


# -- spectral norm ------------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape, calls", [
    # kernel viewed as [3*3*4, 8]: power iteration converges in a handful of steps
    (lambda: L.SNConv2D(8, 3), (1, 5, 5, 4), 20),
    # [32, 16] Gaussian: the two top singular values are close, so convergence is slower
    (lambda: L.SNDense(16), (2, 32), 100),
])
def test_power_iteration_makes_top_singular_value_one(make, shape, calls):
    keras.utils.set_random_seed(0)
    layer = make()
    x = tf.random.normal(shape)
    layer(x, training=True)
    for _ in range(calls - 1):
        layer(x, training=True)
    s = layer.sigma()
    # sigma = v^T W u with unit u, v never exceeds the top singular value, so W / sigma has top
    # singular value >= 1; after the iterations it is within 1% of 1.
    assert 1.0 - 1e-5 <= s < 1.01
    # sigma() agrees with an independent SVD of the kernel divided by the power-iteration estimate.
    w = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
    u = layer.sn_u.numpy()
    v = u @ w.T
    v /= np.linalg.norm(v)
    est = (v @ w @ u.T).item()
    assert s == pytest.approx(np.linalg.svd(w / est, compute_uv=False)[0], rel=1e-5)


def test_power_iteration_on_the_whole_filter_bank():
    keras.utils.set_random_seed(0)
    bank = L.FilterBank(81, z_chunk=8, channels=32)  # normalised as [80 * 8, 4*4*32]
    ids, z = tf.constant([[1, 2, 3]]), tf.random.normal((1, 8))
    for _ in range(100):
        bank(ids, z, training=True)
    assert 1.0 - 1e-5 <= bank.sigma() < 1.01


def test_filter_bank_is_normalised_as_the_stacked_symbol_blocks():
    """The matrix under spectral norm is [symbols * z_chunk, filter_dim] (the official
    SNLinear(32 * C -> 8192)): its u vector is filter_dim long, and the sigma the layer divides by
    is that matrix's top singular value (after the power iteration converged)."""
    keras.utils.set_random_seed(0)
    bank = L.FilterBank(6, z_chunk=4, height=1, width=2, channels=3)
    bank(tf.constant([[1]]), tf.random.normal((1, 4)))
    assert tuple(bank.kernel.shape) == (5, 4, 6) and tuple(bank.sn_u.shape) == (1, 6)
    for _ in range(200):
        bank(tf.constant([[1]]), tf.random.normal((1, 4)), training=True)
    w = bank.kernel.numpy().reshape(5 * 4, 6)
    sigma_true = np.linalg.svd(w, compute_uv=False)[0]
    assert bank.sigma() == pytest.approx(1.0, abs=1e-3)
    # The stacked view is not the [z_chunk, symbols * filter_dim] one, whose sigma differs.
    other = np.linalg.svd(bank.kernel.numpy().transpose(1, 0, 2).reshape(4, 30), compute_uv=False)[0]
    assert abs(other - sigma_true) > 1e-3


def test_fresh_paper_bank_responds_strongly_enough():
    """Issue 'The generator writes legibly', cause 1: with the paper's sizes (80 symbols, z_chunk
    32, 8192 values per filter, N(0, 0.02) init), the largest response |f_c(z1)| over unit z1 and
    symbols c is the largest top singular value of a 32 x 8192 block over sigma of the whole bank:
    about 0.02 (sqrt(32) + sqrt(8192)) / (0.02 (sqrt(2560) + sqrt(8192))) = 1.92 / 2.82 = 0.68
    (Gaussian matrix estimates). Normalising the [32, 80 * 8192] view instead divides by
    0.02 (sqrt(32) + sqrt(655360)) = 16.3, giving about 0.12."""
    keras.utils.set_random_seed(0)
    bank = L.FilterBank(81, z_chunk=32, height=4, width=4, channels=512)
    bank(tf.constant([[1]]), tf.random.normal((1, 32)))
    for _ in range(30):  # converge u (the estimate only grows towards the true sigma)
        bank(tf.constant([[1]]), tf.random.normal((1, 32)), training=True)
    w = bank.kernel.numpy()
    sigma = np.linalg.svd(w.reshape(80 * 32, 8192), compute_uv=False)[0]
    assert sigma == pytest.approx(2.82, rel=0.05)
    best_block = max(np.linalg.svd(w[c], compute_uv=False)[0] for c in range(0, 80, 8))
    largest = best_block / sigma
    assert largest >= 0.5
    # What the layer computes agrees: the response of the best unit z1 for symbol 1.
    _, _, vt = np.linalg.svd(w[0].T, full_matrices=False)
    z1 = tf.constant(vt[:1], tf.float32)  # top right-singular vector of block 1 (unit norm)
    out = bank(tf.constant([[1]]), z1, training=False).numpy()
    u = bank.sn_u.numpy()
    v = u @ w.reshape(80 * 32, 8192).T
    estimate = (v / np.linalg.norm(v) @ w.reshape(80 * 32, 8192) @ u.T).item()
    assert np.linalg.norm(out) == pytest.approx(
        np.linalg.svd(w[0], compute_uv=False)[0] / estimate, rel=1e-3)


def test_normalised_kernel_used_by_the_forward_pass_has_spectral_norm_one():
    keras.utils.set_random_seed(1)
    layer = L.SNDense(6)
    x = tf.random.normal((3, 10))
    for _ in range(100):
        layer(x, training=True)
    w_norm = _w_over_sigma(layer)
    np.testing.assert_allclose(w_norm, layer.kernel.numpy() / np.linalg.norm(layer.kernel.numpy(), 2),
                               rtol=1e-2)
    assert np.linalg.svd(w_norm, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-2)


def test_inference_calls_do_not_run_the_power_iteration():
    keras.utils.set_random_seed(0)
    layer = L.SNConv2D(4, 3)
    x = tf.random.normal((1, 4, 4, 2))
    layer(x, training=True)
    u = layer.sn_u.numpy().copy()
    y1 = layer(x, training=False).numpy()
    y2 = layer(x, training=False).numpy()
    np.testing.assert_array_equal(layer.sn_u.numpy(), u)
    np.testing.assert_array_equal(y1, y2)
    layer(x, training=True)
    assert not np.array_equal(layer.sn_u.numpy(), u)  # one more power iteration moved u
    assert np.linalg.norm(layer.sn_u.numpy()) == pytest.approx(1.0, abs=1e-5)  # u is kept unit


def test_fresh_layer_estimate_never_exceeds_the_top_singular_value():
    """sigma = v^T W u <= sigma_max(W) holds for *unit* u and v, so W / sigma must have spectral norm
    >= 1 -- also before the first training call. ``sn_u`` is initialised N(0, 1) without
    normalisation (||u|| ~ sqrt(out_dim)) and inference mode uses it as is, so a freshly built layer
    divides by ~||u|| * sigma: here sigma() ~ 0.3 (also ~0.35 for a filter bank, ||u|| ~ 200).
    PyTorch's spectral_norm normalises u at creation."""
    keras.utils.set_random_seed(0)
    layer = L.SNDense(16)
    layer.build((None, 32))
    assert layer.sigma() >= 1.0 - 1e-5


def test_gradient_flows_through_sigma_analytic_2x2():
    """L(W) = ||W / sigma||_F^2 = ||W||_F^2 / sigma^2 with u, v held constant, d sigma/dW = v u^T:

        dL/dW = 2 W / sigma^2 - 2 ||W||_F^2 / sigma^3 * v u^T.

    W = diag(3, 1) with u = v = e1 (the top singular vectors; sigma = 3, ||W||_F^2 = 10):
        dL/dW = diag(6/9 - 20/27, 2/9) = diag(-2/27, 2/9).
    Without gradient through sigma (Keras' SpectralNormalization) it would be diag(2/3, 2/9)."""
    layer = L.SNDense(2, use_bias=False)
    layer.build((None, 2))
    layer.kernel.assign([[3.0, 0.0], [0.0, 1.0]])
    layer.sn_u.assign([[1.0, 0.0]])
    with tf.GradientTape() as tape:
        y = layer(tf.eye(2), training=False)  # = W / sigma
        loss = tf.reduce_sum(tf.square(y))
    np.testing.assert_allclose(y.numpy(), [[1.0, 0.0], [0.0, 1.0 / 3.0]], rtol=1e-6)
    assert float(loss) == pytest.approx(10.0 / 9.0, rel=1e-6)
    grad = tape.gradient(loss, layer.kernel).numpy()
    np.testing.assert_allclose(grad, [[-2.0 / 27.0, 0.0], [0.0, 2.0 / 9.0]], rtol=1e-5, atol=1e-7)


def test_gradient_through_sigma_matches_finite_differences():
    """At convergence u, v are the top singular vectors, and d sigma_max / dW = v u^T is the exact
    derivative of the top singular value, so the tape gradient of ||W / sigma||^2 must equal the
    central finite difference of f(W) = ||W||_F^2 / sigma_max(W)^2 (float64 SVD)."""
    w = np.array([[1.0, 0.5], [-0.3, 0.8]])

    def f(m):
        return np.sum(m ** 2) / np.linalg.svd(m, compute_uv=False)[0] ** 2

    h = 1e-5
    fd = np.zeros_like(w)
    for i in range(2):
        for j in range(2):
            e = np.zeros_like(w)
            e[i, j] = h
            fd[i, j] = (f(w + e) - f(w - e)) / (2 * h)
    layer = L.SNDense(2, use_bias=False)
    layer.build((None, 2))
    layer.kernel.assign(w.astype(np.float32))
    _, _, vt = np.linalg.svd(w)  # w_mat is [in, out]: u is its top right singular vector
    layer.sn_u.assign(vt[:1].astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(tf.eye(2), training=False)))
    assert float(loss) == pytest.approx(f(w), rel=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, layer.kernel).numpy(), fd, rtol=1e-3, atol=1e-5)


def _autodiff_reference(w, v, u, dtype, rows=None):
    """d/dW of sum(dy * cast(W[rows] / sigma)) by plain autodiff, sigma = v^T W u (the formulas
    ``divide_by_sigma`` / ``gather_divided_by_sigma`` write out by hand)."""
    w = tf.convert_to_tensor(w)
    with tf.GradientTape() as tape:
        tape.watch(w)
        sigma = tf.reduce_sum(tf.matmul(v, tf.reshape(w, (-1, w.shape[-1]))) * u)
        y = tf.cast((w if rows is None else tf.gather(w, rows)) / sigma, dtype)
    return y, tape


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_divide_by_sigma_gradient_equals_autodiff(dtype):
    """The hand-written gradient (two kernel-sized buffers) is autodiff's, for a conv kernel
    [3, 3, 4, 5] viewed as [36, 5], random u, v and upstream gradient, in float32 and with a
    bfloat16 output (the upstream gradient is then bfloat16 in both)."""
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(3, 3, 4, 5)), tf.float32)
    v = tf.constant(rng.normal(size=(1, 36)), tf.float32)
    u = tf.constant(rng.normal(size=(1, 5)), tf.float32)
    dy = tf.cast(tf.constant(rng.normal(size=(3, 3, 4, 5)), tf.float32), dtype)
    ref_y, tape = _autodiff_reference(w, v, u, dtype)
    with tf.GradientTape() as mine:
        mine.watch(w)
        y = L.divide_by_sigma(w, v, u, dtype)
    assert y.dtype == dtype
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), tf.cast(ref_y, tf.float32).numpy())
    np.testing.assert_allclose(mine.gradient(y, w, output_gradients=dy).numpy(),
                               tape.gradient(ref_y, w, output_gradients=dy).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_gather_divided_by_sigma_hand_computed():
    """Symbols as rows of W = diag(3, 1) (2 symbols, z_chunk 1, 2 outputs), u = v = e1 (sigma = 3).
    Selecting row 1 twice: y = [[0, 1/3], [0, 1/3]], L = sum(y^2) = 2/9, g = 2y,
    sum(g * W[rows]) = 4/3, so dL/dW = -(4/3)/9 e1 e1^T + (g/3 summed over the repeats on row 1)
    = [[-4/27, 0], [0, 4/9]]: the rank-one term reaches the unselected row 0."""
    w = tf.constant([[[3.0, 0.0]], [[0.0, 1.0]]])  # [S=2, z=1, F=2]
    v = u = tf.constant([[1.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(w)
        y = L.gather_divided_by_sigma(w, tf.constant([1, 1]), v, u, tf.float32)
        loss = tf.reduce_sum(tf.square(y))
    np.testing.assert_allclose(y.numpy(), [[[0.0, 1 / 3]], [[0.0, 1 / 3]]], rtol=1e-6)
    assert float(loss) == pytest.approx(2 / 9, rel=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), [[[-4 / 27, 0.0]], [[0.0, 4 / 9]]],
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gather_divided_by_sigma_gradient_equals_autodiff(dtype):
    """Random bank [6 symbols, 4, 10], rows [5, 0, 2, 0] (a repeat, as the padding id's row 0 can
    repeat symbol 1's): the one-buffer gradient is autodiff's (IndexedSlices made dense + the
    rank-one term)."""
    rng = np.random.default_rng(1)
    w = tf.constant(rng.normal(size=(6, 4, 10)), tf.float32)
    v = tf.constant(rng.normal(size=(1, 24)), tf.float32)
    u = tf.constant(rng.normal(size=(1, 10)), tf.float32)
    rows = tf.constant([5, 0, 2, 0])
    dy = tf.cast(tf.constant(rng.normal(size=(4, 4, 10)), tf.float32), dtype)
    ref_y, tape = _autodiff_reference(w, v, u, dtype, rows)
    with tf.GradientTape() as mine:
        mine.watch(w)
        y = L.gather_divided_by_sigma(w, rows, v, u, dtype)
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), tf.cast(ref_y, tf.float32).numpy())
    np.testing.assert_allclose(mine.gradient(y, w, output_gradients=dy).numpy(),
                               tf.convert_to_tensor(tape.gradient(ref_y, w, output_gradients=dy)).numpy(),
                               rtol=1e-5, atol=1e-6)


# -- filter bank --------------------------------------------------------------------------------
def test_filter_bank_layout_and_padding_ids():
    """ids [B, n] -> [B, fh, n*fw, C]; character j fills columns j*fw .. j*fw+fw-1 with
    reshape(z1 @ (W_id / sigma) + bias) (W_id: the symbol's [z_chunk, F] block, sigma of the
    stacked [symbols * z_chunk, F] matrix); id 0 gives zeros, bias included."""
    keras.utils.set_random_seed(0)
    fh, fw, ch, classes, zc = 2, 3, 2, 4, 5
    bank = L.FilterBank(classes, z_chunk=zc, height=fh, width=fw, channels=ch)
    ids = tf.constant([[1, 3, 0], [2, 2, 1]])
    z = tf.random.normal((2, zc))
    bank(ids, z, training=True)  # normalise u
    bank.bias.assign(tf.random.normal(bank.bias.shape))
    out = bank(ids, z, training=False).numpy()
    assert out.shape == (2, fh, 3 * fw, ch)
    w = bank.kernel.numpy().reshape((classes - 1) * zc, fh * fw * ch)
    u = bank.sn_u.numpy()
    v = u @ w.T
    v /= np.linalg.norm(v)
    sigma = (v @ w @ u.T).item()
    blocks = (w / sigma).reshape(classes - 1, zc, -1)
    for b in range(2):
        for j in range(3):
            c = int(ids[b, j])
            expected = (np.zeros((fh, fw, ch)) if c == 0 else
                        (z.numpy()[b] @ blocks[c - 1] + bank.bias.numpy()).reshape(fh, fw, ch))
            np.testing.assert_allclose(out[b, :, j * fw:(j + 1) * fw], expected, rtol=1e-5, atol=1e-6)
    assert np.all(out[0, :, 2 * fw:] == 0.0)


def test_width_mask():
    m = L.width_mask(tf.constant([2, 0, 3]), 3).numpy()
    assert m.shape == (3, 1, 3, 1)
    np.testing.assert_array_equal(m[:, 0, :, 0], [[1, 1, 0], [0, 0, 0], [1, 1, 1]])


def test_upsample_nearest():
    x = tf.reshape(tf.range(4.0), (1, 1, 4, 1))
    y = L.upsample_nearest(x, (2, 1)).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 1, 2, 3], [0, 1, 2, 3]])
    y = L.upsample_nearest(x, (1, 2)).numpy()[0, 0, :, 0]
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 2, 2, 3, 3])



def test_conv_after_upsample_hand_computed():
    """x = [1, 2] (one row), width upsampled 2x -> [1, 1, 2, 2]; a kernel with only its middle row
    (taps 1, 10, 100 over columns j-1, j, j+1), SAME zero padding: out = [0 + 10 + 100,
    1 + 10 + 200, 1 + 20 + 200, 2 + 20 + 0] = [110, 211, 221, 22], computed at x's width."""
    x = tf.reshape(tf.constant([1.0, 2.0]), (1, 1, 2, 1))
    k = np.zeros((3, 3, 1, 1), np.float32)
    k[1, :, 0, 0] = [1.0, 10.0, 100.0]
    y = L.conv_after_upsample(x, tf.constant(k), (1, 2)).numpy()[0, 0, :, 0]
    np.testing.assert_array_equal(y, [110.0, 211.0, 221.0, 22.0])


def _assert_same_values_and_gradients(fast, reference, x_shape, k_shape, seed):
    """fast(x, k) and reference(x, k): same values and gradients w.r.t. x and k (through a random
    projection of the output). Tolerance: the transformed kernels sum up to 4 taps first; float32
    rounding of sums of 9 x 6 products of N(0, 1) values (~1e-6 relative; outputs ~7 in size)."""
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal(x_shape), tf.float32)
    k = tf.constant(rng.standard_normal(k_shape), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, k])
        ref, got = reference(x, k), fast(x, k)
        proj = tf.constant(rng.standard_normal(ref.shape), tf.float32)
        ref_loss, got_loss = tf.reduce_sum(ref * proj), tf.reduce_sum(got * proj)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)
    for a, b in zip(tape.gradient(got_loss, [x, k]), tape.gradient(ref_loss, [x, k])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("factor", [(2, 2), (2, 1), (1, 2), (1, 1)])
@pytest.mark.parametrize("size", [1, 3])
def test_conv_after_upsample_equals_conv_of_upsampled_input(factor, size):
    _assert_same_values_and_gradients(
        lambda x, k: L.conv_after_upsample(x, k, factor),
        lambda x, k: tf.nn.conv2d(L.upsample_nearest(x, factor), k, 1, "SAME"),
        (2, 3, 5, 6), (size, size, 6, 4), seed=0)


def test_conv_then_avg_pool_hand_computed():
    """x = [1, 2, 3, 4] (one row), middle-row taps (1, 10, 100), SAME: conv = [0 + 10 + 200,
    1 + 20 + 300, 2 + 30 + 400, 3 + 40 + 0] = [210, 321, 432, 43] in both (equal) rows, so the
    2x2 pool is the mean of column pairs: [265.5, 237.5]."""
    x = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0] * 2), (1, 2, 4, 1))
    k = np.zeros((3, 3, 1, 1), np.float32)
    k[1, :, 0, 0] = [1.0, 10.0, 100.0]
    y = L.conv_then_avg_pool(x, tf.constant(k)).numpy()[0, 0, :, 0]
    np.testing.assert_array_equal(y, [265.5, 237.5])


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("shape", [(4, 6), (5, 7)])
def test_conv_then_avg_pool_equals_pooled_conv(size, shape):
    """Odd sizes too: the last row / column is dropped by both."""
    _assert_same_values_and_gradients(
        L.conv_then_avg_pool,
        lambda x, k: tf.nn.avg_pool2d(tf.nn.conv2d(x, k, 1, "SAME"), 2, 2, "VALID"),
        (2, *shape, 6), (size, size, 6, 4), seed=1)


# -- convolutions whose kernel gradient is one matrix product ---------------------------------
def test_conv2d_matmul_kernel_gradient_hand_computed(monkeypatch):
    """One row x = [1, 2, 3, 4], kernel [1, 1], VALID. Stride 1: y = [3, 5, 7]; with dy = [1, 10,
    100], dk = [1 + 20 + 300, 2 + 30 + 400] = [321, 432], dx = [1, 11, 110, 100]. Stride 2:
    y = [3, 7]; dy = [1, 10]: dk = [1 + 30, 2 + 40] = [31, 42], dx = [1, 1, 10, 10]."""
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", (1, 0))
    x = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0]), (1, 1, 4, 1))
    k = tf.ones((1, 2, 1, 1))
    for stride, dy, y_ref, dk_ref, dx_ref in [
            (1, [1.0, 10.0, 100.0], [3, 5, 7], [321, 432], [1, 11, 110, 100]),
            (2, [1.0, 10.0], [3, 7], [31, 42], [1, 1, 10, 10])]:
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            y = L.conv2d(x, k, stride, "VALID")
        dx, dk = tape.gradient(y, [x, k], output_gradients=tf.reshape(dy, y.shape))
        np.testing.assert_array_equal(y.numpy().ravel(), y_ref)
        np.testing.assert_array_equal(dk.numpy().ravel(), dk_ref)
        np.testing.assert_array_equal(dx.numpy().ravel(), dx_ref)


@pytest.mark.parametrize("k_shape,stride,padding", [
    ((3, 3, 6, 4), 1, "SAME"), ((2, 2, 6, 4), 1, "SAME"), ((2, 3, 6, 4), 1, "same"),
    ((4, 4, 6, 4), 2, "VALID"), ((1, 1, 6, 4), 1, "VALID")])
def test_conv2d_with_matmul_kernel_gradient_equals_tf_conv2d(monkeypatch, k_shape, stride, padding):
    """Even kernels with SAME padding too (TensorFlow pads the extra row / column after)."""
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", (1, 0))
    _assert_same_values_and_gradients(lambda x, k: L.conv2d(x, k, stride, padding),
                                      lambda x, k: tf.nn.conv2d(x, k, stride, padding.upper()),
                                      (2, 5, 7, 6), k_shape, seed=2)


def test_resize_and_pooled_convs_with_matmul_kernel_gradient(monkeypatch):
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", (1, 0))
    test_conv_after_upsample_equals_conv_of_upsampled_input((2, 2), 3)
    test_conv_after_upsample_equals_conv_of_upsampled_input((2, 1), 1)
    test_conv_then_avg_pool_equals_pooled_conv(3, (5, 7))
    test_conv_then_avg_pool_equals_pooled_conv(1, (4, 6))


def test_matmul_kernel_gradient_only_from_the_size_threshold(monkeypatch):
    """3 x 3 x 456 = 4104 taps x channels >= 4096: the convolution with the product gradient;
    3 x 3 x 455 = 4095 and strided SAME convolutions: tf.nn.conv2d and its library gradients."""
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", L.PRODUCT_KERNEL_GRAD_FROM)
    strides_used = []

    def spy(stride):
        strides_used.append(stride)
        return lambda x, k: tf.nn.conv2d(x, k, stride, "VALID")

    monkeypatch.setattr(L, "_valid_conv_matmul_filter_grad", spy)
    for cin, stride, padding in [(456, 1, "SAME"), (455, 1, "SAME"), (456, 2, "SAME"),
                                 (456, 2, "VALID")]:
        L.conv2d(tf.zeros((1, 4, 4, cin)), tf.zeros((3, 3, cin, 2)), stride, padding)
    assert strides_used == [1, 2]


def test_product_kernel_gradient_only_where_measured_faster(monkeypatch):
    """CPUs without AMX (avx512_bf16 or plain float32 ones): from 4096 taps x input channels;
    with AMX tiles also only from 1024 output channels (the paper D's down2/conv1, 3x3x512 ->
    1024, yes; down1/conv2, 4x4x512 -> 512, no); off with a GPU."""
    assert L.default_matmul_filter_grad_min(gpu=False, cpu_flags=["avx512_bf16"]) == (4096, 0)
    assert L.default_matmul_filter_grad_min(gpu=False, cpu_flags=[]) == (4096, 0)
    amx = L.default_matmul_filter_grad_min(gpu=False, cpu_flags=["amx_bf16", "avx512_bf16"])
    assert amx == (4096, 1024)
    assert L.default_matmul_filter_grad_min(gpu=True, cpu_flags=["avx512_bf16"]) == L.NEVER
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", amx)
    assert L.uses_product_kernel_grad((3, 3, 512, 1024))
    assert not L.uses_product_kernel_grad((4, 4, 512, 512))
    assert not L.uses_product_kernel_grad((3, 3, 455, 1024))


def test_down_block_weight_gradients_same_with_and_without_the_product(monkeypatch):
    """A 512-channel DownBlock (conv1 3x3x512, pooled conv2 4x4x512: both over the threshold)
    gives the same weight gradients (sigma's path included) as with the library's gradients."""
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", L.PRODUCT_KERNEL_GRAD_FROM)
    keras.utils.set_random_seed(0)
    block = L.DownBlock(512, downsample=True)
    x = tf.random.normal((2, 4, 6, 512))
    proj = tf.random.normal((2, 2, 3, 512))

    def grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(block(x, training=False) * proj)
        return tape.gradient(loss, block.trainable_weights)

    block(x)
    fast = grads()
    monkeypatch.setattr(L, "MATMUL_FILTER_GRAD_MIN", L.NEVER)
    for a, b, w in zip(fast, grads(), block.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=w.path)


# -- masked batch norm --------------------------------------------------------------------------
def _masked_input():
    """x [2, 2, 3, 2]; sample 0 has 2 valid columns, sample 1 one. Channel 1 = 10 x channel 0.
    Valid values of channel 0: rows (1, 3) and (2, 4) of sample 0, (5) and (6) of sample 1 ->
    {1, 2, 3, 4, 5, 6}: mean 3.5, biased variance 17.5 / 6. Padded columns hold 1000."""
    c0 = np.full((2, 2, 3), 1000.0, np.float32)
    c0[0, :, :2] = [[1.0, 3.0], [2.0, 4.0]]
    c0[1, :, :1] = [[5.0], [6.0]]
    x = np.stack([c0, 10.0 * c0], axis=-1)
    valid = L.width_mask(tf.constant([2, 1]), 3)
    return tf.constant(x), valid


def test_masked_batch_norm_training_statistics_ignore_padding():
    x, valid = _masked_input()
    bn = L.MaskedBatchNorm(conditional=False, momentum=0.9, epsilon=1e-4)
    y = bn(x, valid, training=True).numpy()
    mean = np.array([3.5, 35.0])
    var = np.array([17.5 / 6.0, 1750.0 / 6.0])
    expected = (x.numpy() - mean) / np.sqrt(var + 1e-4)
    m = valid.numpy().astype(bool)[..., 0]  # [2, 1, 3]
    m = np.broadcast_to(m[..., None], y.shape)
    np.testing.assert_allclose(y[m], expected[m], rtol=1e-5)
    # moving averages: 0.9 * init + 0.1 * batch statistic
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(bn.moving_var.numpy(), 0.9 * 1.0 + 0.1 * var, rtol=1e-6)
    # a plain (unmasked) mean would be dominated by the 1000s
    assert np.mean(x.numpy()[..., 0]) > 300


def test_masked_batch_norm_inference_uses_moving_statistics():
    x, valid = _masked_input()
    bn = L.MaskedBatchNorm(conditional=False, epsilon=1e-4)
    bn.build(x.shape)
    bn.moving_mean.assign([1.0, 2.0])
    bn.moving_var.assign([4.0, 9.0])
    bn.gamma.assign([2.0, 1.0])
    bn.beta.assign([0.5, -1.0])
    y = bn(x, valid, training=False).numpy()
    expected = (x.numpy() - [1.0, 2.0]) / np.sqrt(np.array([4.0, 9.0]) + 1e-4) * [2.0, 1.0] + [0.5, -1.0]
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    # no batch dependence in inference: sample 0 alone gives the same values
    alone = bn(x[:1], valid[:1], training=False).numpy()
    np.testing.assert_array_equal(alone[0], y[0])
    # and the moving statistics are not touched
    np.testing.assert_array_equal(bn.moving_mean.numpy(), [1.0, 2.0])


def test_conditional_batch_norm_gain_and_bias_from_z():
    """With one channel and a one-dimensional z, the spectral-normed 1x1 gain/bias kernels [[k]] are
    divided by sigma = |k| and become sign(k): gain(z) = sign(k_g) z, bias(z) = sign(k_b) z (zero
    biases). So y = x_hat * (1 + z) - z for k_g = 0.7, k_b = -2."""
    x = tf.constant(np.array([1.0, 3.0, 5.0, 7.0], np.float32).reshape(2, 1, 2, 1))
    valid = L.width_mask(tf.constant([2, 2]), 2)
    z = tf.constant([[0.5], [-0.25]])
    bn = L.MaskedBatchNorm(conditional=True, epsilon=1e-4)
    bn(x, valid, z, training=False)  # build
    bn.gain.kernel.assign([[0.7]])
    bn.bias.kernel.assign([[-2.0]])
    y = bn(x, valid, z, training=True).numpy()[:, 0, :, 0]
    x_hat = (np.array([[1.0, 3.0], [5.0, 7.0]]) - 4.0) / np.sqrt(5.0 + 1e-4)  # mean 4, var 5
    zz = np.array([[0.5], [-0.25]])
    np.testing.assert_allclose(y, x_hat * (1.0 + zz) - zz, rtol=1e-5, atol=1e-6)


def test_masked_batch_norm_gradient_hand_computed():
    """One channel, x = [1, 3 | 100] (third column padded), gain 1, bias 0, epsilon 0: mean 2,
    std 1, x_hat = [-1, 1, 98]. L = y_3 = (2 x3 - x1 - x2) / (x2 - x1) (the padded column is
    normalised with the valid columns' statistics), so dL/dx = [2 (x3 - x2), 2 (x1 - x3), 2 (x2 - x1)]
    / (x2 - x1)^2 = [48.5, -49.5, 1]; the formula: d = [0, 0, 1], S1 = 1, S2 = 98,
    dx_i = d_i - m_i (S1 + x_hat_i S2) / 2."""
    x = tf.constant([1.0, 3.0, 100.0], shape=(1, 1, 3, 1))
    valid = L.width_mask(tf.constant([2]), 3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, mean, var = L.masked_batch_norm(x, valid, tf.ones((1,)), tf.zeros((1,)), 0.0)
        loss = y[0, 0, 2, 0]
    np.testing.assert_allclose(y.numpy().ravel(), [-1.0, 1.0, 98.0], rtol=1e-6)
    assert (float(mean[0]), float(var[0])) == (2.0, 1.0)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy().ravel(), [48.5, -49.5, 1.0], rtol=1e-6)


def _masked_bn_autodiff(x, valid, gain, bias, epsilon):
    """The training-mode formula written plainly (autodiff keeps its float32 intermediates)."""
    xf = tf.cast(x, tf.float32)
    count = tf.reduce_sum(valid) * x.shape[1]
    mean = tf.reduce_sum(xf * valid, axis=(0, 1, 2)) / count
    var = tf.reduce_sum(tf.square(xf - mean) * valid, axis=(0, 1, 2)) / count
    if gain.shape.rank == 2:
        gain, bias = gain[:, None, None, :], bias[:, None, None, :]
    return tf.cast((xf - mean) * tf.math.rsqrt(var + epsilon) * gain + bias, x.dtype)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_masked_batch_norm_gradient_equals_autodiff(conditional, dtype):
    """Random x [3, 2, 5, 4] with widths (5, 2, 3), an upstream gradient that is non-zero on the
    padding too, gain/bias per channel or per sample: values and the gradients of x, gain and
    bias are autodiff's (float32: within its rounding; bfloat16: within one rounding of the input
    gradient, 2^-8)."""
    rng = np.random.default_rng(2)
    x = tf.cast(tf.constant(rng.normal(size=(3, 2, 5, 4)) * 3 + 1, tf.float32), dtype)
    valid = L.width_mask(tf.constant([5, 2, 3]), 5)
    shape = (3, 4) if conditional else (4,)
    gain = tf.constant(1 + 0.3 * rng.normal(size=shape), tf.float32)
    bias = tf.constant(rng.normal(size=shape), tf.float32)
    dy = tf.cast(tf.constant(rng.normal(size=(3, 2, 5, 4)), tf.float32), dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, gain, bias])
        y, _, _ = L.masked_batch_norm(x, valid, gain, bias, 1e-5)
        ref = _masked_bn_autodiff(x, valid, gain, bias, 1e-5)
    assert y.dtype == dtype
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), tf.cast(ref, tf.float32).numpy())
    tol = dict(rtol=2**-8, atol=2**-8) if dtype == "bfloat16" else dict(rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(tape.gradient(y, [x, gain, bias], output_gradients=dy),
                            tape.gradient(ref, [x, gain, bias], output_gradients=dy)):
        np.testing.assert_allclose(tf.cast(mine, tf.float32).numpy(),
                                   tf.cast(theirs, tf.float32).numpy(), **tol)


# -- residual blocks ----------------------------------------------------------------------------
def test_up_block_shapes_and_zero_padding():
    keras.utils.set_random_seed(0)
    block = L.UpBlock(6, upsample=(2, 2))
    x = tf.random.normal((2, 4, 8, 5)) * L.width_mask(tf.constant([8, 4]), 8)
    z = tf.random.normal((2, 3))
    y = block(x, L.width_mask(tf.constant([8, 4]), 8), L.width_mask(tf.constant([16, 8]), 16), z,
              training=True).numpy()
    assert y.shape == (2, 8, 16, 6)
    assert np.all(y[1, :, 8:] == 0.0)  # padding of the shorter sample stays zero
    assert np.abs(y[1, :, :8]).max() > 0.0



@pytest.mark.parametrize("factor", [(2, 2), (2, 1)])
def test_up_block_is_the_biggan_block_with_upsampling_first(factor):
    """UpBlock (conv1 and the shortcut at the input's resolution) equals the textbook order
    h = conv2(relu(cbn2(conv1(up(relu(cbn1(x))) * valid_out)))) * valid_out, out = (h +
    conv_sc(up(x))) * valid_out, built from the block's own layers (inference-mode norms)."""
    keras.utils.set_random_seed(0)
    block = L.UpBlock(6, upsample=factor)
    valid_in = L.width_mask(tf.constant([8, 4]), 8)
    valid_out = L.width_mask(tf.constant([8 * factor[1], 4 * factor[1]]), 8 * factor[1])
    x = tf.random.normal((2, 4, 8, 5)) * valid_in
    z = tf.random.normal((2, 3))
    got = block(x, valid_in, valid_out, z, training=False)

    def conv(layer, t):
        return tf.nn.conv2d(t, layer.normalized(layer.kernel, False), 1, "SAME") + layer.bias

    h = L.upsample_nearest(tf.nn.relu(block.cbn1(x, valid_in, z)), factor) * valid_out
    h = tf.nn.relu(block.cbn2(conv(block.conv1, h), valid_out, z)) * valid_out
    ref = (conv(block.conv2, h) + conv(block.conv_sc, L.upsample_nearest(x, factor))) * valid_out
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)

def test_down_blocks_shapes_and_shortcuts():
    keras.utils.set_random_seed(0)
    x = tf.random.normal((2, 8, 12, 3))
    down = L.DownBlock(5, downsample=True, preactivation=False)
    assert down(x, training=True).shape == (2, 4, 6, 5)
    assert down.conv_sc is not None
    same = L.DownBlock(3, downsample=False)
    assert same(x, training=True).shape == (2, 8, 12, 3)
    assert same.conv_sc is None  # identity shortcut: same channels, no pooling


@pytest.mark.parametrize("preactivation", [True, False])
def test_down_block_is_the_biggan_block(preactivation):
    """DownBlock (pooled conv2 as one stride-2 conv, shortcut pooled first) equals BigGAN's
    order h = pool(conv2(relu(conv1(act(x))))), sc = pool(conv_sc(x)), from its own layers."""
    keras.utils.set_random_seed(0)
    block = L.DownBlock(5, downsample=True, preactivation=preactivation)
    x = tf.random.normal((2, 8, 12, 3))
    got = block(x, training=False)

    def conv(layer, t):
        return tf.nn.conv2d(t, layer.normalized(layer.kernel, False), 1, "SAME") + layer.bias

    def pool(t):
        return tf.nn.avg_pool2d(t, 2, 2, "VALID")

    h = conv(block.conv1, tf.nn.relu(x) if preactivation else x)
    ref = pool(conv(block.conv2, tf.nn.relu(h))) + pool(conv(block.conv_sc, x))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_resize_and_pooled_convolutions_need_stride_one_and_same_padding():
    with pytest.raises(ValueError, match="strides=1"):
        L.SNConv2D(4, 3, strides=2, upsample=(2, 2))
    with pytest.raises(ValueError, match="strides=1"):
        L.SNConv2D(4, 3, padding="valid", avg_pool=True)
    with pytest.raises(ValueError, match="together"):
        L.SNConv2D(4, 3, upsample=(2, 2), avg_pool=True)
