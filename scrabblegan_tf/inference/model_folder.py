"""Shipped generators: model folders holding G's inference weights, its config and alphabet.

A model folder is what ``generate``, ``synthesize`` and ``export/export_main.py`` accept in place of a
training workdir (``inference.generation.load_generator`` tells them apart):

- ``config.json`` and ``alphabet.json``, as a training run writes them;
- ``generator.npz``: every weight of G keyed by its variable path (trainable weights stored as
  float16, the batch-norm statistics and spectral-norm vectors as float32), nothing of D, R or
  the optimizers;
- ``MODEL_CARD.md`` and ``model_card.json``: data, command, iterations, minutes, legibility.

``DEFAULT_MODEL`` (the English model trained on the embedded font dataset) is what the CLIs use
without ``--workdir``. ``python -m scrabblegan_tf.pretrained --workdir=RUN --out=FOLDER`` writes a
folder from a training run's latest checkpoint.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from scrabblegan_tf.core import run_folder

# The shipped model folders (package data of scrabblegan_tf).
PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "english_fonts"
WEIGHTS_FILE = "generator.npz"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


def is_model_folder(path) -> bool:
    return os.path.isfile(os.path.join(path, WEIGHTS_FILE))


def _stored(v) -> np.ndarray:
    x = np.asarray(v.numpy(), np.float32)
    return x.astype(np.float16) if v.trainable else x


def save_weights(generator, path) -> str:
    """G's weights as ``{variable path: array}`` in an .npz (trainable ones as float16). A G whose
    spectral norms were frozen for inference (``inference.generation.load_generator``'s default) is refused:
    its kernels hold W / sigma, which loading would divide by sigma again."""
    if any(getattr(layer, "sn_frozen", False)
           for layer in generator._flatten_layers(include_self=True, recursive=True)):  # pylint: disable=protected-access
        raise ValueError("this generator's spectral norms are frozen for inference; load it with "
                         "load_generator(..., inference=False) to save it")
    arrays = {v.path: _stored(v) for v in generator.weights}
    if len(arrays) != len(generator.weights):
        raise ValueError("two weights of G share a path")
    with run_folder.atomic_path(str(path), ".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return str(path)


def load_weights(generator, path) -> None:
    """Assigns the weights of ``save_weights`` to a built G with the same config; every weight must
    be present with its shape (a clear error names the first that is not)."""
    with np.load(path) as data:
        stored = {k: data[k] for k in data.files}
    for v in generator.weights:
        if v.path not in stored:
            raise ValueError(f"{path} has no weight {v.path!r}: not a generator of this config")
        value = stored.pop(v.path)
        if tuple(value.shape) != tuple(v.shape):
            raise ValueError(f"{path}: {v.path} has shape {value.shape}, the model {tuple(v.shape)}")
        v.assign(value.astype(np.float32))
    if stored:
        raise ValueError(f"{path} has weights the model lacks: {sorted(stored)[:3]}")


def write_model_folder(generator, config_json: str, alphabet_json: str, out_dir, *,
                       card: dict) -> pathlib.Path:
    """Writes a model folder (see the module docstring); ``card``: what MODEL_CARD.md says."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_folder.write_settings(str(out), config_json, alphabet_json)
    save_weights(generator, out / WEIGHTS_FILE)
    write_card(out, card)
    return out


def write_card(out_dir, card: dict) -> None:
    """``model_card.json`` and ``MODEL_CARD.md`` of a model folder from the card dict."""
    out = pathlib.Path(out_dir)
    run_folder.write_text(str(out / CARD_JSON), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    run_folder.write_text(str(out / CARD_MD), render_card(card))


def render_card(card: dict) -> str:
    """MODEL_CARD.md from the card dict (title, then one line per field, nested dicts indented)."""
    lines = [f"# {card.get('title', 'ScrabbleGAN generator')}", ""]
    for key, value in card.items():
        if key == "title":
            continue
        if isinstance(value, dict):
            lines.append(f"- **{key}**:")
            lines.extend(f"  - {k}: {v}" for k, v in value.items())
        else:
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines) + "\n"
