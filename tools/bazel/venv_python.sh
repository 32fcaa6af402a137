#!/bin/sh
# Interpreter of the Bazel Python toolchain (//tools/bazel:venv_python_toolchain): execs the project's
# virtual environment, <workspace>/.venv/bin/python (made by `make install`), so that TensorFlow and
# the other pinned packages import in py_binary / py_test targets.
# Bazel runs this file through a symlink (runfiles tree, sandbox) to tools/bazel/venv_python.sh in the
# source tree; resolving it gives the workspace. SCRABBLEGAN_VENV overrides the environment folder
# (pass it to tests with --test_env=SCRABBLEGAN_VENV=/abs/path).
set -eu
if [ -n "${SCRABBLEGAN_VENV:-}" ]; then
  venv=$SCRABBLEGAN_VENV
else
  self=$(readlink -f -- "$0")
  venv=$(dirname -- "$(dirname -- "$(dirname -- "$self")")")/.venv
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "venv_python.sh: $venv/bin/python not found: run 'make install' in the workspace (or set SCRABBLEGAN_VENV)" >&2
  exit 127
fi
exec "$venv/bin/python" "$@"
