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

from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.core import run_folder
from scrabblegan_tf.training import gan_training as train_lib
from scrabblegan_tf.data import inputs

REPO = pathlib.Path(__file__).resolve().parents[1]
from train_helpers import WORDS, in_memory_dataset, tiny_config  # noqa: F401 (re-exported)


def g_weights(workdir) -> list[np.ndarray]:
    from scrabblegan_tf.inference.generation import load_generator

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
    assert sorted(p for p in os.listdir(tmp_path / "a" / "samples") if p.startswith("step_")) == [
        "step_0000002.png", "step_0000004.png"]


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
        run_folder.check_workdir(str(blocker / "run"))


def test_linear_decay_second_half():
    sched = train_lib.linear_decay_second_half(2e-4, 100)
    # Constant for the first 50 updates, then linear to 0 at 100.
    assert float(sched(0)) == pytest.approx(2e-4)
    assert float(sched(50)) == pytest.approx(2e-4)
    assert float(sched(75)) == pytest.approx(1e-4)
    assert float(sched(100)) == pytest.approx(0.0)


def test_learning_rates_follow_the_training_step_not_each_optimizers_updates():
    """optim.lr_decay: every schedule reads the shared iteration counter, so D's rate (two updates
    per mini-batch with an unlabeled stream) is G's rate at every iteration. With steps = 10 and
    the counter at 7: 2e-4 * (1 - (7 - 5) / 5) = 1.2e-4 for all three, whatever their update
    counts."""
    import keras

    cfg = config_lib.smoke()
    cfg.run.steps = 10
    cfg.optim.lr_decay = True
    step = tf.Variable(0, dtype=tf.int64)
    g, d, r = train_lib.make_optimizers(cfg, step=step)
    v = tf.Variable([1.0])
    for opt, n in ((g, 1), (d, 6), (r, 3)):  # different numbers of updates
        for _ in range(n):
            opt.apply_gradients([(tf.constant([0.0]), v)])
    step.assign(7)
    rates = [float(keras.ops.convert_to_tensor(o.learning_rate)) for o in (g, d, r)]
    assert rates == pytest.approx([1.2e-4] * 3)
    step.assign(10)
    assert float(keras.ops.convert_to_tensor(d.learning_rate)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="step"):
        train_lib.make_optimizers(cfg)


def test_auto_lexicon_is_the_word_list_of_the_alphabet(tmp_path, monkeypatch):
    """data.lexicon=auto: the alphabet's system word list, letters-only words shorter than 20
    (the official code's filter), minus the held-out words; the labels for alphabets without a
    list or when the list is missing; "labels" forces the labels."""
    from scrabblegan_tf.core.alphabet import Alphabet

    words = tmp_path / "words"
    words.write_text("apple\nit's\nBob\nx2\n" + "a" * 19 + "\n" + "b" * 20 + "\nmoon\n")
    monkeypatch.setitem(inputs.DEFAULT_WORD_LISTS, "english", str(words))
    cfg = config_lib.smoke()
    english, german = Alphabet.preset("english"), Alphabet.preset("german")
    lex = inputs.make_lexicon(cfg, english, ["label"], exclude=["moon"])
    assert lex.words == ["apple", "Bob", "a" * 19]
    assert (lex.num_not_letters, lex.num_too_long, lex.num_excluded) == (2, 1, 1)
    assert inputs.make_lexicon(cfg, german, ["Hauptstraße"]).words == ["Hauptstraße"]
    cfg.data.lexicon = "labels"
    assert inputs.make_lexicon(cfg, english, ["label"]).words == ["label"]
    cfg.data.lexicon = "auto"
    monkeypatch.setitem(inputs.DEFAULT_WORD_LISTS, "english", str(tmp_path / "missing"))
    assert inputs.make_lexicon(cfg, english, ["label"]).words == ["label"]


def test_training_writes_the_legibility_signal(tmp_path):
    """run.eval_every: held-out words (absent from the fake-word lexicon) are read by R and by any
    extra reader; legibility.jsonl and a labelled grid per evaluation; R warm-up iterations update
    R only and count as iterations."""
    cfg = tiny_config(4)
    cfg.run.eval_every = 2
    cfg.run.eval_words = 3
    cfg.optim.r_warmup_steps = 1
    seen = []

    def reader(images):
        seen.append([im.shape for im in images])
        return ["x"] * len(images)

    logs = []
    res = train_lib.train(cfg, str(tmp_path), dataset=in_memory_dataset(),
                          eval_texts=["zebra", "quilt", "jam", "zebra"],
                          eval_readers={"fake": reader}, log=logs.append)
    assert res.step == 4
    lines = [json.loads(x) for x in (tmp_path / "legibility.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    assert {"cer_r", "cer_fake", "wer_r", "wer_fake", "minutes"} <= set(lines[0])
    # "x" for every word: CER = (edits of x -> word) / chars = (len(word) - 0 + 0)/... = 1 - 1/len
    # only when the word contains an "x"; none of jam/quilt/zebra does: all chars wrong, 1.0.
    assert lines[0]["cer_fake"] == pytest.approx(1.0)
    words = sorted(["jam", "quilt", "zebra"], key=len)
    assert [s[1] for s in seen[0]] == [16 * len(w) for w in words]
    assert (tmp_path / "samples" / "heldout_0000002.png").exists()
    assert any("R warm-up: iterations 1..1" in m for m in logs), logs
    assert any("3 of them held out" in m or "legibility signal: 3 held-out words" in m
               for m in logs), logs


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
    # Bad input: exit status 2 and one line naming the character, no traceback, no TF start-up noise.
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("error: cannot render 'h€llo': characters outside") and "€" in bad.stderr


def test_checkpoints_hold_every_model_weight(tmp_path):
    """Every weight of G, D and R (trainable or not: batch-norm statistics, spectral-norm u vectors)
    is in a tf.train.Checkpoint of the model alone. Keras 3 lists of layers are invisible to
    tf.train.Checkpoint, so the models keep their blocks as attributes; this pins that."""
    from scrabblegan_tf.models.factory import make_discriminator, make_generator, make_recognizer

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
