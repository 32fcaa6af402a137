"""Training and generation throughput on this machine, one JSON line per measurement.

    python bench/train_throughput.py                      # paper config, batch 8 and 32
    python bench/train_throughput.py --config=small --batches=8 --iterations=3

"images_per_s" counts real images consumed by full training iterations (g_every D+R mini-batches
and one G step each), excluding the first (tracing) iteration. Words are 8 characters long (real
images 32 x 128), like a typical IAM word after per-character rescaling. "words_per_s" is G-only
inference at batch 64 for 8-letter words. "peak_rss_mb" is the process's peak resident memory.
"images_per_cpu_s" divides by the process's CPU time instead of wall time: on a shared machine it
is the fairer figure for comparing two programs (both use the same 2 cores when alone).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--batches", default="8,32", help="comma-separated per-step batch sizes")
    p.add_argument("--iterations", type=int, default=3, help="timed iterations per batch size")
    p.add_argument("--word_len", type=int, default=8)
    p.add_argument("--gen_batch", type=int, default=64)
    p.add_argument("--jit_compile", action="store_true")
    args = p.parse_args()

    import keras
    import tensorflow as tf

    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.models.gan import ScrabbleGAN
    from scrabblegan_tf.models.factory import make_discriminator, make_generator, make_recognizer
    from scrabblegan_tf.training.gan_training import make_optimizers

    cfg = get_config(args.config)
    alphabet = Alphabet.preset("english")
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), args.word_len)) for _ in range(256)]
    word_ids, word_lengths = alphabet.encode_batch(words)
    keras.utils.set_random_seed(0)
    gan = ScrabbleGAN(generator=make_generator(cfg.model, alphabet.num_classes),
                      discriminator=make_discriminator(cfg.model),
                      recognizer=make_recognizer(cfg.model, alphabet.num_classes),
                      word_ids=word_ids, word_lengths=word_lengths, g_every=cfg.optim.g_every)
    gan.compile(*make_optimizers(cfg))
    gan.build_all()
    params = {k: getattr(gan, k).count_params() for k in ("generator", "discriminator", "recognizer")}
    width = 16 * args.word_len
    step = tf.function(gan.train_step, jit_compile=args.jit_compile)
    for batch in [int(b) for b in args.batches.split(",")]:
        n = batch * cfg.optim.g_every
        data = {"image": tf.random.uniform((n, 32, width, 1), -1, 1),
                "image_width": tf.fill((n,), width),
                "label": tf.constant(word_ids[rng.integers(0, 256, n)]),
                "label_length": tf.fill((n,), args.word_len)}
        t = time.perf_counter()
        step(data)  # trace + first run
        trace_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        for _ in range(args.iterations):
            out = step(data)
        float(out["d_loss"])
        dt = time.perf_counter() - t
        cpu = time.process_time() - c
        print(json.dumps({"config": args.config, "batch": batch, "g_every": cfg.optim.g_every,
                          "images_per_s": round(n * args.iterations / dt, 3),
                          "s_per_iteration": round(dt / args.iterations, 3),
                          # CPU seconds of this process: robust to other processes sharing the cores
                          "images_per_cpu_s": round(n * args.iterations / cpu, 3),
                          "first_call_s": round(trace_s, 1), "jit_compile": args.jit_compile,
                          "params": params, "peak_rss_mb": round(peak_rss_mb())}), flush=True)

    gen = tf.function(lambda ids, lens, z: gan.generator((ids, lens, z), training=False))
    ids = tf.constant(word_ids[: args.gen_batch])
    lens = tf.constant(word_lengths[: args.gen_batch])
    z = tf.random.normal((args.gen_batch, cfg.model.z_dim))
    gen(ids, lens, z)
    t = time.perf_counter()
    reps = 5
    for _ in range(reps):
        out = gen(ids, lens, z)
    out.numpy()
    dt = time.perf_counter() - t
    print(json.dumps({"config": args.config, "generate_batch": args.gen_batch,
                      "word_len": args.word_len,
                      "words_per_s": round(args.gen_batch * reps / dt, 1),
                      "peak_rss_mb": round(peak_rss_mb())}), flush=True)


if __name__ == "__main__":
    main()
