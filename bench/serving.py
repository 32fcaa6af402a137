"""Speed of the exported generator (SavedModel ``serving_default``, in-process, CPU) next to the Keras
generator, one JSON line per measurement.

    python bench/serving.py                        # small and paper configs
    python bench/serving.py --configs=small --latency_iters=300

Weights are random (speed does not depend on training). Three ways to get the same words:

- ``export``: the exported ``serving_default`` loaded with ``tf.saved_model.load``: UTF-8 words and
  seeds in; text checks, ids, styles, G, PNG encoding and [0, 1] images in one graph.
- ``keras_render``: what ``scrabblegan_tf.generate`` does: ``Alphabet.encode_batch`` in Python,
  ``style_vectors``, G called eagerly (``training=False``), 8-bit conversion and PIL PNG encoding per
  word. Same outputs as ``export``.
- ``keras_function``: G alone inside ``tf.function`` on pre-encoded ids and z, images only: the
  lower bound for any Keras path (no text handling, no styles, no PNGs).

Latency: batch 1, one 8-letter word ("Scrabble"), p50/p99 over ``--latency_iters`` calls after
``--warmup`` calls; the three paths' calls are interleaved, so that other load on shared CPUs
affects them alike. Throughput: words/s at batch 64 (realistic words of 1-11 letters, mean 5.5).
Ratio lines give keras time / export time (> 1: the export is faster).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time

import numpy as np

THROUGHPUT_WORDS = ("Scrabble", "hello", "handwriting", "the", "quick", "brown", "fox", "a")


def interleaved_timings(fns: dict, iters: int, warmup: int) -> dict[str, np.ndarray]:
    """Seconds per call of each function, calls interleaved (a, b, c, a, b, c, ...) so that a
    change in machine load (shared CPUs) affects every path alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {k: np.empty(iters) for k in fns}
    for i in range(iters):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[k][i] = time.perf_counter() - t
    return out


def bench_config(name: str, args) -> list[dict]:
    import keras
    import tensorflow as tf
    from PIL import Image

    from scrabblegan_tf.serving import export_lib
    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.inference.generation import render, style_vectors
    from scrabblegan_tf.models.factory import make_generator

    cfg = get_config(name)
    alphabet = Alphabet.preset("english")
    keras.utils.set_random_seed(0)
    gen = make_generator(cfg.model, alphabet.num_classes)
    gen((np.ones((1, 1), np.int32), np.ones((1,), np.int32), np.zeros((1, cfg.model.z_dim), np.float32)))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = export_lib.export_version(gen, alphabet, tmp, version=1)
        export_s = time.perf_counter() - t
        t = time.perf_counter()
        loaded = tf.saved_model.load(path)
        load_s = time.perf_counter() - t
    serve = loaded.signatures["serving_default"]
    g_fn = tf.function(lambda ids, lengths, z: gen((ids, lengths, z), training=False))

    def export_call(words, seeds):
        out = serve(words=tf.constant(words), seeds=tf.constant(seeds, tf.int64))
        return out["png_bytes"].numpy(), out["images"].numpy()

    def keras_render_call(words, seeds):
        pngs = []
        for image in render(gen, alphabet, words, seeds=seeds):
            buf = io.BytesIO()
            Image.fromarray(image, mode="L").save(buf, format="PNG")
            pngs.append(buf.getvalue())
        return pngs

    rows = []
    base = {"bench": "serving", "config": name, "device": "cpu",
            "g_params": int(gen.count_params()), "threads": os.cpu_count()}
    rows.append({**base, "export_s": round(export_s, 1), "load_s": round(load_s, 1)})
    print(json.dumps(rows[-1]), flush=True)
    for label, words in [("latency", ["Scrabble"]),
                         ("throughput", [THROUGHPUT_WORDS[i % 8] for i in range(args.batch)])]:
        seeds = list(range(len(words)))
        ids, lengths = alphabet.encode_batch(words)
        z = style_vectors(np.array(seeds), cfg.model.z_dim)
        iters = args.latency_iters if label == "latency" else args.throughput_iters
        if name == "paper":
            iters = max(5, iters // args.paper_divisor)
        paths = {
            "export": lambda: export_call(words, seeds),
            "keras_render": lambda: keras_render_call(words, seeds),
            "keras_function": lambda: g_fn(ids, lengths, z).numpy(),
        }
        results = interleaved_timings(paths, iters, args.warmup)
        for path_name, t in results.items():
            row = {**base, "path": path_name, "batch": len(words), "iters": iters,
                   "p50_ms": round(1e3 * float(np.percentile(t, 50)), 2),
                   "p99_ms": round(1e3 * float(np.percentile(t, 99)), 2)}
            if label == "throughput":
                row["words_per_s"] = round(len(words) / float(np.mean(t)), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
        metric = "p50" if label == "latency" else "mean"
        stat = (lambda t: np.percentile(t, 50)) if label == "latency" else np.mean
        for other in ("keras_render", "keras_function"):
            ratio = {**base, "ratio": f"{other}_over_export", "batch": len(words),
                     "metric": f"{label}_{metric}",
                     "value": round(float(stat(results[other]) / stat(results["export"])), 2)}
            if label == "latency":
                ratio["p99_value"] = round(float(np.percentile(results[other], 99)
                                                 / np.percentile(results["export"], 99)), 2)
            rows.append(ratio)
            print(json.dumps(ratio), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="small,paper", help="comma-separated presets")
    p.add_argument("--batch", type=int, default=64, help="throughput batch size")
    p.add_argument("--latency_iters", type=int, default=200)
    p.add_argument("--throughput_iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--paper_divisor", type=int, default=4, help="fewer iterations for the paper G")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in args.configs.split(","):
        bench_config(name.strip(), args)


if __name__ == "__main__":
    main()
