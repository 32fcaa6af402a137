"""A run folder on disk: its settings files, atomic writes and its checkpoints.

Every run folder of the project (a GAN training run, an HTR run, a model folder) holds a config
file (``config.json``; the HTR's ``htr_config.json``) and ``alphabet.json``; training runs hold
``checkpoints/`` (``tf.train.CheckpointManager``). Reading and writing them goes through here:

- ``atomic_path`` / ``write_text`` / ``write_bytes``: temp file + rename, so that a reader never
  sees half a file (every file the project writes goes through them);
- ``read_settings``: the config text and the alphabet, or one ``FileNotFoundError`` naming what
  is missing (the CLIs show it as one line);
- ``Checkpoints``: a training run's checkpoints (free-space check, leftovers of killed writes,
  resume, keep-N saves), used by the GAN and the HTR training;
- ``restore``: the newest readable checkpoint of a folder. A truncated or corrupt latest checkpoint
  (a disk that filled up, a copy cut short) is reported and the previous one is used; only when
  none can be read does it fail.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import shutil
from typing import Callable, Iterator

import tensorflow as tf

from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.errors import WorkdirError

CONFIG_FILE = "config.json"
ALPHABET_FILE = "alphabet.json"
CHECKPOINTS = "checkpoints"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path beside ``path`` (ending in ``suffix``, e.g. ``.npz`` for numpy) to
    write to; renamed to ``path`` when the block ends normally, removed when it raises."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def write_bytes(path: str, data: bytes) -> str:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return str(path)


def read_settings(workdir: str, config_file: str = CONFIG_FILE, *, kind: str = "run folder"):
    """(config text, ``Alphabet``) of ``workdir``; FileNotFoundError naming the missing files."""
    paths = [os.path.join(workdir, n) for n in (config_file, ALPHABET_FILE)]
    missing = [os.path.basename(p) for p in paths if not os.path.isfile(p)]
    if missing:
        what = "does not exist" if not os.path.isdir(workdir) else f"has no {' or '.join(missing)}"
        raise FileNotFoundError(f"{workdir} is not a {kind}: it {what}")
    with open(paths[0], encoding="utf-8") as f:
        config_text = f.read()
    with open(paths[1], encoding="utf-8") as f:
        alphabet = Alphabet.from_json(f.read())
    return config_text, alphabet


def check_compatible(workdir: str, new, *, parse: Callable[[str], object],
                     config_file: str = CONFIG_FILE, what: str = "model config",
                     hint: str = "use a new --workdir") -> None:
    """ValueError when ``workdir`` holds a run whose config file, read by ``parse`` (config text ->
    the part that must match, e.g. the model config), differs from ``new``; nothing for a new
    folder. Resuming with another network would fail deep inside the checkpoint restore."""
    path = os.path.join(workdir, config_file)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = parse(f.read())
    if old != new:
        raise ValueError(f"{workdir} holds a run with another {what} ({path}); {hint}.")


def write_settings(workdir: str, config_text: str, alphabet_json: str,
                   config_file: str = CONFIG_FILE) -> None:
    write_text(os.path.join(workdir, config_file), config_text)
    write_text(os.path.join(workdir, ALPHABET_FILE), alphabet_json)


def check_workdir(workdir: str, required_bytes: int = 0) -> None:
    """Fails early, with a clear message, if the workdir cannot be written or (``required_bytes``
    > 0) its filesystem has less free space than that."""
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_probe_{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"x" * 4096)
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(f"Workdir {workdir!r} is not writable: {e}") from e
    if required_bytes > 0:
        st = os.statvfs(workdir)
        free = st.f_bavail * st.f_frsize
        if free < required_bytes:
            raise WorkdirError(
                f"Workdir {workdir!r} has {free / 2**20:,.0f} MiB free, but the run needs about "
                f"{required_bytes / 2**20:,.0f} MiB for its checkpoints (see the log line "
                f"'disk:'); free some space, lower run.keep_checkpoints or use another --workdir.")


def variables_bytes(variables) -> int:
    """Bytes of the values of ``variables`` (what a checkpoint stores for them)."""
    return sum(math.prod(v.shape) * tf.as_dtype(v.dtype).size for v in variables)


def folder_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def checkpoint_disk_need(checkpoint_bytes: int, keep: int, existing_bytes: int) -> int:
    """Free bytes a run needs for its checkpoints: ``keep + 1`` of them can exist at once (the
    manager writes a new one before deleting the oldest); the ones already in the workdir will be
    rotated out, so their space counts as available. At least one checkpoint's worth."""
    return max(checkpoint_bytes, (keep + 1) * checkpoint_bytes - existing_bytes)


def reserve_checkpoint_space(workdir: str, variables, keep: int, *, extra_bytes: int = 0,
                             check: bool = True, log: Callable[[str], None] = print) -> int:
    """Fails now (``WorkdirError``) rather than at the first save if ``keep`` checkpoints of
    ``variables`` (+ ``extra_bytes`` each, e.g. an input iterator's state, + 1% bookkeeping) and
    the one being written do not fit; returns the bytes needed. ``check=False``: only log."""
    ckpt_bytes = int(1.01 * variables_bytes(variables)) + int(extra_bytes)
    need = checkpoint_disk_need(ckpt_bytes, keep, folder_bytes(checkpoint_dir(workdir)))
    log(f"disk: about {ckpt_bytes / 2**20:,.0f} MiB per checkpoint, {need / 2**20:,.0f} MiB needed "
        f"free for {keep} kept + 1 being written")
    check_workdir(workdir, required_bytes=need if check else 0)
    return need


