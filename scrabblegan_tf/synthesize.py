"""Write a labelled synthetic handwriting dataset with a trained generator, readable by TFDS.

    python -m scrabblegan_tf.synthesize --workdir=runs/dhsd --num_words=100000 --out_dir=synth/dhsd
    python -m scrabblegan_tf.synthesize --workdir=runs/iam --lexicon=words.txt --num_words=50000 \\
        --out_dir=synth/iam --char_width=12

What is written, resuming and the image geometry: ``inference.synthesis``.
"""

from __future__ import annotations

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core.config import GENERATION_PRECISIONS
from scrabblegan_tf.core.errors import UserError


def main(argv):
    # The library after cli.run's quiet TensorFlow import (this module imports without TensorFlow).
    from scrabblegan_tf.inference.synthesis import synthesize

    f = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    synthesize(f.workdir, f.out_dir, num_words=f.num_words, lexicon=f.lexicon,
               shard_size=f.shard_size, batch_size=f.batch_size, seed=f.seed,
               char_width=f.char_width, fixed_width=f.fixed_width, max_len=f.max_len,
               capitalize=f.capitalize, checkpoint=f.checkpoint, data_dir=f.data_dir,
               manual_dir=f.manual_dir, precision=f.precision)


def _define_flags():
    flags.DEFINE_string("workdir", None, "GAN training workdir or model folder (default: the shipped "
                        "English model).")
    flags.DEFINE_string("out_dir", None, "Output folder (TFDS-readable).", required=True)
    flags.DEFINE_integer("num_words", 100_000, "Number of examples.")
    flags.DEFINE_string("lexicon", None, "Word list, one per line (default: the GAN's training labels).")
    flags.DEFINE_integer("shard_size", 1000, "Examples per TFRecord shard (the unit of resumption).")
    flags.DEFINE_integer("batch_size", 64, "Words per generator call.")
    flags.DEFINE_integer("seed", 0, "Seed of the words and styles (style seed of example i: "
                         "seed * 2**32 + i).")
    flags.DEFINE_integer("char_width", None, "Resize words to this many pixels per character "
                         "(default: the generator's 16).")
    flags.DEFINE_integer("fixed_width", None, "Resize every word to this width (overrides char_width).")
    flags.DEFINE_integer("max_len", None, "Longest word drawn (default: the GAN's lexicon_max_len).")
    flags.DEFINE_bool("capitalize", False, "Capitalise the first letter with probability 0.5.")
    flags.DEFINE_string("checkpoint", None, "Generator checkpoint (default: the latest).")
    flags.DEFINE_string("data_dir", None, "TFDS data dir of the GAN's dataset (for its labels).")
    flags.DEFINE_string("manual_dir", None, "Manual dir of the GAN's dataset.")
    flags.DEFINE_enum("precision", "float32", list(GENERATION_PRECISIONS), "G's compute precision.")


def run(argv=None):
    """The ``scrabblegan-synthesize`` command."""
    cli.run(main, _define_flags, argv)


if __name__ == "__main__":
    run()
