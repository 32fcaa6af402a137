"""Training driver: end to end through train_main.py, resume, and resume == uninterrupted run."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from scrabblegan_tf import config as config_lib
from scrabblegan_tf import train as train_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
from train_helpers import WORDS, in_memory_dataset, tiny_config  # noqa: F401 (re-exported)


def g_weights(workdir) -> list[np.ndarray]:
    from scrabblegan_tf.generate import load_generator

    gen, *_ = load_generator(str(workdir))
    return [v.numpy() for v in gen.weights]


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    """2 steps, stop, resume to 4 steps == 4 steps straight: the checkpoint holds the models, the
    optimizers, the step counter, the fake-word/z RNG and the input iterator position."""
    logs = []
    train_lib.train(tiny_config(2), str(tmp_path / "a"), dataset=in_memory_dataset(), log=logs.append)
    res = train_lib.train(tiny_config(4), str(tmp_path / "a"), dataset=in_memory_dataset(),
                          log=logs.append)
    assert res.step == 4
    assert any("Resumed from" in m and "at step 2" in m for m in logs), logs
    straight = train_lib.train(tiny_config(4), str(tmp_path / "b"), dataset=in_memory_dataset(),
                               log=lambda m: None)
    assert straight.step == 4
    for wa, wb in zip(g_weights(tmp_path / "a"), g_weights(tmp_path / "b")):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)
    # And training did change G (else the comparison above would prove nothing).
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["run"]["steps"] == 4
    assert sorted(os.listdir(tmp_path / "a" / "samples")) == ["step_0000002.png", "step_0000004.png"]


def test_workdir_with_another_model_config_is_refused(tmp_path):
    cfg = tiny_config(1)
    (tmp_path / "config.json").write_text(cfg.to_json())
    other = tiny_config(1)
    other.model.width_mult = 0.5
    with pytest.raises(ValueError, match="another model config"):
        train_lib.train(other, str(tmp_path), dataset=in_memory_dataset())


def test_unwritable_workdir_fails_at_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RuntimeError, match="not writable"):
        train_lib.check_workdir(str(blocker / "run"))


def test_linear_decay_second_half():
    sched = train_lib.linear_decay_second_half(2e-4, 100)
    # Constant for the first 50 updates, then linear to 0 at 100.
    assert float(sched(0)) == pytest.approx(2e-4)
    assert float(sched(50)) == pytest.approx(2e-4)
    assert float(sched(75)) == pytest.approx(1e-4)
    assert float(sched(100)) == pytest.approx(0.0)


def run(args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600, **kw)


def test_train_main_end_to_end_resume_and_generate(tmp_path):
    """train_main.py on the embedded font dataset (tiny config), resume, then generate."""
    work, data = tmp_path / "w", tmp_path / "tfds"
    common = ["train_main.py", "--dataset=handwriting_fonts", "--config=smoke",
              "--config_override=data.builder_config=tiny", "--config_override=optim.g_every=2",
              "--config_override=data.batch_size=2", f"--workdir={work}", f"--data_dir={data}"]
    first = run([*common, "--steps=2"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Starting a new run" in first.stdout
    second = run([*common, "--steps=3"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "at step 2" in second.stdout and "done: step 3" in second.stdout, second.stdout
    assert tf.train.latest_checkpoint(str(work / "checkpoints")).endswith("ckpt-3")
    assert (work / "samples" / "step_0000003.png").exists()
    out = tmp_path / "hello.png"
    gen = run(["-m", "scrabblegan_tf.generate", f"--workdir={work}", "--text=hello world",
               "--seed=7", f"--out={out}"])
    assert gen.returncode == 0, gen.stderr[-3000:]
    im = np.asarray(Image.open(out))
    assert im.shape == (32, 16 * len("hello world"))
    again = tmp_path / "again.png"
    run(["-m", "scrabblegan_tf.generate", f"--workdir={work}", "--text=hello world", "--seed=7",
         f"--out={again}"])
    np.testing.assert_array_equal(np.asarray(Image.open(again)), im)  # same seed, same image
    bad = run(["-m", "scrabblegan_tf.generate", f"--workdir={work}", "--text=h€llo",
               f"--out={tmp_path / 'bad.png'}"])
    assert bad.returncode != 0 and "€" in (bad.stderr + bad.stdout)


def test_checkpoints_hold_every_model_weight(tmp_path):
    """Every weight of G, D and R (trainable or not: batch-norm statistics, spectral-norm u vectors)
    is in a tf.train.Checkpoint of the model alone. Keras 3 lists of layers are invisible to
    tf.train.Checkpoint, so the models keep their blocks as attributes; this pins that."""
    from scrabblegan_tf.model_factory import make_discriminator, make_generator, make_recognizer

    cfg = config_lib.get_config("smoke")
    g = make_generator(cfg.model, 81)
    d = make_discriminator(cfg.model)
    r = make_recognizer(cfg.model, 81)
    x = g((np.ones((1, 2), np.int32), np.array([2]), np.zeros((1, cfg.model.z_dim), np.float32)))
    d((x, None))
    r(x)
    for i, model in enumerate((g, d, r)):
        path = tf.train.Checkpoint(model=model).save(str(tmp_path / f"m{i}" / "ckpt"))
        saved = [n for n, _ in tf.train.list_variables(path) if n.startswith("model/")]
        assert len(saved) == len(model.weights), model.name
