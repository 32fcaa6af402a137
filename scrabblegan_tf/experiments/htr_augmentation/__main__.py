"""CLI: ``python -m scrabblegan_tf.experiments.htr_augmentation [--flags]`` (see ``experiment``).

Unset flags keep the defaults of ``ExperimentSettings`` (experiment) and ``HTRConfig``
(scrabblegan_tf/core/htr_config.py). Rerunning the same command resumes every step.
"""

from __future__ import annotations

import shlex
import sys

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.core.errors import UserError
from scrabblegan_tf.core.htr_config import HTRConfig
from scrabblegan_tf.experiments.htr_augmentation.settings import ExperimentSettings, Interrupted

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "datasets/<name> builder (default dhsd).")
flags.DEFINE_string("builder_config", None, "Builder config (default: its height-32 variant).")
flags.DEFINE_string("workdir", None, "Folder for the GAN, synthetic set and HTR runs.", required=True)
flags.DEFINE_string("results_dir", None, "Where table.md, results.json, samples.png go (default: workdir).")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's, ~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Folder with the manually downloaded dataset files.")
flags.DEFINE_string("gan_workdir", None, "GAN workdir (default <workdir>/gan): used as is with "
                    "--gan_steps=0, else trained/resumed to --gan_steps.")
flags.DEFINE_enum("gan_config", None, sorted(config_lib.PRESETS), "GAN config preset (default small).")
flags.DEFINE_integer("gan_steps", None, "GAN training iterations (0: use --gan_workdir as is).")
flags.DEFINE_multi_string("gan_override", [], "GAN config section.field=value, repeatable.")
flags.DEFINE_integer("num_synthetic", None, "Synthetic words N (default 100000).")
flags.DEFINE_string("lexicon", None, "Word list for the synthetic words (default: the GAN's training labels).")
flags.DEFINE_float("synthetic_ratio", None, "Share of synthetic examples in real+synthetic training "
                   "(default: N / (N + real train size)).")
flags.DEFINE_list("seeds", None, "HTR seeds (default 0,1,2).")
flags.DEFINE_integer("htr_steps", None, "HTR training steps per run (default 5000).")
flags.DEFINE_multi_string("htr_override", [], "HTRConfig field=value, repeatable (e.g. width_mult=0.5).")
flags.DEFINE_bool("quality", None, "Also measure the generator (legibility, Fréchet, diversity).")
flags.DEFINE_bool("synthetic_only", None, "Also train one HTR on the synthetic words alone "
                  "(HTG_HTR; default true).")


def build_settings() -> ExperimentSettings:
    s = ExperimentSettings()
    for name in ("dataset", "builder_config", "workdir", "results_dir", "data_dir", "manual_dir",
                 "gan_workdir", "gan_config", "gan_steps", "num_synthetic", "lexicon",
                 "synthetic_ratio", "htr_steps", "quality", "synthetic_only"):
        value = getattr(FLAGS, name)
        if value is not None:
            setattr(s, name, value)
    if FLAGS.seeds is not None:
        s.seeds = tuple(int(x) for x in FLAGS.seeds)
    s.gan_overrides = tuple(FLAGS.gan_override)
    try:
        overrides = HTRConfig.parse_overrides(FLAGS.htr_override)
    except ValueError as e:
        raise UserError(f"--htr_override: {e}") from None
    s.htr_overrides = overrides
    return s


def main(argv):
    if len(argv) > 1:
        raise UserError(f"Unexpected arguments: {argv[1:]}")
    command = "python -m scrabblegan_tf.experiments.htr_augmentation " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    # The experiment after cli.run's quiet TensorFlow import (this module imports without it).
    from scrabblegan_tf.experiments.htr_augmentation.experiment import run
    from scrabblegan_tf.training.gan_training import EXIT_SIGTERM

    try:
        run(build_settings(), command=command)
    except Interrupted as e:
        print(f"[experiment] {e}", file=sys.stderr)
        sys.exit(EXIT_SIGTERM)


def run_cli(argv=None):
    """``python -m scrabblegan_tf.experiments.htr_augmentation``."""
    cli.run(main, None, argv, trains=True)


if __name__ == "__main__":
    run_cli()
