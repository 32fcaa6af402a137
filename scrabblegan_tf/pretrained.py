"""Write a model folder (G's inference weights, config, alphabet, model card) from a training run.

    python -m scrabblegan_tf.pretrained --workdir=runs/demo --out=models/demo [--card=card.json]

The folder is what ``generate``, ``synthesize`` and the export accept as ``--workdir``
(``inference.model_folder`` describes it); ``scrabblegan_tf/pretrained/<name>/`` holds the shipped ones.
"""

from __future__ import annotations

import json
import os
import pathlib

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core.errors import UserError


def main(argv):
    # The library after cli.run's quiet TensorFlow import (this module imports without TensorFlow).
    from scrabblegan_tf.core import run_folder
    from scrabblegan_tf.inference.generation import load_generator
    from scrabblegan_tf.inference.model_folder import WEIGHTS_FILE, write_model_folder

    f = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    gen, _, _, path = load_generator(f.workdir, f.checkpoint, inference=False)
    card = json.loads(pathlib.Path(f.card).read_text(encoding="utf-8")) if f.card else {}
    card.setdefault("checkpoint", os.path.basename(path))
    config_json, alphabet = run_folder.read_settings(f.workdir)
    out = write_model_folder(gen, config_json, alphabet.to_json(), f.out, card=card)
    size = (out / WEIGHTS_FILE).stat().st_size
    print(f"wrote {out} ({size / 2**20:.1f} MiB of weights, from {path})")


def _define_flags():
    flags.DEFINE_string("workdir", None, "Training workdir to take G from.", required=True)
    flags.DEFINE_string("checkpoint", None, "Checkpoint (default: the latest).")
    flags.DEFINE_string("out", None, "Model folder to write.", required=True)
    flags.DEFINE_string("card", None, "JSON file with the model card's fields.")


def run(argv=None):
    """The ``scrabblegan-model`` command."""
    cli.run(main, _define_flags, argv)


if __name__ == "__main__":
    run()
