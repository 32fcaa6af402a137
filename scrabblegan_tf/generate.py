"""Render text with a trained generator.

    python -m scrabblegan_tf.generate --text="hello world" --num_styles=8 --out=x.png   # shipped model
    python -m scrabblegan_tf.generate --workdir=runs/demo --text="hello world" --seed=7 --out=x.png
    python -m scrabblegan_tf.generate --workdir=runs/demo --text="Scrabble" --num_styles=8 --out=g.png

One style (one z) for the whole text, spaces included: the PNG is 32 pixels high and
``model.char_width`` * len(text) wide (16 in the paper geometry, 12 for the shipped model). A style
seed always gives the same z (``style_vectors``: stateless normal noise keyed by the seed, the same
function the exported SavedModel uses), so the same seed gives the same image.
"""

from __future__ import annotations

from absl import flags

from scrabblegan_tf import cli
from scrabblegan_tf.core.config import GENERATION_PRECISIONS
from scrabblegan_tf.core.errors import UserError


def main(argv):
    # The library after cli.run's quiet TensorFlow import (this module imports without TensorFlow).
    from scrabblegan_tf.core import imaging
    from scrabblegan_tf.inference.generation import load_generator, render

    f = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    gen, _, alphabet, path = load_generator(f.workdir, f.checkpoint, precision=f.precision)
    bad = alphabet.unknown(f.text)
    if not f.text or bad:
        raise UserError(f"cannot render {f.text!r}: " + (
            f"characters outside the {alphabet.name} alphabet: {' '.join(map(repr, bad))}"
            if bad else "empty text"))
    seeds = [f.seed + i for i in range(f.num_styles)]
    images = render(gen, alphabet, [f.text] * f.num_styles, seeds=seeds)
    out = imaging.save_png(images[0] if f.num_styles == 1 else imaging.grid(images), f.out)
    print(f"wrote {out} ({len(images)} style(s) of {f.text!r}, seeds {seeds[0]}..{seeds[-1]}, "
          f"checkpoint {path})")


def _define_flags():
    flags.DEFINE_string("workdir", None, "Training workdir or model folder (default: the shipped "
                        "English model, scrabblegan_tf/pretrained/english_fonts).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint path (default: latest).")
    flags.DEFINE_string("text", None, "Text to render (spaces allowed).", required=True)
    flags.DEFINE_integer("seed", 0, "Style seed.")
    flags.DEFINE_integer("num_styles", 1, "Number of styles (seeds seed, seed+1, ...) in a grid.")
    flags.DEFINE_string("out", "generated.png", "Output PNG.")
    flags.DEFINE_enum("precision", "float32", list(GENERATION_PRECISIONS),
                      "G's compute precision (the image is float32 either way).")


def run(argv=None):
    """The ``scrabblegan-generate`` command."""
    cli.run(main, _define_flags, argv)


if __name__ == "__main__":
    run()
