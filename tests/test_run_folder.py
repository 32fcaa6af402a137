"""Run folders (scrabblegan_tf/core/run_folder.py): atomic writes, settings files, and restoring the newest
readable checkpoint when the latest is truncated or corrupt."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.core import run_folder
from scrabblegan_tf.core.alphabet import Alphabet


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    path = str(tmp_path / "sub" / "a.txt")
    run_folder.write_text(path, "first")
    assert open(path, encoding="utf-8").read() == "first"
    with pytest.raises(RuntimeError):
        with run_folder.atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("half")
            raise RuntimeError("killed while writing")
    assert open(path, encoding="utf-8").read() == "first"  # untouched
    assert os.listdir(tmp_path / "sub") == ["a.txt"]  # no temp file left
    run_folder.write_bytes(path, b"\x00\x01")
    assert open(path, "rb").read() == b"\x00\x01"


def test_settings_round_trip_and_missing_files(tmp_path):
    abc = Alphabet("abcä")
    run_folder.write_settings(str(tmp_path), '{"x": 1}', abc.to_json())
    text, alphabet = run_folder.read_settings(str(tmp_path))
    assert text == '{"x": 1}' and alphabet.symbols == abc.symbols
    os.remove(tmp_path / run_folder.ALPHABET_FILE)
    with pytest.raises(FileNotFoundError, match=r"is not a run folder: it has no alphabet\.json"):
        run_folder.read_settings(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="HTR workdir: it does not exist"):
        run_folder.read_settings(str(tmp_path / "nope"), "htr_config.json", kind="HTR workdir")


def _saved_checkpoints(directory):
    """ckpt-1 holds v = 1, ckpt-2 holds v = 2 (a CheckpointManager keeping both)."""
    v = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), directory, max_to_keep=3)
    for step in (1, 2):
        v.assign(float(step))
        manager.save(checkpoint_number=step)
    return [os.path.join(directory, f"ckpt-{s}") for s in (1, 2)]


def _truncate(prefix):
    data = f"{prefix}.data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)


def test_restore_takes_the_newest_readable_checkpoint(tmp_path):
    first, second = _saved_checkpoints(str(tmp_path))
    assert run_folder.checkpoints(str(tmp_path)) == [second, first]  # newest first
    v = tf.Variable(-1.0)
    assert run_folder.restore(tf.train.Checkpoint(v=v), str(tmp_path), log=lambda m: None) == second
    assert float(v.numpy()) == 2.0

    _truncate(second)  # e.g. the disk filled up while a copy of the run was made
    logs = []
    v = tf.Variable(-1.0)
    assert run_folder.restore(tf.train.Checkpoint(v=v), str(tmp_path), log=logs.append) == first
    assert float(v.numpy()) == 1.0
    assert "cannot be read" in logs[0] and second in logs[0] and "previous" in logs[0]
    assert logs[-1].startswith(f"restored {first} instead of the newest")


def test_restore_from_a_relative_workdir(tmp_path, monkeypatch):
    """A run folder given relative to the working directory (``--workdir=runs/x``) is found and
    restored: the checkpoint state's entries are relative to the folder, not to the cwd."""
    _saved_checkpoints(str(tmp_path / "runs" / "x"))
    monkeypatch.chdir(tmp_path)
    rel = os.path.join("runs", "x")
    assert run_folder.checkpoints(rel) == [os.path.join(rel, "ckpt-2"), os.path.join(rel, "ckpt-1")]
    v = tf.Variable(-1.0)
    assert run_folder.restore(tf.train.Checkpoint(v=v), rel, log=lambda m: None) == os.path.join(rel, "ckpt-2")
    assert float(v.numpy()) == 2.0


def test_restore_fails_only_when_nothing_is_readable(tmp_path):
    assert run_folder.restore(tf.train.Checkpoint(v=tf.Variable(0.0)), str(tmp_path)) is None
    for prefix in _saved_checkpoints(str(tmp_path)):
        os.remove(f"{prefix}.index")  # corrupt: data without its index
    with pytest.raises(ValueError, match="No readable checkpoint"):
        run_folder.restore(tf.train.Checkpoint(v=tf.Variable(0.0)), str(tmp_path), log=lambda m: None)


