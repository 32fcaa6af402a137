"""Where a training iteration's memory goes: TensorFlow's CPU allocator peak of each update alone.

    python bench/memory_substeps.py                       # paper config, batch 8, 17-letter words
    python bench/memory_substeps.py --config=cpu --letters=10 --inter_op_threads=1

Networks from ``train.make_gan`` (same precision choice as training, ``--mixed_precision``), each of
the three updates (``ScrabbleGAN.d_step``, ``r_step``, ``g_step``) traced alone as a
``tf.function``, run twice (the first call builds oneDNN primitives), then ``--repeats`` times
with the allocator's statistics reset before each call. Prints one JSON line per update: the
allocator's peak above what is held between calls (weights, Adam slots, constants: ``held_mib``).
Words are ``--letters`` long, real and fake images ``16 x letters`` px wide. The widest words of the
default lexicon (19 letters at most) set a long run's peak: 17 letters is the widest batch seen in
40 iterations of the paper config (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--letters", type=int, default=17)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--mixed_precision", default="auto")
    p.add_argument("--inter_op_threads", type=int, default=0)
    p.add_argument("--only", default="d,r,g", help="updates to measure, comma-separated")
    a = p.parse_args()
    unknown = set(a.only.split(",")) - {"d", "r", "g"}
    if unknown:
        p.error(f"--only: unknown update(s) {sorted(unknown)}; choose from d, r, g")

    from scrabblegan_tf.training import distribution

    if a.inter_op_threads:
        distribution.configure_inter_op_threads(a.inter_op_threads)
    import tensorflow as tf

    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.training.gan_training import make_gan

    cfg = get_config(a.config)
    policy, _ = distribution.resolve_mixed_precision(a.mixed_precision)
    alphabet = Alphabet.preset("english")
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), a.letters))
             for _ in range(a.batch)]
    ids, lengths = alphabet.encode_batch(texts)
    gan = make_gan(cfg, alphabet, ids, lengths, policy=policy)
    width = cfg.model.char_width * a.letters
    real = tf.random.uniform((a.batch, cfg.model.image_height, width, 1), -1, 1)
    widths = tf.fill((a.batch,), width)
    ids, lengths = tf.constant(ids), tf.constant(lengths)
    z = tf.random.normal((a.batch, cfg.model.z_dim))
    updates = {
        "d": (gan.d_step, (real, widths, ids, lengths, z)),
        "r": (gan.r_step, (real, widths, ids, lengths)),
        "g": (gan.g_step, (ids, lengths, z)),
    }
    for name in a.only.split(","):
        fn, args = updates[name]
        step = tf.function(fn, jit_compile=False)
        for _ in range(2):
            tf.nest.map_structure(lambda t: t.numpy(), step(*args))
        peaks = []
        for _ in range(a.repeats):
            tf.config.experimental.reset_memory_stats("CPU:0")
            held = tf.config.experimental.get_memory_info("CPU:0")["current"]
            tf.nest.map_structure(lambda t: t.numpy(), step(*args))
            peaks.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - held)
        print(json.dumps({"update": name, "config": a.config, "batch": a.batch,
                          "letters": a.letters, "policy": policy or "float32",
                          "inter_op_threads": a.inter_op_threads,
                          "held_mib": round(held / 2**20),
                          "peak_above_held_mib": [round(x / 2**20) for x in peaks],
                          "process_peak_rss_mib": round(
                              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}),
              flush=True)


if __name__ == "__main__":
    main()
