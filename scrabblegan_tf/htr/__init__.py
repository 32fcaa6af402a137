"""The evaluation HTR (CRNN + BiLSTM + CTC), separate from the GAN's recognizer R.

    python -m scrabblegan_tf.htr train --dataset=dhsd --manual_dir=../shared/data/dhsd --workdir=runs/htr
    python -m scrabblegan_tf.htr train --dataset=dhsd --synthetic_dir=synth/dhsd --synthetic_ratio=0.5 \
        --workdir=runs/htr_mix
    python -m scrabblegan_tf.htr evaluate --workdir=runs/htr --split=test
    python -m scrabblegan_tf.htr quality --workdir=runs/htr --gan_workdir=runs/gan

Modules: ``model`` (``CRNN``, ``greedy_decode``), ``config`` (``HTRConfig``: every default),
``data`` (pipelines, mixing, augmentation), ``train`` (``train``, ``load_htr``, ``evaluate_split``,
``read_uint8``). See ``scrabblegan_tf/experiments/README.md``.
"""

from scrabblegan_tf.htr.config import HTRConfig

__all__ = ["CRNN", "HTRConfig", "greedy_decode"]


def __getattr__(name):
    # The model (and TensorFlow) load on first use, so that the CLI starts quietly (scrabblegan_tf.cli).
    if name in ("CRNN", "greedy_decode"):
        from scrabblegan_tf.htr import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
