"""The installed package, not the checkout: ``pip wheel .`` holds every subpackage, the shipped
models and the dataset builders; installed into an empty folder, its console scripts generate with
the shipped model, train a few steps on the embedded font data and export a SavedModel.

The wheel is built offline (``--no-build-isolation``: the virtual environment's setuptools) from a
copy of what it is made of (pyproject.toml, README.md, scrabblegan_tf/, datasets/; no caches, no
runs), and installed with ``--no-deps --target`` (the dependencies are those of
the running environment). Every command runs outside the repository, so nothing can come from it.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = {"scrabblegan-train", "scrabblegan-generate", "scrabblegan-synthesize",
           "scrabblegan-export", "scrabblegan-client", "scrabblegan-htr", "scrabblegan-model"}


SOURCES = ("pyproject.toml", "README.md", "scrabblegan_tf", "datasets")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for rel in SOURCES:
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, src / rel, ignore=SKIP)
        else:
            shutil.copy2(REPO / rel, src / rel)
    dist = root / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(dist), str(src)], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next(dist.glob("scrabblegan_tf-*.whl"))
    target = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=600,
                          cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=str(target), PATH=f"{target / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return {"root": root, "wheel": wheel, "target": target, "env": env}


def test_wheel_holds_the_whole_package(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    # every module of the checkout (all subpackages: pyproject's list must name each of them)
    modules = {str(p.relative_to(REPO)) for p in (REPO / "scrabblegan_tf").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert "scrabblegan_tf/experiments/legibility/experiment.py" in modules
    assert not modules - names, sorted(modules - names)
    for model in ("english_fonts", "german_dhsd"):
        for f in ("generator.npz", "config.json", "alphabet.json", "MODEL_CARD.md"):
            assert f"scrabblegan_tf/pretrained/{model}/{f}" in names, (model, f)
    for builder in ("handwriting_fonts", "iam", "rimes", "cvl", "dhsd"):
        assert f"scrabblegan_tf/_datasets/{builder}/{builder}_dataset_builder.py" in names, builder
    assert "scrabblegan_tf/_datasets/_shared/hw_builder_utils.py" in names
    assert not [n for n in names if n.endswith(("/BUILD", ".pyc"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    assert SCRIPTS <= {line.split("=")[0].strip() for line in text.splitlines() if "=" in line}
    assert {p.name for p in (installed["target"] / "bin").iterdir()} >= SCRIPTS


def _run(installed, *args, timeout=600):
    return subprocess.run(list(args), cwd=installed["root"], env=installed["env"], capture_output=True,
                          text=True, timeout=timeout)


def test_console_scripts_generate_train_and_export(installed):
    root, target = installed["root"], installed["target"]
    where = _run(installed, sys.executable, "-c", "import scrabblegan_tf, scrabblegan_tf.data.builders as b; "
                 "print(scrabblegan_tf.__file__); print(b.DATASETS_DIR)")
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, datasets_dir = where.stdout.split()
    assert module_file.startswith(str(target)) and datasets_dir == str(target / "scrabblegan_tf" / "_datasets")

    gen = _run(installed, "scrabblegan-generate", "--text=hello world", "--num_styles=2",
               f"--out={root / 'hello.png'}")
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert (root / "hello.png").stat().st_size > 500 and "english_fonts" in gen.stdout
    assert gen.stderr == ""  # quiet: no TensorFlow start-up lines (scrabblegan_tf.cli)

    work = root / "run"
    train = _run(installed, "scrabblegan-train", "--dataset=handwriting_fonts", "--config=smoke",
                 "--config_override=data.builder_config=tiny", "--config_override=data.batch_size=2",
                 "--steps=2", f"--workdir={work}", f"--data_dir={root / 'tfds'}")
    assert train.returncode == 0, train.stderr[-3000:]
    assert (work / "checkpoints").is_dir() and json.loads((work / "config.json").read_text())

    export = _run(installed, "scrabblegan-export", f"--workdir={work}", f"--export_dir={root / 'models'}",
                  "--version=1")
    assert export.returncode == 0, export.stderr[-3000:]
    assert (root / "models" / "1" / "saved_model.pb").is_file()
    assert (root / "models" / "models.config").is_file()
