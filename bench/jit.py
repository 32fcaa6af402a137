"""XLA (``jit_compile=True``) vs TensorFlow's graph executor for the parts without CTC.

    python bench/jit.py --config=cpu --precision=bfloat16
    python bench/jit.py --config=paper --precision=float32 --d_reps=5 --g_reps=3

CTC has no XLA CPU kernel, so only D's forward + backward (batch 16, 8-letter words; the D update
has no CTC) and G's forward (generation, batch 64) can be compiled. Networks come from
``models.factory`` under the precision's Keras policy, as training and generation build them.
Each variant runs twice, interleaved (plain, XLA, plain, XLA), after its first (tracing/compiling)
call; one JSON line each with wall and CPU milliseconds per call (CPU time is the fairer figure
on a shared machine). Results: bench/RESULTS.md ("XLA").
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu")
    p.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--d_reps", type=int, default=40)
    p.add_argument("--g_reps", type=int, default=30)
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.models.factory import generator_for, make_discriminator

    cfg = get_config(a.config)
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if a.precision == "bfloat16" else "float32")
    disc = make_discriminator(cfg.model)
    gen = generator_for(cfg.model, Alphabet.preset("english"))
    n = 8
    width = cfg.model.char_width * n
    images = tf.random.uniform((16, 32, width, 1), -1, 1)
    widths = tf.fill((16,), width)
    ids = tf.constant(np.random.default_rng(0).integers(1, 27, (64, n)), tf.int32)
    lengths = tf.fill((64,), n)
    z = tf.random.normal((64, cfg.model.z_dim))
    disc((images, widths))
    gen((ids, lengths, z))

    def d_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.cast(disc((images, widths), training=True), tf.float32))
        return tape.gradient(loss, disc.trainable_variables)

    def g_forward():
        return gen((ids, lengths, z), training=False)

    for what, fn, reps in (("D forward+backward, batch 16", d_step, a.d_reps),
                           ("G forward, batch 64", g_forward, a.g_reps)):
        for jit in (False, True, False, True):
            f = tf.function(fn, jit_compile=jit)
            t = time.perf_counter()
            tf.nest.map_structure(lambda x: x.numpy(), f())
            first = time.perf_counter() - t
            t, c = time.perf_counter(), time.process_time()
            for _ in range(reps):
                out = f()
            tf.nest.map_structure(lambda x: x.numpy(), out)
            print(json.dumps({"config": a.config, "precision": a.precision, "what": what,
                              "jit_compile": jit,
                              "ms": round((time.perf_counter() - t) / reps * 1e3, 1),
                              "cpu_ms": round((time.process_time() - c) / reps * 1e3, 1),
                              "first_call_s": round(first, 1)}), flush=True)


if __name__ == "__main__":
    main()
