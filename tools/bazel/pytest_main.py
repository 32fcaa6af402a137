"""Entry point of the Bazel py_test targets made by //tools/bazel:defs.bzl%pytest_tests.

Runs pytest on the test file(s) given as arguments (paths relative to the test's working directory,
the main workspace's runfiles folder) and exits with pytest's code, so a file that collects no test
fails (code 5) instead of passing silently.
"""

from __future__ import annotations

import os
import sys


def pytest_args(argv: list[str], environ: dict[str, str]) -> list[str]:
    """The pytest command line for one Bazel test run."""
    args = list(argv)
    # Bazel's runfiles are read-only inputs: no .pytest_cache there.
    args += ["-p", "no:cacheprovider"]
    xml = environ.get("XML_OUTPUT_FILE")
    if xml:
        args += ["--junitxml", xml]
    test_filter = environ.get("TESTBRIDGE_TEST_ONLY")  # bazel test --test_filter=EXPR
    if test_filter:
        args += ["-k", test_filter]
    return args


def shared_dir_default(environ: dict[str, str]) -> str | None:
    """Where the `@shared` repository (../shared beside the checkout) lies in the runfiles."""
    srcdir = environ.get("TEST_SRCDIR") or environ.get("RUNFILES_DIR")
    if not srcdir:
        return None
    path = os.path.join(srcdir, "shared")
    return path if os.path.isdir(path) else None


def environment_defaults(environ: dict[str, str]) -> dict[str, str]:
    """Variables to set for the tests: SCRABBLEGAN_SHARED_DIR (../shared in the runfiles) unless
    given, and HOME, which Bazel 4 leaves unset, as the test's private TEST_TMPDIR (so ~/.keras,
    ~/tensorflow_datasets never land in the real home)."""
    out = {}
    shared = shared_dir_default(environ)
    if shared and not environ.get("SCRABBLEGAN_SHARED_DIR"):
        out["SCRABBLEGAN_SHARED_DIR"] = shared
    if not environ.get("HOME") and environ.get("TEST_TMPDIR"):
        out["HOME"] = environ["TEST_TMPDIR"]
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print("pytest_main.py: no test file given", file=sys.stderr)
        return 2
    os.environ.update(environment_defaults(os.environ))
    import pytest  # the toolchain runs the project's .venv, where pytest is installed

    return int(pytest.main(pytest_args(argv, os.environ)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
