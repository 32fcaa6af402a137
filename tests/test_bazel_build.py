"""The Bazel build covers the tree (issue 8): every test file has its py_test, every module of the
library, the builders, export/ and bench/ is in a py_library, every CLI has a py_binary.

tools/bazel/check_build.py (standard library only) executes the BUILD files with Bazel's glob rules.
It runs here on the real tree, and on small fake trees that carry the real build files, to show that it
catches each kind of drift. Also: the pytest runner of the Bazel tests and the toolchain's interpreter
wrapper (tools/bazel/pytest_main.py, venv_python.sh).
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BAZEL_DIR = REPO / "tools" / "bazel"


def load_module(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


check_build = load_module("scrabblegan_bazel_check_build", BAZEL_DIR / "check_build.py")
pytest_main = load_module("scrabblegan_bazel_pytest_main", BAZEL_DIR / "pytest_main.py")

# The build's own files, copied into each fake tree.
BUILD_FILES = [
    "WORKSPACE", ".bazelrc", ".bazelignore", "BUILD", "bench/BUILD", "datasets/BUILD", "export/BUILD",
    "tests/BUILD", "tools/bazel/BUILD", "tools/bazel/defs.bzl", "tools/bazel/repos.bzl",
    "tools/bazel/pytest_main.py", "tools/bazel/check_build.py",
]
CLI = 'import sys\n\n\ndef main(argv):\n  return 0\n\n\nif __name__ == "__main__":\n  sys.exit(main(sys.argv))\n'
FAKE_FILES = {
    "train_main.py": CLI,
    "scrabblegan_tf/__init__.py": "",
    "scrabblegan_tf/generate.py": CLI,
    "scrabblegan_tf/htr/__init__.py": "",
    "scrabblegan_tf/htr/model.py": "import keras\n",
    "scrabblegan_tf/presets/small.json": "{}\n",
    "scrabblegan_tf/__pycache__/generate.cpython-311.pyc": "byte code",
    "datasets/_shared/utils.py": "",
    "datasets/toy/toy_dataset_builder.py": "",
    "datasets/toy/dummy_data/train.csv": "file_name,text\nw1/1_0.png,Ulm\n",
    "datasets/toy/dummy_data/w1/1_0.png": "png",
    "export/export_main.py": CLI,
    "bench/speed.py": CLI,
    "tests/conftest.py": "",
    "tests/test_toy.py": "def test_toy():\n  assert 1 + 1 == 2\n",
    "tests/fixtures/words.txt": "Ulm\n",
}


def check(root):
  return check_build.check(str(root))


@pytest.fixture
def fake(tmp_path):
  for rel in BUILD_FILES:
    dst = tmp_path / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / rel, dst)
  for rel, text in FAKE_FILES.items():
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  return tmp_path


def write(root, rel, text):
  path = root / rel
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(textwrap.dedent(text))


# --- the real tree -----------------------------------------------------------------------------------
def test_real_tree_is_covered_by_the_build():
  assert check(REPO) == []


def test_real_tree_has_one_py_test_per_test_file():
  ws = check_build.Workspace(str(REPO))
  tests = REPO / "tests"
  test_files = sorted({str(p.relative_to(tests)) for pattern in ("test_*.py", "*_test.py")
                       for p in tests.rglob(pattern) if "__pycache__" not in p.parts})
  py_tests = sorted(t.name + ".py" for t in ws.targets.values() if t.kind == "py_test")
  assert py_tests == test_files
  assert "test_bazel_build.py" in test_files


# --- fake trees carrying the real build files ----------------------------------------------------------
def test_fake_tree_targets(fake):
  assert check(fake) == []
  ws = check_build.Workspace(str(fake))
  toy_test = ws.targets["//tests:test_toy"]
  assert toy_test.kind == "py_test"
  assert toy_test.attrs["main"] == "//tools/bazel:pytest_main.py"
  assert toy_test.attrs["args"] == ["$(rootpath :test_toy.py)"]
  assert ws.targets["//:generate"].attrs["tags"] == ["py_module=scrabblegan_tf.generate"]
  assert ws.targets["//:train_main"].attrs["main"] == "train_main.py"
  assert ws.targets["//export:export_main"].attrs["main"] == "export_main.py"
  assert ws.targets["//bench:speed"].attrs["main"] == "speed.py"
  lib = ws.targets["//:scrabblegan_tf"].attrs
  assert lib["srcs"] == [
      "scrabblegan_tf/__init__.py", "scrabblegan_tf/generate.py", "scrabblegan_tf/htr/__init__.py",
      "scrabblegan_tf/htr/model.py",
  ]  # no byte code
  assert lib["data"] == ["scrabblegan_tf/presets/small.json", "//datasets:builders"]
  toy = ws.targets["//datasets:toy"].attrs
  assert toy["srcs"] == ["toy/toy_dataset_builder.py"]
  assert toy["data"] == ["toy/dummy_data/train.csv", "toy/dummy_data/w1/1_0.png"]
  assert toy["deps"] == [":_shared"]
  runfiles = ws.closure("//tests:test_toy")
  assert {"datasets/toy/dummy_data/w1/1_0.png", "tests/fixtures/words.txt", "@shared//:data_dir"} <= runfiles


def test_test_file_without_py_test(fake):
  write(fake, "tests/test_new.py", "def test_new():\n  assert True is not False\n")
  write(fake, "tests/BUILD", """\
      load("//tools/bazel:defs.bzl", "pytest_tests")

      pytest_tests(srcs = ["test_toy.py"])
      """)
  problems = check(fake)
  assert "tests/test_new.py: no py_test runs this test file" in problems
  assert not any(p.startswith("tests/test_toy.py") for p in problems)


def test_test_not_run_through_pytest(fake):
  write(fake, "tests/BUILD", """\
      py_test(name = "test_toy", srcs = ["test_toy.py"])
      """)
  problems = check(fake)
  assert any(p.startswith("tests/test_toy.py: //tests:test_toy does not run it through pytest") for p in problems)
  assert any(p.startswith("//tests:test_toy: its runfiles lack ") for p in problems)


def test_module_cut_off_by_a_new_package(fake):
  # A BUILD file in scrabblegan_tf/htr/ stops the root glob there.
  write(fake, "scrabblegan_tf/htr/BUILD", "")
  problems = check(fake)
  assert "scrabblegan_tf/htr/__init__.py: in no py_library (srcs)" in problems
  assert "scrabblegan_tf/htr/model.py: in no py_library (srcs)" in problems


def test_files_left_out_by_hand_written_srcs(fake):
  write(fake, "export/client.py", "")
  write(fake, "export/templates/models.config", "model_config_list {}\n")
  write(fake, "export/BUILD", """\
      py_library(name = "export", srcs = ["export_main.py"])
      py_binary(name = "export_main", srcs = ["export_main.py"])
      """)
  problems = check(fake)
  assert "export/client.py: in no py_library (srcs)" in problems
  assert "export/templates/models.config: in no target's srcs or data" in problems


def test_cli_without_py_binary(fake):
  write(fake, "scrabblegan_tf/htr/train.py", CLI)
  assert check(fake) == ["scrabblegan_tf/htr/train.py: a CLI (__main__ guard) that no py_binary runs"]


def test_whitespace_in_a_file_name(fake):
  write(fake, "datasets/toy/dummy_data/w1/1 1.png", "png")
  assert check(fake) == [
      "'datasets/toy/dummy_data/w1/1 1.png': whitespace in a file name breaks Bazel 4's runfiles: rename it"
  ]


def test_broken_build_files_are_reported(fake):
  write(fake, "bench/BUILD", "py_library(name = 'lib', srcs = glob(['*.py']) +)\n")
  problems = check(fake)
  assert len(problems) == 1 and problems[0].startswith("//bench: ")
  assert "not Python-compatible Starlark" in problems[0]
  write(fake, "bench/BUILD", 'fail("no bench today")\n')
  assert check(fake) == ["//bench: fail() in //bench: no bench today"]


def test_glob_semantics():
  match = check_build.glob_match
  assert match("**/*.py", "a.py") and match("**/*.py", "a/b/c.py")
  assert not match("*.py", "a/b.py")
  assert match("docs/**", "docs/a/b.md") and not match("docs/**", "docs")
  assert match("*/**", "dhsd/dummy_data/x.png")
  assert not match("*/**", "BUILD")  # segments before the last one match folders only
  assert match("**/__pycache__/**", "a/__pycache__/b.pyc")
  assert match("test_?.py", "test_a.py") and not match("test_?.py", "test_ab.py")
  assert match("[x].txt", "[x].txt") and not match("[x].txt", "x.txt")  # no character classes


def test_glob_stops_at_packages_and_bazelignore(tmp_path):
  for rel in ["BUILD", "a.py", "sub/b.py", "inner/BUILD", "inner/c.py", "skip/d.py", ".hidden/e.py"]:
    write(tmp_path, rel, "")
  write(tmp_path, ".bazelignore", "skip\n")
  ws = check_build.Workspace(str(tmp_path))
  assert ws.packages == ["", "inner"]
  assert ws.glob("", ["**/*.py"]) == [".hidden/e.py", "a.py", "sub/b.py"]
  assert ws.glob("", ["**/*.py"], exclude=["sub/**"]) == [".hidden/e.py", "a.py"]
  assert ws.glob("inner", ["*.py"]) == ["c.py"]


# --- the Bazel test runner and the toolchain's interpreter -------------------------------------------
def test_pytest_main_command_line():
  assert pytest_main.pytest_args(["tests/test_x.py"], {}) == ["tests/test_x.py", "-p", "no:cacheprovider"]
  env = {"XML_OUTPUT_FILE": "/out/test.xml", "TESTBRIDGE_TEST_ONLY": "Dhsd"}
  assert pytest_main.pytest_args(["tests/test_x.py"], env) == [
      "tests/test_x.py", "-p", "no:cacheprovider", "--junitxml", "/out/test.xml", "-k", "Dhsd",
  ]


def test_pytest_main_environment(tmp_path):
  (tmp_path / "shared").mkdir()
  bazel_env = {"TEST_SRCDIR": str(tmp_path), "TEST_TMPDIR": "/t/tmp"}
  assert pytest_main.environment_defaults(bazel_env) == {
      "SCRABBLEGAN_SHARED_DIR": str(tmp_path / "shared"), "HOME": "/t/tmp"}
  given = dict(bazel_env, SCRABBLEGAN_SHARED_DIR="/data/shared", HOME="/home/me")
  assert pytest_main.environment_defaults(given) == {}
  assert pytest_main.environment_defaults({"TEST_SRCDIR": str(tmp_path / "absent")}) == {}
  assert pytest_main.environment_defaults({}) == {}


@pytest.mark.parametrize("body,code", [
    ("def test_ok():\n  assert 2 * 3 == 6\n", 0),
    ("def test_bad():\n  assert 2 * 3 == 7\n", 1),
    ("def helper():\n  return 1\n", 5),  # no test collected: a failure, not a silent pass
])
def test_pytest_main_exit_code(tmp_path, body, code):
  (tmp_path / "test_case.py").write_text(body)
  env = {k: v for k, v in os.environ.items()
         if k not in ("XML_OUTPUT_FILE", "TESTBRIDGE_TEST_ONLY", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
  proc = subprocess.run([sys.executable, str(BAZEL_DIR / "pytest_main.py"), "test_case.py"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == code, proc.stdout + proc.stderr


def test_venv_python_wrapper_execs_the_workspace_venv(tmp_path):
  # A fake workspace whose .venv/bin/python prints its arguments; the wrapper is run through a
  # symlink elsewhere, as Bazel runs it from a runfiles tree.
  write(tmp_path, "ws/tools/bazel/venv_python.sh", (BAZEL_DIR / "venv_python.sh").read_text())
  write(tmp_path, "ws/.venv/bin/python", '#!/bin/sh\necho "fake python: $*"\n')
  for rel in ["ws/tools/bazel/venv_python.sh", "ws/.venv/bin/python"]:
    (tmp_path / rel).chmod(0o755)
  link = tmp_path / "runfiles" / "venv_python.sh"
  link.parent.mkdir()
  link.symlink_to(tmp_path / "ws/tools/bazel/venv_python.sh")
  env = {k: v for k, v in os.environ.items() if k != "SCRABBLEGAN_VENV"}
  proc = subprocess.run([str(link), "-c", "x"], env=env, capture_output=True, text=True)
  assert (proc.returncode, proc.stdout) == (0, "fake python: -c x\n")
  shutil.rmtree(tmp_path / "ws/.venv")
  proc = subprocess.run([str(link), "-c", "x"], env=env, capture_output=True, text=True)
  assert proc.returncode == 127 and "make install" in proc.stderr


def test_venv_python_wrapper_runs_the_project_venv():
  if not (REPO / ".venv" / "bin" / "python").exists():
    pytest.skip("no .venv in this checkout (make install)")
  env = {k: v for k, v in os.environ.items() if k != "SCRABBLEGAN_VENV"}
  proc = subprocess.run([str(BAZEL_DIR / "venv_python.sh"), "-c", "import sys; print(sys.prefix)"],
                        env=env, capture_output=True, text=True, check=True)
  assert proc.stdout.strip() == str(REPO / ".venv")
