"""Export a trained generator as a versioned SavedModel for TF Serving.

    scrabblegan-export --export_dir=/srv/models/scrabblegan   # the shipped English model
    scrabblegan-export --workdir=runs/demo --export_dir=/srv/models/scrabblegan
    scrabblegan-export --workdir=runs/demo --export_dir=/srv/models/scrabblegan --version=2

(also ``python export/export_main.py ...`` or ``python -m scrabblegan_tf.serving.export_main ...``)

Writes ``<export_dir>/<version>/`` (default version: the Unix time in seconds; an existing version is
never overwritten) with the signatures ``serving_default``, ``generate_line`` and
``generate_with_style`` and warmup requests, and writes or updates ``<export_dir>/models.config``.
See export/README.md for serving it.
"""

from __future__ import annotations

import os

from absl import flags, logging

from scrabblegan_tf import cli
from scrabblegan_tf.core.config import GENERATION_PRECISIONS, ExportConfig
from scrabblegan_tf.core.errors import UserError


def _define_flags():
    flags.DEFINE_string("workdir", None, "Training workdir (config.json, alphabet.json, "
                        "checkpoints/), model folder or a shipped model's name; default: the shipped "
                        "English model (scrabblegan_tf/pretrained/english_fonts).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint path (default: the workdir's latest).")
    flags.DEFINE_string("export_dir", None, "Model base path: versions are written in <export_dir>/<N>/.",
                        required=True)
    flags.DEFINE_integer("version", None, "Version number (default: the Unix time in seconds). An "
                         "existing version is never overwritten.", lower_bound=0)
    flags.DEFINE_string("model_name", ExportConfig.model_name, "Model name in models.config and "
                        "in the warmup requests.")
    flags.DEFINE_integer("max_text_length", ExportConfig.max_text_length,
                         "Longest text (symbols) a request may hold; bounds memory per request.",
                         lower_bound=1)
    flags.DEFINE_integer("max_batch_size", ExportConfig.max_batch_size,
                         "Most words (or lines) one request may hold; bounds memory per request.",
                         lower_bound=1)
    flags.DEFINE_enum("precision", "float32", list(GENERATION_PRECISIONS),
                      "G's compute precision in the SavedModel (bfloat16: faster on CPUs with AMX or "
                      "AVX512-BF16; the images are float32 either way).")


FLAGS = flags.FLAGS


def main(argv):
    # The library after cli.run's quiet TensorFlow import (this module imports without TensorFlow).
    from scrabblegan_tf.serving import export_lib

    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    try:
        path, config = export_lib.export_from_workdir(
            FLAGS.workdir, FLAGS.export_dir, checkpoint=FLAGS.checkpoint, version=FLAGS.version,
            model_name=FLAGS.model_name, max_text_length=FLAGS.max_text_length,
            max_batch_size=FLAGS.max_batch_size,
            precision=FLAGS.precision)
    except export_lib.VersionExistsError as e:
        raise UserError(str(e)) from e
    versions = export_lib.existing_versions(FLAGS.export_dir)
    version = int(os.path.basename(path))
    if versions and versions[-1] != version:
        logging.warning("Version %d is not the highest in %s (%d): TF Serving's default policy "
                        "serves the highest version only.", version, FLAGS.export_dir, versions[-1])
    print(f"exported {path}\nmodels config: {config}\n"
          f"try: saved_model_cli run --dir {path} --tag_set serve --signature_def serving_default "
          "--input_exprs 'words=[\"hello\",\"ab\"];seeds=[7,8]'")
    return 0


def run(argv=None):
    """The ``scrabblegan-export`` command."""
    cli.run(main, _define_flags, argv)


if __name__ == "__main__":
    run()