def remove_partial_files(workdir: str, log: Callable[[str], None] = print) -> None:
    """Leftovers of a process killed while writing: temporary files of ``atomic_path`` (samples,
    JSON, npz) and checkpoint shards not yet merged (``ckpt-N_temp/``). None of
    them is ever read; removed so that a killed-and-resumed run leaves a clean workdir."""
    patterns = ("*.tmp*", "samples/*.tmp*", "heldout/*.tmp*", "checkpoints/*_temp",
                "checkpoints/*.tmp*")
    for path in sorted(p for pat in patterns for p in glob.glob(os.path.join(workdir, pat))):
        log(f"removing {path} (left by an interrupted write)")
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(workdir, CHECKPOINTS)


def checkpoints(directory: str) -> list[str]:
    """The checkpoints the manager of ``directory`` keeps, newest first ([] when none)."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    # get_checkpoint_state has already prefixed relative entries with ``directory`` (itself
    # relative when the workdir is given relative: joining again would look in dir/dir/).
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    return sorted(dict.fromkeys(paths), key=_number, reverse=True)


def _number(path: str) -> int:
    tail = path.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def restore(checkpoint, directory: str, *, partial: bool = False,
            log: Callable[[str], None] = print) -> str | None:
    """Restores ``checkpoint`` (a ``tf.train.Checkpoint``) from the newest readable checkpoint of
    ``directory``; returns its path, or None when the folder holds none. An unreadable one is
    reported through ``log`` and the previous one is tried. ``partial``: the checkpoint may hold
    more objects than ``checkpoint`` (e.g. G alone out of a training checkpoint)."""
    candidates = checkpoints(directory)
    errors = []
    for path in candidates:
        try:
            status = checkpoint.restore(path)
            if partial:
                status.expect_partial()
            status.assert_existing_objects_matched()
        # A truncated data file raises IndexError ("Read less bytes than requested"), a missing
        # index NotFoundError, a foreign file DataLossError, another model AssertionError.
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as e:
            reason = " ".join(str(e).split())[:200]
            errors.append(f"{path}: {reason}")
            log(f"warning: checkpoint {path} cannot be read ({type(e).__name__}: {reason}); "
                f"trying the previous one")
            continue
        if errors:
            log(f"restored {path} instead of the newest checkpoint, which cannot be read")
        return path
    if errors:
        raise ValueError(f"No readable checkpoint in {directory}: " + "; ".join(errors))
    return None


def restore_trained(checkpoint, workdir: str, path: str | None = None,
                    log: Callable[[str], None] = print) -> str:
    """Restores part of a training checkpoint (e.g. G alone, for inference) from ``path``, or from
    the newest readable checkpoint of ``workdir``; returns the path. FileNotFoundError if none."""
    if path:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
        return path
    path = restore(checkpoint, checkpoint_dir(workdir), partial=True, log=log)
    if not path:
        raise FileNotFoundError(f"No checkpoint in {checkpoint_dir(workdir)}")
    return path


class Checkpoints:
    """The checkpoints of a training run in ``workdir/checkpoints``: on creation, leftovers of killed
    writes are removed and the free space for ``keep`` + 1 checkpoints of ``variables`` (+
    ``extra_bytes`` each) is checked (``WorkdirError``); ``restore()`` resumes from the newest
    readable one (falling back to the previous one with a message), ``save(step)`` writes
    ``ckpt-<step>`` and keeps the newest ``keep``. A checkpoint becomes the latest only once
    completely written (the manager updates its state file after the data and index files).

    Multi-worker runs: ``chief=False`` on the other workers (they only log the space figures and
    save into ``write_dir``, a temporary folder of theirs; everybody restores the chief's)."""

    def __init__(self, checkpoint: tf.train.Checkpoint, workdir: str, *, keep: int, variables=None,
                 extra_bytes: int = 0, chief: bool = True, write_dir: str | None = None,
                 log: Callable[[str], None] = print):
        self.checkpoint = checkpoint
        self.directory = checkpoint_dir(workdir)
        self.log = log
        if chief:
            remove_partial_files(workdir, log)
        if variables is not None:  # None: no space check (tests, tools writing one small checkpoint)
            reserve_checkpoint_space(workdir, variables, keep, extra_bytes=extra_bytes, check=chief,
                                     log=log)
        else:
            check_workdir(workdir)
        self.manager = tf.train.CheckpointManager(checkpoint, write_dir or self.directory,
                                                  max_to_keep=keep)

    def restore(self) -> str | None:
        """Restores the newest readable checkpoint; its path, or None for a new run."""
        return restore(self.checkpoint, self.directory, log=self.log)

    def latest(self) -> str | None:
        """The newest checkpoint of the run (None when there is none)."""
        return tf.train.latest_checkpoint(self.directory)

    def latest_step(self) -> int | None:
        latest = self.latest()
        return _number(latest) if latest else None

    def save(self, step: int) -> str:
        """Writes the checkpoint of ``step``; its path."""
        return self.manager.save(checkpoint_number=step)
