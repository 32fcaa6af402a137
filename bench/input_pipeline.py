"""Input pipeline throughput: images per second delivered by ``data.labelled_pipeline``, one JSON line.

    python bench/input_pipeline.py                                   # handwriting_fonts, h32 config
    python bench/input_pipeline.py --dataset=dhsd --manual_dir=../shared/data/dhsd
    python bench/input_pipeline.py --batch_size=32 --batches=300 --data_dir=/tmp/tfds

The dataset is built on first use (``builders.ensure_prepared``), outside the timing. The pipeline
is the GAN's (per-character width, bucketing, shuffling, repeat); the first ``--warmup`` batches
(filling the shuffle buffer, tracing) are not timed. ``images_per_s`` counts images of the timed
batches; ``mean_width`` is the mean padded batch width in pixels. Training consumes about 5-50
images/s on a CPU, so the pipeline should deliver far more.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="handwriting_fonts")
    p.add_argument("--config", default=None, help="builder config (default: the h32 variant)")
    p.add_argument("--split", default="train")
    p.add_argument("--data_dir", default=None, help="TFDS data dir (default: TFDS' own)")
    p.add_argument("--manual_dir", default=None)
    p.add_argument("--alphabet", default=None, help="alphabet preset (default: the dataset's)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--batches", type=int, default=200, help="timed batches")
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from scrabblegan_tf.data import builders, pipeline as data
    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import DATASET_ALPHABETS, DataConfig, ModelConfig

    dcfg, mcfg = DataConfig(), ModelConfig()
    alphabet = Alphabet.preset(args.alphabet or DATASET_ALPHABETS.get(args.dataset, "english"))
    builder = builders.get_builder(args.dataset, data_dir=args.data_dir, config=args.config,
                                   manual_dir=args.manual_dir)
    builders.ensure_prepared(builder, manual_dir=args.manual_dir,
                             log=lambda *a: print(*a, file=__import__("sys").stderr))
    ds = builder.as_dataset(split=args.split, shuffle_files=True)
    pipeline = data.labelled_pipeline(
        ds, alphabet=alphabet, batch_size=args.batch_size, char_width=mcfg.char_width,
        height=mcfg.image_height, max_label_len=dcfg.max_label_len, shuffle_buffer=dcfg.shuffle_buffer,
        seed=0, bucket_boundaries=dcfg.bucket_boundaries)
    it = iter(pipeline)
    for _ in range(args.warmup):
        next(it)
    images = 0
    widths = []
    start = time.perf_counter()
    for _ in range(args.batches):
        batch = next(it)
        images += int(batch["image"].shape[0])
        widths.append(int(batch["image"].shape[2]))
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "bench": "input_pipeline",
        "dataset": args.dataset,
        "config": builder.builder_config.name if builder.builder_config else None,
        "split": args.split,
        "batch_size": args.batch_size,
        "batches": args.batches,
        "images_per_s": round(images / elapsed, 1),
        "batches_per_s": round(args.batches / elapsed, 2),
        "mean_width": round(float(np.mean(widths)), 1),
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
