"""Fault tolerance: runs killed (SIGKILL) or stopped (SIGTERM) at random moments resume from their
last checkpoint to the same final step, with readable checkpoints and no lost or partial files; the
SIGTERM handler is put back after training; a workdir that is read-only or too full fails at start.

The kill test runs the training in subprocesses (a tiny config, ``g_every`` 1, a checkpoint every
iteration so that kills often land in the middle of a save); the delays before each signal come from
a seeded RNG. Each process costs a start-up and a trace (~20 s on 2 busy cores), so 3 interrupted
runs + 1 final run is most of this file's time.
"""

from __future__ import annotations

import errno
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from scrabblegan_tf.core import run_folder
from scrabblegan_tf.training import gan_training as train_lib
from train_helpers import in_memory_dataset, tiny_config

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 8
SAMPLE_EVERY = 3

SCRIPT = textwrap.dedent(r'''
    import sys
    import tensorflow as tf
    # Eager: no trace per process (start-up dominates otherwise); what is tested here (signals,
    # checkpoint and sample files, resume) happens outside the traced step anyway.
    tf.config.run_functions_eagerly(True)
    sys.path.insert(0, sys.argv[1])
    from train_helpers import in_memory_dataset, tiny_config
    from scrabblegan_tf.training import gan_training as train_lib

    cfg = tiny_config(int(sys.argv[3]))
    cfg.optim.g_every = 1
    cfg.run.checkpoint_every = 1
    cfg.run.keep_checkpoints = 2
    cfg.run.sample_every = int(sys.argv[4])
    result = train_lib.train(cfg, sys.argv[2], dataset=in_memory_dataset(),
                             log=lambda m: print(m, flush=True))
    sys.exit(train_lib.EXIT_SIGTERM if result.interrupted else 0)
''')


class Run:
    """A training subprocess whose output lines are collected by a thread."""

    def __init__(self, workdir):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(REPO / "tests"), str(workdir), str(STEPS),
             str(SAMPLE_EVERY)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line {prefix!r}:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.05)

    def finish(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.close()
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=10)
        self.proc.stdout.close()

    @property
    def text(self):
        return "\n".join(self.lines)


def _assert_checkpoint_readable(ckpt_dir) -> str:
    """The manager's latest checkpoint exists and every tensor in it reads back (the input
    iterator's state is a variant tensor that only a restore reads: the next run does that)."""
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    assert latest, os.listdir(ckpt_dir)
    reader = tf.train.load_checkpoint(latest)
    dtypes = reader.get_variable_to_dtype_map()
    assert any(n.startswith("generator/") for n in dtypes)
    for name, dtype in dtypes.items():
        if dtype != tf.variant:
            reader.get_tensor(name)
    return latest


def _resumed_step(text: str) -> int:
    line = next((m for m in text.splitlines() if m.startswith("Resumed from")), None)
    return int(line.rsplit(" ", 1)[1]) if line else 0


