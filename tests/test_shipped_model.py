"""The shipped default model (scrabblegan_tf/pretrained/english_fonts): it loads, draws words of
the documented size, the same seed gives the same image, and the CLIs use it without --workdir."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from scrabblegan_tf.inference import generation, model_folder

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def shipped():
    return generation.load_generator(None)


def test_model_folder_is_complete_and_small():
    folder = model_folder.DEFAULT_MODEL
    for name in ("config.json", "alphabet.json", model_folder.WEIGHTS_FILE, model_folder.CARD_MD,
                 model_folder.CARD_JSON):
        assert (folder / name).is_file(), name
    assert (folder / model_folder.WEIGHTS_FILE).stat().st_size <= 25 * 2**20
    card = json.loads((folder / model_folder.CARD_JSON).read_text())
    assert {"data", "command", "iterations", "training minutes"} <= set(card)
    assert "CER read by the evaluation HTR" in card["legibility (held-out words)"]


def test_shapes_range_and_determinism(shipped):
    gen, cfg, alphabet, path = shipped
    assert path == str(model_folder.DEFAULT_MODEL / model_folder.WEIGHTS_FILE)
    words = ["hello", "world", "Scrabble"]
    a = generation.render(gen, alphabet, words, seeds=[7, 8, 9])
    b = generation.render(gen, alphabet, words, seeds=[7, 8, 9])
    assert [im.shape for im in a] == [(32, cfg.model.char_width * len(w)) for w in words]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    other = generation.render(gen, alphabet, words[:1], seeds=[70])[0]
    assert np.abs(other.astype(int) - a[0].astype(int)).mean() > 2  # another style
    # It writes: dark ink on light paper, not a uniform smudge.
    assert all(im.min() < 80 and np.median(im) > 170 for im in a)


def test_generate_cli_without_workdir(tmp_path):
    out = tmp_path / "x.png"
    proc = subprocess.run([sys.executable, "-m", "scrabblegan_tf.generate", "--text=hello world",
                           "--num_styles=8", f"--out={out}"], cwd=REPO, capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    img = np.asarray(Image.open(out))
    cfg = json.loads((model_folder.DEFAULT_MODEL / "config.json").read_text())
    cw = cfg["model"]["char_width"]
    # 8 rows of 32 px with 4 px padding (imaging.grid), as wide as the text plus padding.
    assert img.shape == (8 * 36 + 4, cw * len("hello world") + 8)
    assert "english_fonts" in proc.stdout


def test_export_main_without_workdir(tmp_path):
    proc = subprocess.run([sys.executable, "export/export_main.py", f"--export_dir={tmp_path}",
                           "--version=1"], cwd=REPO, capture_output=True, text=True, env=ENV,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "1" / "saved_model.pb").exists()
    meta = json.loads((tmp_path / "1" / "assets.extra" / "scrabblegan_export.json").read_text())
    assert meta["workdir"].endswith("english_fonts") and meta["checkpoint"].endswith("generator.npz")


def test_every_shipped_model_loads_by_name_and_writes():
    """Each folder of scrabblegan_tf/pretrained/ is a complete model folder that the CLIs accept by
    its bare name (``--workdir=german_dhsd``), and it draws words in its own alphabet: the German
    DHSD model writes umlauts and ß, ink on light paper, deterministic by seed."""
    names = sorted(p.name for p in model_folder.PRETRAINED_DIR.iterdir() if model_folder.is_model_folder(p))
    assert "english_fonts" in names and "german_dhsd" in names
    for name in names:
        assert generation.resolve_model(name) == str(model_folder.PRETRAINED_DIR / name)
        card = json.loads((model_folder.PRETRAINED_DIR / name / model_folder.CARD_JSON).read_text())
        assert "verdict" in card["legibility (held-out words)"]
    assert generation.resolve_model("runs/none") == "runs/none"  # a path is never a shipped name
    gen, cfg, alphabet, _ = generation.load_generator("german_dhsd")
    words = ["Größe", "Straße"]
    a = generation.render(gen, alphabet, words, seeds=[1, 2])
    b = generation.render(gen, alphabet, words, seeds=[1, 2])
    assert [im.shape for im in a] == [(32, cfg.model.char_width * len(w)) for w in words]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        # Ink on paper. DHSD's own strokes are grey at 32 px (the darkest pixel of a real training
        # word: median 78, 90th percentile 141), and this model's ink is paler still (~100-150).
        assert x.min() < 160 and np.median(x) > 200
