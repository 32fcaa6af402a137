"""The legibility experiment's command line: ``python -m scrabblegan_tf.experiments.legibility``."""

from __future__ import annotations

import shlex
import sys

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core.errors import UserError
from scrabblegan_tf.experiments.legibility.settings import THRESHOLD, Settings


def _command_line() -> str:
    return "python -m scrabblegan_tf.experiments.legibility " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])


def main(argv):
    # The experiment after cli.run's quiet TensorFlow import (this module imports without it).
    from scrabblegan_tf.experiments.legibility.experiment import rewrite_report, run

    f = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    if not f.report_only and not f.workdir:
        raise UserError("--workdir is required (an experiment folder; resumes if it exists)")
    if f.report_only:
        rewrite_report(f.results_dir, max_cer=f.max_cer if f["max_cer"].present else None,
                       title=f.title or "", model_out=f.model_out or "")
        return
    run(Settings(workdir=f.workdir, results_dir=f.results_dir, dataset=f.dataset,
                 manual_dir=f.manual_dir, data_dir=f.data_dir, gan_config=f.gan_config,
                 gan_overrides=tuple(f.gan_override), gan_steps=f.gan_steps,
                 htr_workdir=f.htr_workdir or "", htr_steps=f.htr_steps,
                 htr_overrides=tuple(f.htr_override), real_examples=f.real_examples,
                 max_cer=f.max_cer,
                 model_out=f.model_out or "", model_out_if_legible=f.model_out_if_legible,
                 title=f.title or "", command=_command_line()))


def _define_flags():
    flags.DEFINE_string("workdir", None, "Experiment folder (htr/, gan/); not needed with "
                        "--report_only.")
    flags.DEFINE_string("results_dir", None, "Where the curve, table and pictures go.", required=True)
    flags.DEFINE_string("dataset", "handwriting_fonts", "datasets/<name>.")
    flags.DEFINE_string("manual_dir", None, "Manual dir of the dataset.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir.")
    flags.DEFINE_string("gan_config", "cpu", "GAN preset.")
    flags.DEFINE_multi_string("gan_override", [], "GAN config override section.field=value.")
    flags.DEFINE_integer("gan_steps", 0, "GAN iterations (0: the preset's).")
    flags.DEFINE_string("htr_workdir", None, "An existing evaluation HTR (default: train one).")
    flags.DEFINE_integer("htr_steps", 4000, "Steps of the evaluation HTR trained here.")
    flags.DEFINE_multi_string("htr_override", [], "HTRConfig field=value for the HTR trained here.")
    flags.DEFINE_integer("real_examples", 500, "Real eval images the HTR reads for the reference.")
    flags.DEFINE_float("max_cer", THRESHOLD, "Absolute CER cap of 'legible' besides 2 x the "
                       "real images' CER (1: only the relative bound, e.g. for real handwriting).")
    flags.DEFINE_string("model_out", None, "Write the trained G as a model folder here.")
    flags.DEFINE_bool("model_out_if_legible", False, "Write --model_out only if the final "
                      "generator meets the legibility criterion.")
    flags.DEFINE_string("title", None, "Title of the results.")
    flags.DEFINE_bool("report_only", False, "Only rewrite legibility.md (and --model_out's model "
                      "card verdict) from --results_dir/results.json; no training.")


def run_cli(argv=None):
    """``python -m scrabblegan_tf.experiments.legibility``."""
    cli.run(main, _define_flags, argv, trains=True)


if __name__ == "__main__":
    run_cli()
