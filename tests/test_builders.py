"""Tests of scrabblegan_tf.data.builders: builders load by file path, also with a Hugging Face-like
`datasets` package importable, config preference (h32), preparing once, and double loading."""

import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.data import builders

REPO = builders.REPO_ROOT

FAKE_HF = '''
"""A stand-in for Hugging Face `datasets`: if the library ever ran `import datasets`, it got this."""
IS_FAKE_HUGGING_FACE = True
def load_dataset(*args, **kwargs):
    raise RuntimeError("the fake Hugging Face datasets package was used")
'''


@pytest.fixture
def fake_hf_datasets(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "datasets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_HF)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "datasets", raising=False)
    import datasets  # noqa: F401  (the fake one)

    assert sys.modules["datasets"].IS_FAKE_HUGGING_FACE
    yield tmp_path / "site"
    sys.modules.pop("datasets", None)


def test_load_by_path_with_hugging_face_datasets_importable(fake_hf_datasets):
    cls = builders.builder_class("handwriting_fonts")
    assert issubclass(cls, tfds.core.GeneratorBasedBuilder)
    assert cls.name == "handwriting_fonts"
    assert cls.__module__ == "scrabblegan_datasets.handwriting_fonts_dataset_builder"
    assert str(cls.pkg_dir_path) == str(REPO / "datasets" / "handwriting_fonts")
    # `datasets` is still the (fake) Hugging Face package: nothing imported or replaced it.
    assert sys.modules["datasets"].IS_FAKE_HUGGING_FACE
    assert builders.builder_class("handwriting_fonts") is cls  # loaded once per process
    # Metadata comes from the builder folder.
    assert "fogel2020scrabblegan" in cls.get_metadata().citation


def test_available_datasets_lists_builder_folders():
    names = builders.available_datasets()
    assert "handwriting_fonts" in names
    for name in names:
        assert (REPO / "datasets" / name / f"{name}_dataset_builder.py").is_file()
    assert "_shared" not in names


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown dataset 'nope'.*handwriting_fonts"):
        builders.builder_class("nope")


def _fake_builder_dir(root, name, configs, default=None):
    folder = root / name
    folder.mkdir(parents=True)
    default_line = f"    DEFAULT_BUILDER_CONFIG_NAME = {default!r}\n" if default else ""
    (folder / f"{name}_dataset_builder.py").write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            import tensorflow_datasets as tfds

            class Builder(tfds.core.GeneratorBasedBuilder):
                VERSION = tfds.core.Version("1.0.0")
                BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=n) for n in {configs!r}]
            """
        )
        + default_line
        + textwrap.indent(
            textwrap.dedent(
                """
                def _info(self):
                    return self.dataset_info_from_configs(
                        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

                def _split_generators(self, dl_manager):
                    return {"train": self._generate_examples()}

                def _generate_examples(self):
                    for i, w in enumerate(["a", "b", "c"]):
                        yield i, {"text": w}
                """
            ),
            "    ",
        )
    )
    (folder / "README.md").write_text(f"Fake dataset {name}.\n")
    return folder


@pytest.mark.parametrize(
    "configs,default,expected",
    [
        (["writer_independent", "writer_independent_h32", "h32"], None, "writer_independent_h32"),
        (["full", "h32", "tiny"], None, "h32"),
        (["full", "tiny"], None, "full"),
        (["full", "tiny", "tiny_h32"], "tiny", "tiny_h32"),
        (["x_h32", "x"], None, "x_h32"),
    ],
)
def test_preferred_config(tmp_path, configs, default, expected):
    name = f"fake_{abs(hash((tuple(configs), default))) % 10**8}"
    _fake_builder_dir(tmp_path, name, configs, default)
    cls = builders.builder_class(name, datasets_dir=tmp_path)
    assert cls.name == name  # inferred from the *_dataset_builder module name
    assert builders.preferred_config(cls) == expected


def test_get_builder_prefers_h32_and_checks_config_names(tmp_path):
    builder = builders.get_builder("handwriting_fonts", data_dir=str(tmp_path))
    assert builder.builder_config.name == "h32"
    assert builders.get_builder("handwriting_fonts", data_dir=str(tmp_path), config="default").builder_config.height == 64
    with pytest.raises(ValueError, match="no config 'h64'"):
        builders.get_builder("handwriting_fonts", data_dir=str(tmp_path), config="h64")


def test_ensure_prepared_builds_once(tmp_path):
    name = "fake_prepare_once"
    _fake_builder_dir(tmp_path / "ds", name, ["only"])
    cls = builders.builder_class(name, datasets_dir=tmp_path / "ds")
    builder = cls(data_dir=str(tmp_path / "data"))
    lines = []
    builders.ensure_prepared(builder, log=lines.append)
    assert len(lines) == 2 and "first use" in lines[0] and "train 3" in lines[1]
    assert [t.decode() for t in tfds.as_numpy(builder.as_dataset(split="train").map(lambda e: e["text"]))] != []
    again = cls(data_dir=str(tmp_path / "data"))
    builders.ensure_prepared(again, log=lines.append)
    assert len(lines) == 2  # nothing done the second time


def test_cli_style_import_then_library_load_does_not_clash(tmp_path):
    """`tfds build` imports datasets/<name> as `<name>.<name>_dataset_builder`; the library loads it
    again under its own name in the same process: no 'already registered' error, and
    `import datasets` still gives the Hugging Face package (a fake one here)."""
    site = tmp_path / "site" / "datasets"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(FAKE_HF)
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path / 'site')!r})
        import datasets
        assert datasets.IS_FAKE_HUGGING_FACE
        sys.path.insert(0, {str(REPO / 'datasets')!r})
        import handwriting_fonts.handwriting_fonts_dataset_builder as cli_module
        sys.path.pop(0)
        from scrabblegan_tf.data import builders
        cls = builders.builder_class("handwriting_fonts")
        assert cls is not cli_module.Builder and cls.name == cli_module.Builder.name
        assert builders.get_builder("handwriting_fonts", data_dir={str(tmp_path / 'data')!r}).name
        import datasets
        assert datasets.IS_FAKE_HUGGING_FACE
        print("ok")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_missing_or_empty_manual_dir_is_a_one_line_file_not_found(tmp_path):
    """A --manual_dir that does not exist fails before TFDS (DHSD would otherwise try to download
    offline); an empty one of a registration-only dataset gives TFDS' AssertionError, turned into a
    one-line FileNotFoundError with the first instruction line (the CLIs print it, exit status 2)."""
    builder = builders.get_builder("dhsd", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError, match=r"manual_dir .*nope does not exist"):
        builders.ensure_prepared(builder, manual_dir=str(tmp_path / "nope"), log=lambda m: None)
    empty = tmp_path / "empty"
    empty.mkdir()
    builder = builders.get_builder("iam", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError) as info:
        builders.ensure_prepared(builder, manual_dir=str(empty), log=lambda m: None)
    message = str(info.value)
    assert message.startswith(f"manual_dir {empty} holds no iam files: Register at ")
    assert "\n" not in message and "datasets/iam/README.md" in message