def test_killed_and_terminated_runs_resume_to_the_same_final_step(tmp_path):
    """SIGKILL, SIGTERM, SIGKILL at seeded random moments of training (so also in the middle of
    checkpoint and sample writes), then an undisturbed run: it ends at STEPS with every sample of
    the run, readable checkpoints after every interruption and no partial files left."""
    work = tmp_path / "run"
    ckpt_dir = work / "checkpoints"
    rng = random.Random(1234)
    resumed_from = []
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL):
        run = Run(work)
        try:
            run.wait_for("step ", timeout=90)  # training iterations are running now
            time.sleep(rng.uniform(0.0, 3.0))
            run.proc.send_signal(sig)
            rc = run.finish(timeout=60)
        finally:
            run.close()
        resumed_from.append(_resumed_step(run.text))
        assert "done: step" not in run.text, "the run ended before the signal: raise STEPS"
        latest = _assert_checkpoint_readable(ckpt_dir)
        if sig == signal.SIGTERM:
            assert rc == train_lib.EXIT_SIGTERM, run.text[-3000:]
            saved = [m for m in run.lines if m.startswith("SIGTERM: saved checkpoint at step")]
            assert len(saved) == 1, run.text[-3000:]
            assert latest.endswith(f"ckpt-{saved[0].rsplit(' ', 1)[1]}")
        else:
            assert rc == -signal.SIGKILL
    final = Run(work)
    try:
        rc = final.finish(timeout=120)
    finally:
        final.close()
    assert rc == 0, final.text[-3000:]
    resumed_from.append(_resumed_step(final.text))
    assert f"done: step {STEPS}" in final.text
    # Every run went on from where the previous one got to (the SIGTERM run saved its last step).
    assert resumed_from == sorted(resumed_from) and resumed_from[-1] > 0, resumed_from
    assert _assert_checkpoint_readable(ckpt_dir).endswith(f"ckpt-{STEPS}")
    want = {f"step_{s:07d}.png" for s in range(SAMPLE_EVERY, STEPS + 1, SAMPLE_EVERY)}
    want.add(f"step_{STEPS:07d}.png")
    assert set(os.listdir(work / "samples")) == want
    for name in want:
        with Image.open(work / "samples" / name) as im:
            im.load()  # a complete PNG
    leftovers = [str(p) for p in work.rglob("*") if "_temp" in p.name or ".tmp" in p.name]
    assert not leftovers, leftovers
    # The handler is put back after training: a run that has nothing left to do (no trace) does
    # not leave its SIGTERM handler behind.
    def previous(signum, frame):
        pass

    old = signal.signal(signal.SIGTERM, previous)
    try:
        cfg = tiny_config(STEPS)
        cfg.optim.g_every = 1
        res = train_lib.train(cfg, str(work), dataset=in_memory_dataset(), log=lambda m: None)
        assert res.step == STEPS and not res.interrupted
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


# -- disk ----------------------------------------------------------------------------------------
class _StatVfs:
    def __init__(self, free_bytes):
        self.f_frsize = 4096
        self.f_bavail = free_bytes // 4096


def test_full_filesystem_fails_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "statvfs", lambda path: _StatVfs(10 * 2**20))  # 10 MiB free
    run_folder.check_workdir(str(tmp_path), required_bytes=5 * 2**20)  # fits
    with pytest.raises(RuntimeError, match=r"has 10 MiB free, but the run needs about 20 MiB"):
        run_folder.check_workdir(str(tmp_path), required_bytes=20 * 2**20)


def test_train_refuses_a_workdir_without_room_for_its_checkpoints(tmp_path, monkeypatch):
    """The check runs after the models are built (the estimate is the size of every variable:
    weights, Adam slots, plus the input iterator), before any training iteration."""
    monkeypatch.setattr(os, "statvfs", lambda path: _StatVfs(2**20))  # 1 MiB free
    logs = []
    with pytest.raises(RuntimeError, match="MiB free, but the run needs about"):
        train_lib.train(tiny_config(2), str(tmp_path), dataset=in_memory_dataset(),
                        log=logs.append)
    assert not (tmp_path / "checkpoints").exists()
    assert not any(m.startswith("step") for m in logs)


def test_read_only_workdir_fails_at_start(tmp_path, monkeypatch):
    """Tests run as root, for whom chmod does not block writes: the read-only filesystem is
    simulated by an open() that fails like one (EROFS)."""
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(run_folder, "open", read_only, raising=False)
    with pytest.raises(RuntimeError, match="not writable.*Read-only file system"):
        run_folder.check_workdir(str(tmp_path))


def test_checkpoint_disk_need():
    # 3 kept + 1 being written, nothing there yet
    assert run_folder.checkpoint_disk_need(100, keep=3, existing_bytes=0) == 400
    # the 3 checkpoints already there will be rotated out: one more is needed
    assert run_folder.checkpoint_disk_need(100, keep=3, existing_bytes=300) == 100
    assert run_folder.checkpoint_disk_need(100, keep=3, existing_bytes=1000) == 100


def test_variables_bytes_matches_a_saved_checkpoint(tmp_path):
    """The estimate's main term is exact: a checkpoint of variables holds their bytes (+ a small
    index)."""
    vs = [tf.Variable(np.zeros((300, 100), np.float32)), tf.Variable(np.zeros((7,), np.int64))]
    assert run_folder.variables_bytes(vs) == 300 * 100 * 4 + 7 * 8
    path = tf.train.Checkpoint(a=vs[0], b=vs[1]).write(str(tmp_path / "ckpt"))
    data = sum(p.stat().st_size for p in tmp_path.glob("ckpt.data-*"))
    assert run_folder.variables_bytes(vs) <= data < 1.05 * run_folder.variables_bytes(vs) + 1024
    assert path
