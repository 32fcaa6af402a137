"""The layers of the package (docs/architecture.md): every import of a scrabblegan_tf module points to
the same or a lower layer, and the library layers import at module level only (no function-local
import, so no hidden cycle). Parsed with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "scrabblegan_tf"

# Lower number = lower layer. ``training`` and ``inference`` are siblings that do not import each
# other; the CLIs (top-level modules) and the experiments sit on top.
LAYERS = {"core": 0, "models": 1, "data": 2, "training": 3, "inference": 3, "evaluation": 4,
          "serving": 5, "experiments": 6, "<cli>": 6}
LIBRARY = ("core", "models", "data", "training", "inference", "evaluation")


# Command-line modules inside a layer's package: on top, with the other CLIs.
CLI_MODULES = ("scrabblegan_tf.serving.export_main", "scrabblegan_tf.serving.client")


def layer_of(module: str) -> str:
    """``scrabblegan_tf.data.inputs`` or ``scrabblegan_tf.data`` -> ``data``; top-level modules and
    ``CLI_MODULES`` (the command lines, and ``cli``, what they share) -> ``<cli>``."""
    parts = module.split(".")
    if module in CLI_MODULES or len(parts) < 2 or parts[1] not in LAYERS:
        return "<cli>"
    return parts[1]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(p for p in rel.parts if p != "__init__"), path


def imports(path: pathlib.Path):
    """(imported scrabblegan_tf module, line, at module level?) of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scrabblegan_tf"):
            # ``from scrabblegan_tf.data import inputs``: the module is scrabblegan_tf.data.inputs
            # when ``inputs`` is a submodule, else scrabblegan_tf.data itself.
            for a in node.names:
                sub = PACKAGE.parent / (node.module + "." + a.name).replace(".", "/")
                names.append(f"{node.module}.{a.name}" if sub.with_suffix(".py").exists() or sub.is_dir()
                             else node.module)
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("scrabblegan_tf")]
        for name in names:
            yield name, node.lineno, id(node) in top


def test_the_layers_are_known():
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert found == set(LAYERS) - {"<cli>"}


def test_layer_of():
    assert layer_of("scrabblegan_tf.data.inputs") == "data"
    assert layer_of("scrabblegan_tf.core") == "core"
    assert layer_of("scrabblegan_tf.cli") == "<cli>"
    assert layer_of("scrabblegan_tf.serving.client") == "<cli>"
    assert layer_of("scrabblegan_tf.generate") == "<cli>"
    assert layer_of("scrabblegan_tf.serving.export_lib") == "serving"


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda x: str(x).rsplit("/", 1)[-1])
def test_imports_point_down(module, path):
    mine = layer_of(module)
    for name, line, _ in imports(path):
        theirs = layer_of(name)
        assert LAYERS[theirs] <= LAYERS[mine], f"{path.name}:{line}: {mine} imports {name} ({theirs})"
        if mine == "inference":
            assert theirs != "training", f"{path.name}:{line}: inference imports training ({name})"
        if mine == "training":
            assert theirs != "inference", f"{path.name}:{line}: training imports inference ({name})"


@pytest.mark.parametrize("module,path", [(m, p) for m, p in modules() if layer_of(m) in LIBRARY],
                         ids=lambda x: str(x).rsplit("/", 1)[-1])
def test_library_imports_at_module_level(module, path):
    local = [f"{path.name}:{line}: {name}" for name, line, top in imports(path) if not top]
    assert not local, f"function-local imports of the package in a library module: {local}"
