"""Export a trained generator as a versioned SavedModel for TF Serving.

    python export/export_main.py --export_dir=/srv/models/scrabblegan   # the shipped English model
    python export/export_main.py --workdir=runs/demo --export_dir=/srv/models/scrabblegan
    python export/export_main.py --workdir=runs/demo --export_dir=/srv/models/scrabblegan --version=2

Writes ``<export_dir>/<version>/`` (default version: the Unix time in seconds; an existing version is
never overwritten) with the signatures ``serving_default``, ``generate_line`` and
``generate_with_style`` and warmup requests, and writes or updates ``<export_dir>/models.config``.
See export/README.md for serving it.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file: make the repository root (holding export/) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging

from export import export_lib

flags.DEFINE_string("workdir", None, "Training workdir (config.json, alphabet.json, checkpoints/) or "
                    "model folder; default: the shipped English model "
                    "(scrabblegan_tf/pretrained/english_fonts).")
flags.DEFINE_string("checkpoint", None, "Checkpoint path (default: the workdir's latest).")
flags.DEFINE_string("export_dir", None, "Model base path: versions are written in <export_dir>/<N>/.",
                    required=True)
flags.DEFINE_integer("version", None, "Version number (default: the Unix time in seconds). An "
                     "existing version is never overwritten.", lower_bound=0)
flags.DEFINE_string("model_name", export_lib.DEFAULT_MODEL_NAME, "Model name in models.config and "
                    "in the warmup requests.")
flags.DEFINE_integer("max_text_length", export_lib.DEFAULT_MAX_TEXT_LENGTH,
                     "Longest text (symbols) a request may hold; bounds memory per request.",
                     lower_bound=1)

flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                  "G's compute precision in the SavedModel (bfloat16: faster on CPUs with AMX or "
                  "AVX512-BF16; the images are float32 either way).")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        path, config = export_lib.export_from_workdir(
            FLAGS.workdir, FLAGS.export_dir, checkpoint=FLAGS.checkpoint, version=FLAGS.version,
            model_name=FLAGS.model_name, max_text_length=FLAGS.max_text_length,
            precision=FLAGS.precision)
    except (export_lib.VersionExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    versions = export_lib.existing_versions(FLAGS.export_dir)
    version = int(os.path.basename(path))
    if versions and versions[-1] != version:
        logging.warning("Version %d is not the highest in %s (%d): TF Serving's default policy "
                        "serves the highest version only.", version, FLAGS.export_dir, versions[-1])
    print(f"exported {path}\nmodels config: {config}\n"
          f"try: saved_model_cli run --dir {path} --tag_set serve --signature_def serving_default "
          "--input_exprs 'words=[\"hello\",\"ab\"];seeds=[7,8]'")
    return 0


if __name__ == "__main__":
    app.run(main)
