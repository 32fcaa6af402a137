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

import os

import numpy as np

from scrabblegan_tf import pixels, run_folder
from scrabblegan_tf.alphabet import Alphabet
from scrabblegan_tf.cli import UserError
from scrabblegan_tf.config import Config


def style_vectors(seeds, z_dim: int):
    """z [len(seeds), z_dim] float32: ``tf.random.stateless_normal`` with seed (s, 0) per row."""
    import tensorflow as tf

    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal([z_dim], seed=tf.stack([s, tf.constant(0, tf.int64)])),
        seeds, fn_output_signature=tf.TensorSpec([z_dim], tf.float32))


def resolve_model(workdir: str | None) -> str:
    """``workdir`` itself; a shipped model's name (``german_dhsd``: a folder of
    ``scrabblegan_tf/pretrained/``) when no such path exists; the default model when None or empty."""
    from scrabblegan_tf import pretrained

    if workdir:
        shipped = pretrained.PRETRAINED_DIR / workdir
        if not os.path.exists(workdir) and os.sep not in workdir and pretrained.is_model_folder(shipped):
            return str(shipped)
        return workdir
    if not pretrained.is_model_folder(pretrained.DEFAULT_MODEL):
        raise FileNotFoundError(f"No --workdir given and no default model in {pretrained.DEFAULT_MODEL}")
    return str(pretrained.DEFAULT_MODEL)


def load_run(workdir: str) -> tuple[Config, Alphabet]:
    """The config and alphabet a training run (or a model folder) holds in ``workdir``."""
    text, alphabet = run_folder.read_settings(workdir, kind="training workdir or model folder")
    return Config.from_json(text), alphabet


GENERATION_PRECISIONS = ("float32", "bfloat16")


def load_generator(workdir: str | None, checkpoint: str | None = None, *,
                   precision: str = "float32", inference: bool = True):
    """(generator, config, alphabet, weights path) from a training workdir (latest checkpoint, or
    ``checkpoint``), a model folder (``scrabblegan_tf.pretrained``), or the default model when
    ``workdir`` is None. ``precision="bfloat16"``: G computes in bfloat16 (float32 weights and
    output image; several times faster on CPUs with AMX or AVX512-BF16). ``inference``: the
    spectral norms are frozen (``layers.freeze_spectral_norm``: same images, less work per call);
    False keeps G as trained (to save it again, e.g. as a model folder)."""
    import keras
    import tensorflow as tf

    from scrabblegan_tf import pretrained
    from scrabblegan_tf.model_factory import generator_for

    if precision not in GENERATION_PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {GENERATION_PRECISIONS}")
    workdir = resolve_model(workdir)
    cfg, alphabet = load_run(workdir)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        gen = generator_for(cfg.model, alphabet)
        gen((np.ones((1, 1), np.int32), np.ones((1,), np.int32),
             np.zeros((1, cfg.model.z_dim), np.float32)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    if pretrained.is_model_folder(workdir) and not checkpoint:
        path = os.path.join(workdir, pretrained.WEIGHTS_FILE)
        pretrained.load_weights(gen, path)
    else:
        path = run_folder.restore_trained(tf.train.Checkpoint(generator=gen), workdir, checkpoint)
    if inference:
        from scrabblegan_tf.layers import freeze_spectral_norm

        freeze_spectral_norm(gen)
    return gen, cfg, alphabet, path


def render(generator, alphabet: Alphabet, texts, seeds=None, z=None) -> list[np.ndarray]:
    """uint8 [32, char_width * len(text)] images of ``texts``, one style per text (from ``seeds`` or ``z``)."""
    from scrabblegan_tf import imaging

    texts = list(texts)
    ids, lengths = alphabet.encode_batch(texts)
    if z is None:
        z = style_vectors(np.asarray(seeds, np.int64), generator.z_dim)
    images = generator((ids, lengths, z), training=False).numpy()
    return [imaging.crop_width(pixels.to_uint8(im), generator.char_width * n)[..., 0]
            for im, n in zip(images, lengths)]


def main(argv):
    from absl import flags

    from scrabblegan_tf import imaging

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
    from absl import flags

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
    from scrabblegan_tf import cli

    cli.run(main, _define_flags, argv)


if __name__ == "__main__":
    run()
