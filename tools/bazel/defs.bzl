"""Macros of the scrabblegan_tf Bazel build (see tools/bazel/README.md).

Everything here (and in the BUILD files) stays in the part of Starlark that also runs as Python:
tools/bazel/check_build.py executes the BUILD files with these macros to check that they cover the
source tree (tests/test_bazel_build.py).
"""

load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")

PYTEST_MAIN = "//tools/bazel:pytest_main.py"

# Never build inputs: byte code, caches, editor and OS droppings.
JUNK = [
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.pytest_cache/**",
    "**/.ipynb_checkpoints/**",
    "**/.DS_Store",
    "**/*~",
    "**/*.swp",
]

# Attributes of every py_library / py_binary / py_test. Binaries and tests get no generated
# __init__.py files: `datasets/` must not become a package (it would clash with Hugging Face
# `datasets`), runfiles must look like the checkout (.bazelrc also sets
# --incompatible_default_to_explicit_init_py).
_PY_LIB = {"srcs_version": "PY3"}

_PY = dict(_PY_LIB, legacy_create_init = False, python_version = "PY3")

def _no_py(path):
    if not path.endswith(".py"):
        fail("not a Python file: " + path)
    return path[:-3]

def module_name(path):
    """`scrabblegan_tf/generate.py` -> `scrabblegan_tf.generate`; `pkg/sub/__main__.py` -> `pkg.sub`."""
    parts = _no_py(path).split("/")
    if parts[-1] == "__main__":
        parts = parts[:-1]
    return ".".join(parts)

def py_module_binaries(srcs, deps, strip_prefix = "", **kwargs):
    """One py_binary per module in `srcs`, run as `python -m <module>` (like the Makefile does).

    A module run as a file would lose its package (no relative imports, its folder first on
    sys.path), so each binary runs a generated launcher calling runpy.run_module. Target name: the
    module without `strip_prefix`, dots as underscores (scrabblegan_tf/experiments/htr_augmentation/__main__.py -> experiments_htr_augmentation).
    Use it in the root BUILD (the module name is the path from the workspace root).
    """
    if native.package_name() != "":
        fail("py_module_binaries belongs in the root BUILD (module names are workspace paths)")
    for src in srcs:
        module = module_name(src)
        name = module
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix):]
        name = name.replace(".", "_")
        launcher = "_bazel_cli/%s.py" % name
        native.genrule(
            name = name + "_launcher",
            outs = [launcher],
            cmd = "printf 'import runpy\\nrunpy.run_module(\"%s\", run_name=\"__main__\", alter_sys=True)\\n' > $@" % module,
        )
        py_binary(
            name = name,
            srcs = [launcher],
            main = launcher,
            deps = deps,
            tags = ["py_module=" + module],
            **dict(_PY, **kwargs)
        )

def py_script_binaries(srcs, deps = [], **kwargs):
    """One py_binary per script in `srcs`, run as `python <script>`; target name: the file's stem."""
    for src in srcs:
        py_binary(
            name = _no_py(src).split("/")[-1],
            srcs = [src],
            main = src,
            deps = deps,
            **dict(_PY, **kwargs)
        )

def dataset_builders(name = "builders", deps = []):
    """py_library targets for the TFDS builder folders of this package (datasets/).

    One target per folder `<folder>/`: its Python files as srcs, everything else in it (dummy_data/,
    checksums.tsv, ...) as data. Folders named `_*` hold code the builders share: every builder depends
    on them. `name` collects all folders, plus the package's own top-level files.
    """
    folders = {}
    for path in native.glob(["*/**"], exclude = JUNK):
        if "/" in path:
            folders[path.split("/")[0]] = True
    folders = sorted(folders.keys())
    helpers = [f for f in folders if f.startswith("_")]
    for folder in folders:
        py_library(
            name = folder,
            srcs = native.glob([folder + "/**/*.py"], exclude = JUNK),
            data = native.glob([folder + "/**"], exclude = ["**/*.py", "**/BUILD", "**/BUILD.bazel"] + JUNK),
            deps = [":" + h for h in helpers if h != folder] + deps,
            **_PY_LIB
        )
    py_library(
        name = name,
        srcs = native.glob(["*.py"]),
        data = native.glob(["*"], exclude = ["*.py", "BUILD", "BUILD.bazel"] + JUNK),
        deps = [":" + f for f in folders],
        **_PY_LIB
    )

def pytest_tests(srcs, deps = [], data = [], args = [], size = "large", timeout = "eternal", **kwargs):
    """One py_test per test file in `srcs`, named after it (test_foo.py -> :test_foo), running
    `pytest <file>` through //tools/bazel:pytest_main.py."""
    for src in srcs:
        py_test(
            name = _no_py(src),
            srcs = [src, PYTEST_MAIN],
            main = PYTEST_MAIN,
            args = ["$(rootpath :%s)" % src] + args,
            data = data,
            deps = deps,
            size = size,
            timeout = timeout,
            **dict(_PY, **kwargs)
        )