def test_generate_falls_back_to_the_previous_training_checkpoint(tmp_path):
    """generation.load_generator on a training workdir whose latest checkpoint is truncated: the
    previous one is loaded (same images as loading it explicitly)."""
    from export_helpers import make_workdir
    from scrabblegan_tf.inference import generation

    workdir = make_workdir(tmp_path / "run")
    gen, _, alphabet, first = generation.load_generator(str(workdir), inference=False)
    ckpt = tf.train.Checkpoint(generator=gen)
    manager = tf.train.CheckpointManager(ckpt, run_folder.checkpoint_dir(str(workdir)), max_to_keep=3)
    for v in gen.trainable_variables:
        v.assign(v * 1.5)
    latest = manager.save(checkpoint_number=2)
    assert latest != first and run_folder.checkpoints(run_folder.checkpoint_dir(str(workdir)))[0] == latest
    _truncate(latest)
    _, _, _, path = generation.load_generator(str(workdir))
    assert path == first
    ref, *_ = generation.load_generator(str(workdir), checkpoint=first)
    got, *_ = generation.load_generator(str(workdir))
    a = generation.render(got, alphabet, ["ab"], seeds=[3])[0]
    b = generation.render(ref, alphabet, ["ab"], seeds=[3])[0]
    np.testing.assert_array_equal(a, b)


def test_remove_partial_files_and_reserve_space(tmp_path, monkeypatch):
    """Leftovers of a killed write are removed, finished files kept; the space check raises the
    one-line WorkdirError (a RuntimeError) the CLIs print without a traceback."""
    (tmp_path / "samples").mkdir()
    (tmp_path / "checkpoints" / "ckpt-3_temp").mkdir(parents=True)
    for name in ("config.json.tmp123", "samples/step_1.png.tmp9", "samples/step_1.png", "config.json"):
        (tmp_path / name).write_text("x")
    logs = []
    run_folder.remove_partial_files(str(tmp_path), logs.append)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["checkpoints", "config.json", "samples", "samples/step_1.png"]
    assert len(logs) == 3 and all("interrupted write" in m for m in logs)

    class StatVfs:
        f_frsize, f_bavail = 4096, 256  # 1 MiB free
    monkeypatch.setattr(os, "statvfs", lambda path: StatVfs())
    small = [tf.Variable(np.zeros((10,), np.float32))]
    need = run_folder.reserve_checkpoint_space(str(tmp_path), small, keep=2, log=logs.append)
    assert need == 3 * int(1.01 * 40)  # 2 kept + 1 being written, 40 bytes each (+1%)
    big = [tf.Variable(np.zeros((1024, 1024), np.float32))]  # 4 MiB per checkpoint
    with pytest.raises(run_folder.WorkdirError, match="MiB free, but the run needs about 12 MiB"):
        run_folder.reserve_checkpoint_space(str(tmp_path), big, keep=2, log=logs.append)
    assert issubclass(run_folder.WorkdirError, RuntimeError)


def test_check_compatible(tmp_path):
    """A new folder passes; a folder whose config parses to the same part passes; another part
    fails with one line naming the file."""
    parse = lambda text: json.loads(text)["model"]  # noqa: E731
    run_folder.check_compatible(str(tmp_path), {"w": 1}, parse=parse)  # no config.json yet
    run_folder.write_text(str(tmp_path / "config.json"), json.dumps({"model": {"w": 1}, "run": 5}))
    run_folder.check_compatible(str(tmp_path), {"w": 1}, parse=parse)
    with pytest.raises(ValueError, match=r"another model config \(.*config.json\); use a new --workdir"):
        run_folder.check_compatible(str(tmp_path), {"w": 2}, parse=parse)
