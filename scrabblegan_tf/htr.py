"""CLI of the evaluation HTR: ``python -m scrabblegan_tf.htr train|evaluate|quality [--flags]``.

    train     train (or resume) an HTR in --workdir on --dataset (+ --synthetic_dir by --synthetic_ratio)
    evaluate  WER / CER / NED of the workdir's latest checkpoint on --split, printed as JSON
              (and saved as <workdir>/eval_<split>.json)
    quality   quality of a generator (--gan_workdir) measured with this HTR: legibility of held-out
              words, HTR Fréchet distance, diversity, and FID when InceptionV3 weights are available

Every HTRConfig field (scrabblegan_tf/core/htr_config.py, where the defaults live) is a flag of the same
name; unset flags keep the default, or for a workdir that already holds a run, its saved value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys

from absl import flags

from scrabblegan_tf.cli import UserError
from scrabblegan_tf.core.htr_config import HTRConfig

FLAGS = flags.FLAGS
COMMANDS = ("train", "evaluate", "quality")

HELP = {
    "dataset": "datasets/<name> builder: handwriting_fonts, iam, rimes, cvl, dhsd.",
    "builder_config": "Builder config (default: its height-32 variant, e.g. dhsd/h32).",
    "synthetic_dir": "Synthetic set (python -m scrabblegan_tf.synthesize --out_dir) to mix in.",
    "synthetic_ratio": "Share of training examples drawn from --synthetic_dir (1: synthetic only).",
    "augment": "Light random affine augmentation of training images (--noaugment: off).",
    "steps": "Training steps (batches).",
    "eval_every": "Validation CER/WER/NED every N steps (0: only at the end).",
    "val_examples": "Validation examples per evaluation (0: the whole split).",
}


def _define_config_flags():
    for f in dataclasses.fields(HTRConfig):
        default = f.default
        help_ = HELP.get(f.name, f"HTRConfig.{f.name} (default {default!r}).")
        if isinstance(default, bool):
            flags.DEFINE_bool(f.name, None, help_)
        elif isinstance(default, int):
            flags.DEFINE_integer(f.name, None, help_)
        elif isinstance(default, float):
            flags.DEFINE_float(f.name, None, help_)
        else:
            flags.DEFINE_string(f.name, None, help_)


_define_config_flags()
flags.DEFINE_string("workdir", None, "HTR run folder (config, checkpoints, metrics.jsonl).")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's, ~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Folder with the manually downloaded dataset files.")
flags.DEFINE_string("split", None, "evaluate/quality: split (default: the config's test_split).")
flags.DEFINE_integer("limit", 0, "evaluate/quality: use at most N examples of the split (0: all).")
flags.DEFINE_string("checkpoint", None, "evaluate/quality: HTR checkpoint (default: latest).")
flags.DEFINE_string("gan_workdir", None, "quality: GAN training workdir.")
flags.DEFINE_string("width", "auto", "quality: generated word width: auto (match the real split), "
                    "native (the generator's char_width), char:N or fixed:W.")
flags.DEFINE_integer("num_styles", 8, "quality: styles per word for diversity.")
flags.DEFINE_integer("diversity_words", 16, "quality: words for diversity.")
flags.DEFINE_bool("inception", True, "quality: also try the standard InceptionV3 FID.")
flags.DEFINE_string("inception_weights", "imagenet", "quality: InceptionV3 weights (imagenet or .h5).")
flags.DEFINE_integer("quality_seed", 0, "quality: style seed offset.")
flags.DEFINE_string("out", None, "quality: also write the JSON here.")


def build_config() -> HTRConfig:
    base = HTRConfig()
    if FLAGS.workdir and os.path.exists(os.path.join(FLAGS.workdir, "htr_config.json")):
        from scrabblegan_tf.training.htr_training import load_workdir

        base, _ = load_workdir(FLAGS.workdir)
    changes = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(HTRConfig)
               if getattr(FLAGS, f.name) is not None}
    return base.replace(**changes)


def parse_width(spec: str) -> dict | None:
    """``auto`` -> None (decided from the real images); ``native``; ``char:N``; ``fixed:W``."""
    if spec == "auto":
        return None
    if spec == "native":
        return {"char_width": None, "fixed_width": None}
    kind, _, value = spec.partition(":")
    if kind in ("char", "fixed") and value.isdigit() and int(value) > 0:
        return {"char_width": int(value) if kind == "char" else None,
                "fixed_width": int(value) if kind == "fixed" else None}
    raise UserError(f"--width must be auto, native, char:N or fixed:W; got {spec!r}")


def cmd_train():
    from scrabblegan_tf.training.htr_training import train

    cfg = build_config()
    train(cfg, FLAGS.workdir, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir)


def cmd_evaluate():
    from scrabblegan_tf.training.htr_training import evaluate_split, load_htr

    model, cfg, alphabet, path, step = load_htr(FLAGS.workdir, FLAGS.checkpoint)
    cfg = cfg.replace(**{k: getattr(FLAGS, k) for k in ("dataset", "builder_config", "eval_batch_size")
                         if getattr(FLAGS, k) is not None})
    split = FLAGS.split or cfg.test_split
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    res = evaluate_split(model, cfg, alphabet, split, data_dir=FLAGS.data_dir,
                         manual_dir=FLAGS.manual_dir, limit=FLAGS.limit, log=log)
    res.update({"dataset": cfg.dataset, "checkpoint": path, "step": step})
    text = json.dumps(res, ensure_ascii=False, indent=1)
    with open(os.path.join(FLAGS.workdir, f"eval_{split}.json"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return text


def cmd_quality():
    if not FLAGS.gan_workdir:
        raise UserError("quality needs --gan_workdir")
    from scrabblegan_tf.evaluation import quality
    from scrabblegan_tf.inference.generation import load_generator
    from scrabblegan_tf.data.htr_inputs import real_uint8
    from scrabblegan_tf.training.htr_training import load_htr
    from scrabblegan_tf.inference.synthesis import match_geometry
    from scrabblegan_tf.data.inputs import training_texts

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    htr, cfg, alphabet, _, _ = load_htr(FLAGS.workdir, FLAGS.checkpoint)
    gen, gan_cfg, gan_alphabet, gan_ckpt = load_generator(FLAGS.gan_workdir)
    split = FLAGS.split or cfg.test_split
    images, texts = real_uint8(cfg, split, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                               limit=FLAGS.limit, log=log)
    width = parse_width(FLAGS.width) or match_geometry([im.shape[1] for im in images],
                                                       [len(t) for t in texts])
    labels = training_texts(gan_cfg, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir)
    res = quality.evaluate_generator(
        gen, gan_alphabet, htr, real_images=images, real_texts=texts, training_labels=labels,
        max_len=gan_cfg.data.lexicon_max_len, max_width=cfg.max_width, seed=FLAGS.quality_seed,
        diversity_words=FLAGS.diversity_words, num_styles=FLAGS.num_styles,
        inception=FLAGS.inception, inception_weights=FLAGS.inception_weights, log=log, **width)
    res.update({"split": split, "gan_checkpoint": gan_ckpt, "htr_workdir": FLAGS.workdir})
    text = json.dumps(res, ensure_ascii=False, indent=1)
    if FLAGS.out:
        with open(FLAGS.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return text


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise UserError(f"usage: scrabblegan-htr {'|'.join(COMMANDS)} --workdir=... [flags]; "
                        f"got {argv[1:]}")
    if not FLAGS.workdir:
        raise UserError("--workdir is required")
    if argv[1] == "train":
        cmd_train()
        return
    # evaluate / quality: stdout is one JSON object; anything else printed (TFDS' preparation
    # messages, progress) goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        text = {"evaluate": cmd_evaluate, "quality": cmd_quality}[argv[1]]()
    print(text)


def run(argv=None):
    """The ``scrabblegan-htr`` command."""
    from scrabblegan_tf import cli

    cli.run(main, None, argv, trains=True)


if __name__ == "__main__":
    run()
