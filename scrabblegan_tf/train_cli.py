"""Train ScrabbleGAN (``scrabblegan-train``): flags -> config -> ``train.train(config, workdir)``.

    scrabblegan-train --dataset=cvl --manual_dir=~/cvl-database-1-1 --workdir=runs/cvl
    scrabblegan-train --config=smoke --steps=30 --workdir=/tmp/sg   # then --steps=40 resumes

(also ``python train_main.py ...`` in the repository, or ``python -m scrabblegan_tf.train_cli ...``)
"""

import sys

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.cli import UserError

FLAGS = flags.FLAGS


def _define_flags():
    flags.DEFINE_string("dataset", None, "handwriting_fonts (default), iam, rimes, cvl or dhsd.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's, ~/tensorflow_datasets).")
    flags.DEFINE_string("manual_dir", None, "Folder with the manually downloaded dataset files.")
    flags.DEFINE_string("workdir", None, "Run folder: config, checkpoints, samples, TensorBoard.")
    flags.DEFINE_enum("config", "paper", sorted(config_lib.PRESETS), "Config preset.")
    flags.DEFINE_multi_string("config_override", [], "section.field=value, repeatable.")
    flags.DEFINE_integer("steps", None, "Training iterations (each: g_every D/R batches, 1 G step).")
    flags.DEFINE_integer("batch_size", None, "Per-replica mini-batch size.")
    flags.DEFINE_enum("strategy", None, ["auto", "mirrored", "multi_worker", "default"],
                      "Distribution strategy; multi_worker: one process per machine, cluster from "
                      "TF_CONFIG (see scrabblegan_tf/training/multiworker.py).")
    flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices.")
    flags.DEFINE_integer("inter_op_threads", None, "Independent ops run at a time (0: TensorFlow's "
                         "default, one per core); 1 lowers peak memory ~9%, ~4% slower on 2 cores.")
    flags.DEFINE_bool("jit_compile", None, "XLA-compile the training step (GPU only).")
    flags.DEFINE_integer("seed", None, "Random seed.")
    flags.DEFINE_enum("mixed_precision", None, ["auto", "mixed_float16", "mixed_bfloat16", "off"],
                      "Mixed precision (default: the config's, auto): auto = mixed_float16 with "
                      "dynamic loss scaling on GPU, mixed_bfloat16 on CPUs with AMX or AVX512-BF16, "
                      "float32 elsewhere; off = float32.")
    flags.DEFINE_integer("max_bad_steps", None,
                         "Stop after this many consecutive iterations with non-finite losses or "
                         "gradients (0: never).")
    flags.DEFINE_string("unlabeled_dataset", None,
                        "Real images without labels for D (semi-supervised): <name>[/<config>][:<split>] "
                        "of a datasets/ builder, or folder:/path/to/images.")
    flags.DEFINE_string("unlabeled_manual_dir", None, "Manual dir of the unlabeled dataset.")
    flags.DEFINE_bool("disjoint", None, "D on unlabeled images only, R on labelled images only.")
    flags.DEFINE_string("eval_htr", None,
                        "Workdir of an HTR trained on real images (python -m scrabblegan_tf.htr train): "
                        "it also reads the held-out words of the legibility signal (cer_htr), and once, "
                        "real images of the eval split for reference.")
    flags.DEFINE_integer("eval_htr_real", 256, "Real eval-split images the --eval_htr reads once.")
    flags.mark_flag_as_required("workdir")


def eval_readers(cfg: config_lib.Config):
    """{"htr": reader} for --eval_htr (and its CER on real eval images, logged), or {}."""
    if not FLAGS.eval_htr:
        return {}
    from scrabblegan_tf.core import metrics
    from scrabblegan_tf.data.htr_inputs import real_uint8
    from scrabblegan_tf.models.crnn import read_uint8
    from scrabblegan_tf.training.htr_training import load_htr

    model, htr_cfg, alphabet, path, step = load_htr(FLAGS.eval_htr)

    def read(images):
        return read_uint8(model, alphabet, images, max_width=htr_cfg.max_width)

    if FLAGS.eval_htr_real > 0:
        real_cfg = htr_cfg.replace(dataset=cfg.data.dataset, builder_config=cfg.data.builder_config)
        images, texts = real_uint8(real_cfg, cfg.data.eval_split, data_dir=FLAGS.data_dir,
                                   manual_dir=FLAGS.manual_dir, limit=FLAGS.eval_htr_real)
        m = metrics.evaluate_texts(read(images), texts)
        print(f"eval HTR {path} (step {step}) reads {len(texts)} real {cfg.data.eval_split} images "
              f"at CER {m['cer']:.3f} (WER {m['wer']:.3f}): the reference for cer_htr")
    return {"htr": read}


def build_config() -> config_lib.Config:
    cfg = config_lib.get_config(FLAGS.config, FLAGS.config_override)
    if FLAGS.dataset is not None:
        cfg.data.dataset = FLAGS.dataset
    for name, section, field in (("steps", "run", "steps"), ("batch_size", "data", "batch_size"),
                                 ("strategy", "run", "strategy"),
                                 ("cpu_devices", "run", "cpu_devices"),
                                 ("inter_op_threads", "run", "inter_op_threads"),
                                 ("jit_compile", "run", "jit_compile"), ("seed", "run", "seed"),
                                 ("unlabeled_dataset", "data", "unlabeled_dataset"),
                                 ("unlabeled_manual_dir", "data", "unlabeled_manual_dir"),
                                 ("disjoint", "data", "disjoint")):
        value = getattr(FLAGS, name)
        if value is not None:
            setattr(getattr(cfg, section), field, value)
    if FLAGS.max_bad_steps is not None:
        cfg.run.max_bad_steps = FLAGS.max_bad_steps
    if FLAGS.mixed_precision is not None:
        cfg.run.mixed_precision = "" if FLAGS.mixed_precision == "off" else FLAGS.mixed_precision
    return cfg


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    from scrabblegan_tf.training.gan_training import EXIT_SIGTERM, train

    cfg = build_config()
    result = train(cfg, FLAGS.workdir, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                   eval_readers=eval_readers(cfg))
    if result.interrupted:
        # Saved a checkpoint at result.step; rerun the same command to resume.
        sys.exit(EXIT_SIGTERM)


def run(argv=None):
    """The ``scrabblegan-train`` command."""
    cli.run(main, _define_flags, argv, trains=True)


if __name__ == "__main__":
    run()
