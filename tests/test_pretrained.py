"""Model folders (scrabblegan_tf/pretrained.py): weights round trip, errors, the CLIs' default
model. The shipped default model itself is tested in test_shipped_model.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scrabblegan_tf.inference import generation, model_folder
from export_helpers import make_workdir


def test_model_folder_round_trip_renders_like_the_workdir(tmp_path):
    """A folder written from a workdir's G renders the same words like that G: trainable weights
    are stored as float16 (relative rounding 2^-11), so pixels agree within a few grey levels;
    batch-norm statistics and u vectors are float32 (exact)."""
    work = make_workdir(tmp_path / "run")
    gen, cfg, alphabet, _ = generation.load_generator(work, inference=False)
    with pytest.raises(ValueError, match="frozen"):
        model_folder.save_weights(generation.load_generator(work)[0], tmp_path / "frozen.npz")
    out = model_folder.write_model_folder(gen, cfg.to_json(), alphabet.to_json(), tmp_path / "model",
                                        card={"title": "t", "iterations": 3, "x": {"a": 1}})
    assert model_folder.is_model_folder(out) and not model_folder.is_model_folder(work)
    gen2, cfg2, alphabet2, path = generation.load_generator(str(out))
    assert path.endswith("generator.npz") and cfg2 == cfg and alphabet2 == alphabet
    with np.load(path) as data:
        dtypes = {k: data[k].dtype for k in data.files}
    trainable = {v.path for v in gen.trainable_variables}
    assert all((dtypes[k] == np.float16) == (k in trainable) for k in dtypes)
    a = generation.render(gen, alphabet, ["hello", "ab"], seeds=[1, 2])
    b = generation.render(gen2, alphabet, ["hello", "ab"], seeds=[1, 2])
    for x, y in zip(a, b):
        assert x.shape == y.shape
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 4
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith("# t\n") and "- **iterations**: 3" in card and "  - a: 1" in card
    assert json.loads((out / "model_card.json").read_text())["x"] == {"a": 1}


def test_wrong_weights_are_a_clear_error(tmp_path):
    work = make_workdir(tmp_path / "run")
    gen, cfg, alphabet, _ = generation.load_generator(work, inference=False)
    path = tmp_path / "w.npz"
    model_folder.save_weights(gen, path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(iter(arrays))
    bad = dict(arrays)
    bad[key] = np.zeros((1,), np.float32)
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="has shape"):
        model_folder.load_weights(gen, tmp_path / "shape.npz")
    missing = dict(arrays)
    del missing[key]
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match="has no weight"):
        model_folder.load_weights(gen, tmp_path / "missing.npz")


def test_bfloat16_generation_is_close_to_float32(tmp_path):
    """precision=bfloat16: same weights, convolutions in bfloat16 (8 significant bits); the images
    stay within a small mean difference of the float32 ones and padding stays white."""
    work = make_workdir(tmp_path / "run")
    g32, _, alphabet, _ = generation.load_generator(work)
    g16, _, _, _ = generation.load_generator(work, precision="bfloat16")
    assert g16.compute_dtype == "bfloat16"
    a = generation.render(g32, alphabet, ["hello"], seeds=[3])[0].astype(float)
    b = generation.render(g16, alphabet, ["hello"], seeds=[3])[0].astype(float)
    assert a.shape == b.shape and np.abs(a - b).mean() < 6.0
    with pytest.raises(ValueError, match="precision"):
        generation.load_generator(work, precision="float16")


def test_no_workdir_and_no_default_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(model_folder, "DEFAULT_MODEL", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no default model"):
        generation.resolve_model(None)
    assert generation.resolve_model("x") == "x"


def test_frozen_spectral_norm_draws_the_same_images(tmp_path):
    """layers.freeze_spectral_norm (load_generator's default): W / sigma computed once instead of
    on every call (and the resize convolutions' kernels once); the images are the same (the same
    division, float32), and a frozen G refuses to train."""
    from scrabblegan_tf.models.layers import freeze_spectral_norm

    work = make_workdir(tmp_path / "run")
    live, _, alphabet, _ = generation.load_generator(work, inference=False)
    frozen, _, _, _ = generation.load_generator(work)
    a = generation.render(live, alphabet, ["hello", "ab"], seeds=[1, 2])
    b = generation.render(frozen, alphabet, ["hello", "ab"], seeds=[1, 2])
    for x, y in zip(a, b):
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1
    n = len([l for l in live._flatten_layers() if hasattr(l, "sn_u")])
    assert freeze_spectral_norm(live) == n > 0 and freeze_spectral_norm(live) == 0
    # The up-blocks' conv1 and shortcut keep their resize-convolution kernel, outside G's weights
    # (model folders save the same arrays as before).
    kept = [l.name for l in frozen._flatten_layers() if getattr(l, "frozen_kernel", None) is not None]
    assert sorted(kept) == sorted(["conv1", "conv_sc"] * frozen.num_blocks)
    assert len(frozen.weights) == len(live.weights)
    ids, lengths = alphabet.encode_batch(["ab"])
    with pytest.raises(RuntimeError, match="frozen"):
        frozen((ids, lengths, np.zeros((1, frozen.z_dim), np.float32)), training=True)
