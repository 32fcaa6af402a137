"""The shared command-line behaviour (scrabblegan_tf/cli.py): quiet start, one-line errors with exit
status 2, --verbose; and every CLI module imports without TensorFlow, so that the quiet import in
``cli.run`` comes first."""

import os
import pathlib
import subprocess
import sys

import pytest

from scrabblegan_tf import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", cli.VERBOSE_ENV)}
CLI_MODULES = ["scrabblegan_tf.train_cli", "scrabblegan_tf.generate", "scrabblegan_tf.synthesize",
               "scrabblegan_tf.serving.export_main", "scrabblegan_tf.serving.client",
               "scrabblegan_tf.htr", "scrabblegan_tf.pretrained",
               "scrabblegan_tf.experiments.legibility.__main__", "scrabblegan_tf.experiments.semi_supervised",
               "scrabblegan_tf.experiments.htr_augmentation.__main__"]

# A command whose main fails on bad input, run through cli.run.
FAILING = """
import sys
from scrabblegan_tf import cli

def main(argv):
    print("started")
    raise cli.UserError("unknown characters: '€'\\n(in: h€llo)")

cli.run(main, None, ["prog", *sys.argv[1:]])
"""


def python(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env=env or ENV, timeout=300)


def test_wants_verbose():
    assert cli.wants_verbose(["p", "--verbose"], environ={})
    assert cli.wants_verbose(["p", "--x=1", "--verbose=true"], environ={})
    assert not cli.wants_verbose(["p", "--noverbose"], environ={})
    assert not cli.wants_verbose(["p", "--", "--verbose"], environ={})  # after --: not a flag
    assert cli.wants_verbose(["p"], environ={cli.VERBOSE_ENV: "1"})
    assert not cli.wants_verbose(["p"], environ={"TF_CPP_MIN_LOG_LEVEL": "0"})


def test_one_line():
    assert cli.one_line(ValueError("a\n  b\tc ")) == "a b c"
    assert cli.one_line(cli.UserError()) == "UserError"


def test_user_error_is_one_line_with_exit_status_2():
    proc = python("-c", FAILING)
    assert proc.returncode == cli.EXIT_USAGE == 2
    assert proc.stdout == "started\n"
    # Nothing but the error: no traceback, no TensorFlow start-up lines.
    assert proc.stderr == "error: unknown characters: '€' (in: h€llo)\n"


def test_verbose_shows_the_traceback():
    proc = python("-c", FAILING, "--verbose")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "UserError: unknown characters" in proc.stderr


def test_quiet_import_hides_the_start_up_lines_at_any_user_log_level():
    code = ("import os; from scrabblegan_tf import cli; cli.import_tensorflow_quietly(); "
            "import tensorflow as tf; tf.constant(1.0) + 1; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    proc = python("-c", code)
    assert proc.returncode == 0 and proc.stdout == "3\n" and proc.stderr == "", proc.stderr
    # Level 2 would still show "failed call to cuInit" (an error) on machines without a GPU.
    proc = python("-c", code, env=dict(ENV, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0 and proc.stdout == "3\n" and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_module_imports_without_tensorflow(module):
    proc = python("-c", f"import sys, {module}; print('tensorflow' in sys.modules)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "False\n"


def test_generate_rejects_unknown_characters_in_one_line():
    proc = python("-m", "scrabblegan_tf.generate", "--text=h☃llo", "--out=/nonexistent/x.png")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot render 'h☃llo': characters outside the english "
                                  "alphabet: '☃'") and proc.stderr.count("\n") == 1, proc.stderr


def test_progress_duration_and_eta():
    from scrabblegan_tf.core import progress

    assert progress.duration(59.6) == "1:00" and progress.duration(3725) == "1:02:05"
    assert progress.duration(-3) == "0:00"
    assert progress.eta(100, 1000, 3.0) == "5:00"  # 900 steps at 3/s = 300 s
    assert progress.eta(10, 10, 1.0) == "0:00" and progress.eta(0, 10, 0.0) == "?"
