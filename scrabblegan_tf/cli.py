"""What every command-line entry point shares: a quiet start, absl flags, one-line errors.

``run(main, define_flags)`` is the body of each console script (``scrabblegan-generate``, ...) and of
each ``python -m scrabblegan_tf.<module>``:

- **quiet**: TensorFlow's C++ start-up lines (oneDNN, CUDA stubs, ``failed call to cuInit``, CPU
  instruction notices) and absl's INFO lines are hidden. ``TF_CPP_MIN_LOG_LEVEL`` alone does not
  hide the lines TF's shared libraries print while they load (before ``absl::InitializeLog``), so
  standard error is sent to a temporary file while ``tensorflow`` is imported, and replayed if the
  import fails, and ``TF_CPP_MIN_LOG_LEVEL`` is 3 (on a machine without a GPU, TF logs ``failed
  call to cuInit`` as an error). ``--verbose`` or ``SCRABBLEGAN_VERBOSE=1`` bring everything back,
  with the user's own ``TF_CPP_MIN_LOG_LEVEL``;
- **memory**: in training commands, freed tensor buffers go back to the system (``core.memory``,
  glibc's ``mallopt``);
- **errors**: bad input (``UserError``, ``FileNotFoundError``, ``ValueError``, ``WorkdirError``) ends the command with
  ``error: <one line>`` on standard error and exit status 2 (``EXIT_USAGE``), no traceback
  (``--verbose`` shows it).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Callable

from scrabblegan_tf.core import memory, progress
from scrabblegan_tf.core.errors import UserError, WorkdirError

EXIT_USAGE = 2  # bad input, as absl's usage errors
VERBOSE_ENV = progress.VERBOSE_ENV


# The exceptions shown as one line: bad input reaches the CLIs as one of these (WorkdirError: a
# run folder that is not writable or has no room for the checkpoints).
QUIET_ERRORS = (UserError, FileNotFoundError, NotADirectoryError, ValueError, WorkdirError)


def wants_verbose(argv: list[str], environ=os.environ) -> bool:
    """``--verbose`` (or ``--verbose=true``/``1``) in ``argv``, or ``SCRABBLEGAN_VERBOSE`` set to a
    true value."""
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg == "--verbose" or arg.lower() in ("--verbose=true", "--verbose=1"):
            return True
    return progress.verbose(environ)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines hidden (see the module docstring)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run(main: Callable[[list[str]], int | None], define_flags: Callable[[], None] | None = None,
        argv: list[str] | None = None, *, tensorflow: bool = True,
        trains: bool = False) -> None:
    """Defines the flags, parses ``argv`` (default ``sys.argv``) and calls ``main`` (absl's app).
    ``tensorflow=False``: a command that never imports TensorFlow (the serving client).
    ``trains``: a training command; freed tensor buffers go back to the system
    (``core.memory``; inference commands keep glibc's defaults, a few % faster per call)."""
    argv = list(sys.argv if argv is None else argv)
    verbose = wants_verbose(argv)
    if verbose:  # for the library's own checks (data.builders shows TFDS' progress output then)
        os.environ[VERBOSE_ENV] = "1"
    if tensorflow and trains:
        memory.return_freed_buffers()  # before TensorFlow's threads (core/memory.py)
    if tensorflow and not verbose:
        import_tensorflow_quietly()
    from absl import app, flags, logging

    if define_flags is not None:
        define_flags()
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, f"Show TensorFlow's start-up and INFO log lines and "
                          f"tracebacks of input errors (also: {VERBOSE_ENV}=1).")

    def _main(args):
        if not verbose:
            logging.set_verbosity(logging.WARNING)
        try:
            return main(args)
        except QUIET_ERRORS as e:
            if verbose:
                raise
            print(f"error: {one_line(e)}", file=sys.stderr)
            sys.exit(EXIT_USAGE)

    app.run(_main, argv=argv)


def one_line(error: BaseException) -> str:
    """The error's message on one line (a FileNotFoundError's path included)."""
    text = str(error) or type(error).__name__
    return " ".join(text.split())
