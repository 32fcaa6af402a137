"""A run folder on disk: its settings files, atomic writes and its checkpoints.

Every run folder of the project (a GAN training run, an HTR run, a model folder) holds a config
file (``config.json``; the HTR's ``htr_config.json``) and ``alphabet.json``; training runs hold
``checkpoints/`` (``tf.train.CheckpointManager``). Reading and writing them goes through here:

- ``atomic_path`` / ``write_text`` / ``write_bytes``: temp file + rename, so that a reader never
  sees half a file (every file the project writes goes through them);
- ``read_settings``: the config text and the alphabet, or one ``FileNotFoundError`` naming what
  is missing (the CLIs show it as one line);
- ``restore``: the newest readable checkpoint of a folder. A truncated or corrupt latest checkpoint
  (a disk that filled up, a copy cut short) is reported and the previous one is used; only when
  none can be read does it fail.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

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
    from scrabblegan_tf.alphabet import Alphabet

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


def write_settings(workdir: str, config_text: str, alphabet_json: str,
                   config_file: str = CONFIG_FILE) -> None:
    write_text(os.path.join(workdir, config_file), config_text)
    write_text(os.path.join(workdir, ALPHABET_FILE), alphabet_json)


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(workdir, CHECKPOINTS)


def checkpoints(directory: str) -> list[str]:
    """The checkpoints the manager of ``directory`` keeps, newest first ([] when none)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    paths = [p if os.path.isabs(p) else os.path.join(directory, p) for p in paths]
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
    import tensorflow as tf

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
