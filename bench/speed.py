"""float32 vs bfloat16 on this machine, one JSON line per measurement, in one process.

    python bench/speed.py                       # everything (about 15 minutes on 2 cores)
    python bench/speed.py --only=train --configs=cpu --batches=8
    python bench/speed.py --only=generate,latency

- ``train``: real images per second of full training iterations (``g_every`` D+R mini-batches and
  the G update(s)), networks built by ``train.make_gan`` exactly as training builds them (same
  precision policy), one ``tf.function`` step like ``train``'s, 8-letter words (real images
  32 x 8 char_width), for each config x batch x precision; the first (tracing) call excluded.
  ``images_per_cpu_s`` divides by the process's CPU time (robust on a shared machine).
- ``generate``: G-only inference words/s at batch 64, 8-letter words (``generation.load_generator``'s
  precision switch), float32 vs bfloat16.
- ``latency``: one word ("hello") through an exported SavedModel's ``serving_default`` (PNG out),
  median and p99 over ``--latency_calls`` calls, float32 vs bfloat16 export.
- every line carries ``peak_rss_mb`` (the process's peak so far) and the CPU flags that decide
  ``mixed_precision=auto`` (``train.cpu_bf16_flags``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time

import numpy as np

PRECISIONS = {"float32": "", "bfloat16": "mixed_bfloat16"}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def emit(record: dict) -> None:
    from scrabblegan_tf.training.distribution import cpu_bf16_flags

    record = {**record, "peak_rss_mb": peak_rss_mb(), "cpu_bf16_flags": cpu_bf16_flags()}
    print(json.dumps(record), flush=True)


def words(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), length)) for _ in range(n)]


def bench_train(config: str, batch: int, precision: str, iterations: int, word_len: int) -> dict:
    import tensorflow as tf

    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.training.gan_training import make_gan

    cfg = get_config(config)
    cfg.data.batch_size = batch
    alphabet = Alphabet.preset("english")
    lexicon = words(256, word_len)
    ids, lengths = alphabet.encode_batch(lexicon)
    gan = make_gan(cfg, alphabet, ids, lengths, policy=PRECISIONS[precision])
    n = batch * cfg.optim.g_every
    width = cfg.model.char_width * word_len
    rng = np.random.default_rng(1)
    data = {"image": tf.random.uniform((n, cfg.model.image_height, width, 1), -1, 1),
            "image_width": tf.fill((n,), width),
            "label": tf.constant(ids[rng.integers(0, 256, n)]),
            "label_length": tf.fill((n,), word_len)}
    step = tf.function(gan.train_step, jit_compile=False)
    t = time.perf_counter()
    float(step(data)["d_loss"])
    first = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        out = step(data)
    float(out["d_loss"])
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    return {"bench": "train", "config": config, "batch": batch, "precision": precision,
            "g_every": cfg.optim.g_every, "char_width": cfg.model.char_width,
            "images_per_s": round(n * iterations / dt, 3),
            "images_per_cpu_s": round(n * iterations / cpu, 3),
            "s_per_iteration": round(dt / iterations, 4), "first_call_s": round(first, 1),
            "iterations": iterations,
            "params": {k: getattr(gan, k).count_params()
                       for k in ("generator", "discriminator", "recognizer")}}


def _workdir(config: str, tmp: str) -> str:
    """A workdir with a freshly initialised G of ``config`` (speed does not depend on training)."""
    import tensorflow as tf

    from scrabblegan_tf.core import run_folder
    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.models.factory import generator_for

    cfg = get_config(config)
    alphabet = Alphabet.preset("english")
    gen = generator_for(cfg.model, alphabet)
    gen((np.ones((1, 2), np.int32), np.array([2], np.int32), np.zeros((1, cfg.model.z_dim), np.float32)))
    path = os.path.join(tmp, config)
    os.makedirs(path, exist_ok=True)
    run_folder.write_settings(path, cfg.to_json(), alphabet.to_json())
    run_folder.Checkpoints(tf.train.Checkpoint(generator=gen), path, keep=1).save(1)
    return path


def bench_generate(workdir: str, config: str, precision: str, batch: int, word_len: int,
                   reps: int) -> dict:
    import tensorflow as tf

    from scrabblegan_tf.inference.generation import load_generator, style_vectors

    gen, cfg, alphabet, _ = load_generator(workdir, precision=precision)
    ids, lengths = alphabet.encode_batch(words(batch, word_len, seed=2))
    z = style_vectors(np.arange(batch), cfg.model.z_dim)
    fn = tf.function(lambda i, l, zz: gen((i, l, zz), training=False), jit_compile=False)
    fn(ids, lengths, z).numpy()
    t = time.perf_counter()
    for _ in range(reps):
        out = fn(ids, lengths, z)
    out.numpy()
    dt = time.perf_counter() - t
    return {"bench": "generate", "config": config, "precision": precision, "batch": batch,
            "word_len": word_len, "words_per_s": round(batch * reps / dt, 1)}


def bench_latency(workdir: str, config: str, precision: str, calls: int, tmp: str) -> dict:
    import tensorflow as tf

    from scrabblegan_tf.serving import export_lib

    path, _ = export_lib.export_from_workdir(workdir, os.path.join(tmp, f"export_{config}_{precision}"),
                                             version=1, precision=precision)
    fn = tf.saved_model.load(path).signatures["serving_default"]
    args = dict(words=tf.constant(["hello"]), seeds=tf.constant([7], tf.int64))
    for _ in range(5):
        fn(**args)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        out = fn(**args)
        out["png_bytes"].numpy()
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {"bench": "latency", "config": config, "precision": precision, "text": "hello",
            "calls": calls, "median_ms": round(float(np.median(ms)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="train,generate,latency")
    p.add_argument("--configs", default="paper,cpu")
    p.add_argument("--batches", default="8,32")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--iterations", type=int, default=3, help="timed training iterations")
    p.add_argument("--word_len", type=int, default=8)
    p.add_argument("--gen_batch", type=int, default=64)
    p.add_argument("--gen_reps", type=int, default=5)
    p.add_argument("--latency_calls", type=int, default=200)
    p.add_argument("--inter_op_threads", type=int, default=0,
                   help="run.inter_op_threads (0: TensorFlow's default)")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scrabblegan_tf.core import memory

    only = set(a.only.split(","))
    # With training: the heap settings of the training commands (cli.run(trains=True)), before
    # TensorFlow starts; generation and latency lines of the same process run under them too.
    heap = memory.return_freed_buffers() if "train" in only else False
    import tensorflow as tf

    from scrabblegan_tf.training.distribution import configure_inter_op_threads

    configure_inter_op_threads(a.inter_op_threads)  # as train() does, before any op
    configs, precisions = a.configs.split(","), a.precisions.split(",")
    emit({"bench": "machine", "python": platform.python_version(), "tensorflow": tf.__version__,
          "cpus": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU")),
          "heap_returns_freed_buffers": heap,
          "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()})
    if "train" in only:
        for config in configs:
            for batch in (int(b) for b in a.batches.split(",")):
                for precision in precisions:
                    emit(bench_train(config, batch, precision, a.iterations, a.word_len))
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            if not only & {"generate", "latency"}:
                break
            work = _workdir(config, tmp)
            for precision in precisions:
                if "generate" in only:
                    emit(bench_generate(work, config, precision, a.gen_batch, a.word_len, a.gen_reps))
                if "latency" in only:
                    emit(bench_latency(work, config, precision, a.latency_calls, tmp))


if __name__ == "__main__":
    main()
