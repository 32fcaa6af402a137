"""The step loop shared by the GAN and HTR training (training/loop.py) and its progress display
(core/progress.py): hook schedule, checkpoints, SIGTERM, resume, rates and ETA."""

from __future__ import annotations

import os
import signal

import pytest
import tensorflow as tf

from scrabblegan_tf.core import progress as progress_lib
from scrabblegan_tf.core import run_folder
from scrabblegan_tf.training.loop import Hook, run_loop


def _checkpoints(tmp_path, counter):
    return run_folder.Checkpoints(tf.train.Checkpoint(step=counter), str(tmp_path), keep=2,
                                  log=lambda m: None)


def _run(tmp_path, *, total, start=0, stop_at=None, every=(2, 3), checkpoint_every=4, signal_at=None):
    counter = tf.Variable(start, dtype=tf.int64)
    ckpts = _checkpoints(tmp_path, counter)
    if start:
        ckpts.save(start)
    calls, logs = [], []

    def step_fn(step, stop_requested):
        counter.assign(step)
        calls.append(("step", step))
        if signal_at == step:
            os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler only sets a flag
        return step == stop_at

    hooks = [Hook(every[0], lambda s: calls.append(("a", s))),
             Hook(every[1], lambda s: calls.append(("b", s)), at_end=False)]
    progress = progress_lib.Progress(total, start=start, log=logs.append, bar=False)
    result = run_loop(step_fn, start=start, total=total, checkpoints=ckpts,
                      checkpoint_every=checkpoint_every, hooks=hooks, progress=progress)
    return result, calls, logs, ckpts


def test_hooks_fire_on_their_multiples_before_the_last_step_then_at_end(tmp_path):
    result, calls, logs, ckpts = _run(tmp_path, total=6)
    hooks = [c for c in calls if c[0] != "step"]
    # a every 2 (2, 4; 6 is the last step: at the end), b every 3 (3; not at_end)
    assert hooks == [("a", 2), ("b", 3), ("a", 4), ("a", 6)]
    assert [c[1] for c in calls if c[0] == "step"] == [1, 2, 3, 4, 5, 6]
    assert result.step == 6 and not result.interrupted and result.timed_steps == 5
    # checkpoints every 4 (4) and at the end (6), newest first
    assert [os.path.basename(p) for p in run_folder.checkpoints(ckpts.directory)] == ["ckpt-6", "ckpt-4"]
    assert logs[0].startswith("step 1: traced and ran the first step in")


def test_a_stop_saves_a_checkpoint_and_skips_the_end_hooks(tmp_path):
    result, calls, logs, ckpts = _run(tmp_path, total=10, stop_at=3)
    assert result.step == 3 and result.interrupted == "SIGTERM"
    assert [c for c in calls if c[0] != "step"] == [("a", 2), ("b", 3)]
    assert ckpts.latest_step() == 3
    assert "SIGTERM: saved checkpoint at step 3" in logs


def test_sigterm_is_caught_and_the_previous_handler_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    result, _, _, ckpts = _run(tmp_path, total=10, signal_at=5)
    assert result.step == 5 and result.interrupted == "SIGTERM" and ckpts.latest_step() == 5
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_finished_run_resumed_does_nothing(tmp_path):
    result, calls, _, ckpts = _run(tmp_path, total=4, start=4)
    assert calls == [] and result.step == 4 and ckpts.latest_step() == 4


def test_resume_continues_from_start(tmp_path):
    result, calls, _, ckpts = _run(tmp_path, total=7, start=4)
    assert [c for c in calls if c[0] == "step"] == [("step", 5), ("step", 6), ("step", 7)]
    assert [c for c in calls if c[0] != "step"] == [("a", 6), ("b", 6), ("a", 7)]
    assert ckpts.latest_step() == 7


def test_progress_report_line_rates_and_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_lib.time, "perf_counter", lambda: now[0])
    logs = []
    p = progress_lib.Progress(100, start=0, per_step={"img/s": 8}, log=logs.append, bar=False)
    now[0] = 101.0
    p.start_timing(1)  # the first (tracing) step took 1 s: not counted
    now[0] = 111.0  # 10 more steps in 10 s -> 1 step/s, 89 steps left -> 1:29
    rate = p.report(11, {"loss": 0.123456, "lr": 2e-4})
    assert rate == pytest.approx(1.0)
    assert logs == ["step 11/100  1.00 it/s  8.0 img/s  ETA 1:29  loss 0.1235  lr 2.00e-04"]
    # 5 s of validation inside paused() are neither in the rate nor in the ETA
    with p.paused():
        now[0] = 116.0
    now[0] = 126.0  # 10 steps in 10 s of training
    p.report(21, {})
    assert logs[-1] == "step 21/100  1.00 it/s  8.0 img/s  ETA 1:19"


def test_format_figures():
    assert progress_lib.format_figures({"a": 1.0, "b": 5e-5, "c": 3, "d": "x"}) == \
        "a 1.0000  b 5.00e-05  c 3  d x"
