"""Kernel gradient of D's convolutions: TensorFlow's Conv2DBackpropFilter vs patches^T @ dy.

    python bench/conv_filter_grad.py
    python bench/conv_filter_grad.py --precisions=bfloat16 --batch=16 --width=160 --reps=7

The paper D's convolutions as training runs them (``models.layers``: 3x3 SAME, and conv + 2x2
average pooling as one 4x4 stride-2 convolution of the padded input) on batch x 32 x width images
(D's step sees 8 real + 8 fake 8-letter words: batch 16, 128 px plus D's 32 white columns).
For each, the gradient w.r.t. the kernel in one ``tf.function``, by ``tf.nn.conv2d``'s gradient
(the library) and by ``layers.conv2d`` with ``MATMUL_FILTER_GRAD_MIN`` = (0, 0) (one product); median
milliseconds of ``--reps`` calls and GFLOP/s (2 x multiply-adds), one JSON line per layer and
precision, and whether ``layers.conv2d`` picks the product for that layer on this machine. The
thresholds ``PRODUCT_KERNEL_GRAD_FROM`` (no AMX) and ``PRODUCT_KERNEL_GRAD_FROM_AMX`` come from these
figures (bench/RESULTS.md); run this on a GPU before turning the product on there
(``default_matmul_filter_grad_min``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def d_convolutions(width: int):
    """(name, input H, input W, cin, cout, kernel, stride, padding) of the paper D's convolutions
    with more than one input channel (block i's conv1, then its pooled conv2)."""
    chans = (64, 512, 1024, 1024)
    out, h, w, cin = [], 32, width, 1
    for i, c in enumerate(chans):
        out.append((f"down{i}/conv1", h, w, cin, c, 3, 1, "SAME"))
        if i < 3:  # pooled: 4x4 stride 2 on the input padded by one
            out.append((f"down{i}/conv2 (pooled)", h + 2, w + 2, c, c, 4, 2, "VALID"))
            h, w = h // 2, w // 2
        else:
            out.append((f"down{i}/conv2", h, w, c, c, 3, 1, "SAME"))
        cin = c
    return [s for s in out if s[3] > 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", default="bfloat16,float32")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()

    import tensorflow as tf

    from scrabblegan_tf.models import layers as L

    def median_ms(fn):
        fn()
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1e3 * float(np.median(times))

    def kernel_grad(conv, x, k, dy):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch(k)
                y = conv(x, k)
            return tape.gradient(y, k, output_gradients=dy)
        return run

    default_min = L.matmul_filter_grad_min()
    for precision in a.precisions.split(","):
        dtype = tf.as_dtype(precision)
        for name, h, w, cin, cout, ks, stride, padding in d_convolutions(a.width):
            x = tf.cast(tf.random.normal((a.batch, h, w, cin)), dtype)
            k = tf.cast(tf.random.normal((ks, ks, cin, cout), stddev=0.02), dtype)
            y = tf.nn.conv2d(x, k, stride, padding)
            dy = tf.cast(tf.random.normal(y.shape), dtype)
            macs = int(np.prod(y.shape)) * ks * ks * cin
            library = kernel_grad(lambda x, k: tf.nn.conv2d(x, k, stride, padding), x, k, dy)
            L.MATMUL_FILTER_GRAD_MIN = (0, 0)
            product = kernel_grad(lambda x, k: L.conv2d(x, k, stride, padding), x, k, dy)
            product.get_concrete_function()  # traced with the threshold at 0
            L.MATMUL_FILTER_GRAD_MIN = default_min
            ms = {"library": median_ms(library), "product": median_ms(product)}
            print(json.dumps({
                "bench": "conv_filter_grad", "precision": precision, "layer": name,
                "input": [a.batch, h, w, cin], "kernel": [ks, ks, cin, cout], "stride": stride,
                "gmac": round(macs / 1e9, 2),
                **{f"{k}_ms": round(v, 1) for k, v in ms.items()},
                **{f"{k}_gflops": round(2 * macs / v / 1e6) for k, v in ms.items()},
                "product_by_default": L.uses_product_kernel_grad((ks, ks, cin, cout))}),
                  flush=True)


if __name__ == "__main__":
    main()
