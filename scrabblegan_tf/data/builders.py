"""Load the TFDS builders of ``<repo>/datasets/<name>/`` by file path.

``datasets/`` is deliberately not a Python package: ``import datasets`` would find (or shadow) the
Hugging Face ``datasets`` package. The builder file ``datasets/<name>/<name>_dataset_builder.py`` is
executed once per process as the module ``scrabblegan_datasets.<name>_dataset_builder`` (a distinct
top-level name; the ``_dataset_builder`` suffix lets TFDS infer the dataset name). A builder that the
``tfds`` CLI or a test already loaded under another module name is loaded again without registering it
twice.

Config choice: ``get_builder(name, config=None)`` takes ``preferred_config(name)``: ScrabbleGAN trains
at height 32, so when the builder's default config is ``X`` and a config ``X_h32`` exists, that one;
otherwise a config named ``h32`` if there is one; otherwise the builder's default.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import pathlib
import sys
import time
import types
from typing import Any

import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import tqdm_utils

from scrabblegan_tf.core import progress

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent  # scrabblegan_tf/
REPO_ROOT = PACKAGE_DIR.parent
# An installed wheel carries datasets/ as package data in scrabblegan_tf/_datasets (pyproject.toml);
# a checkout (editable install, Bazel, tests) reads <repo>/datasets.
PACKAGED_DATASETS_DIR = PACKAGE_DIR / "_datasets"
DATASETS_DIR = PACKAGED_DATASETS_DIR if PACKAGED_DATASETS_DIR.is_dir() else REPO_ROOT / "datasets"
MODULE_PREFIX = "scrabblegan_datasets"
H32_SUFFIX = "_h32"


def _builder_file(name: str, datasets_dir: pathlib.Path = DATASETS_DIR) -> pathlib.Path:
    return datasets_dir / name / f"{name}_dataset_builder.py"


def available_datasets(datasets_dir: str | pathlib.Path | None = None) -> list[str]:
    """Names of the folders of ``datasets/`` that hold a ``<name>_dataset_builder.py``."""
    root = pathlib.Path(datasets_dir) if datasets_dir else DATASETS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _builder_file(p.name, root).is_file())


def _parent_package() -> types.ModuleType:
    pkg = sys.modules.get(MODULE_PREFIX)
    if pkg is None:
        pkg = types.ModuleType(MODULE_PREFIX)
        pkg.__path__ = []  # a namespace for builder modules; nothing is importable from disk
        pkg.__doc__ = "Dataset builders of scrabblegan_tf, loaded by file path (scrabblegan_tf.data.builders)."
        sys.modules[MODULE_PREFIX] = pkg
    return pkg


def builder_module(name: str, datasets_dir: str | pathlib.Path | None = None) -> types.ModuleType:
    """The module of ``datasets/<name>/<name>_dataset_builder.py`` (executed once per process)."""
    root = pathlib.Path(datasets_dir) if datasets_dir else DATASETS_DIR
    path = _builder_file(name, root).resolve()
    if not path.is_file():
        raise ValueError(
            f"Unknown dataset {name!r}: no {path}. Available: {', '.join(available_datasets(root)) or 'none'}"
        )
    modname = f"{MODULE_PREFIX}.{name}_dataset_builder"
    module = sys.modules.get(modname)
    if module is not None:
        if pathlib.Path(getattr(module, "__file__", "")).resolve() == path:
            return module
        raise ValueError(f"{modname} is already loaded from {module.__file__}, not {path}")
    pkg = _parent_package()
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        if name in tfds.core.registered._DATASET_REGISTRY:  # pylint: disable=protected-access
            # Already registered by another loader (tfds CLI, a test): keep that registration.
            with tfds.core.registered.skip_registration():
                spec.loader.exec_module(module)
        else:
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    setattr(pkg, f"{name}_dataset_builder", module)
    return module


def builder_class(name: str, datasets_dir: str | pathlib.Path | None = None) -> type:
    """The ``Builder`` class of ``datasets/<name>/`` (a ``tfds.core.DatasetBuilder`` subclass)."""
    module = builder_module(name, datasets_dir)
    cls = getattr(module, "Builder", None)
    if cls is None:
        found = [
            v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, tfds.core.DatasetBuilder)
            and v.__module__ == module.__name__
        ]
        if len(found) != 1:
            raise ValueError(f"{module.__file__} defines no single DatasetBuilder class `Builder`")
        cls = found[0]
    # README.md / CITATIONS.bib (pkg_dir_path) and checksums.tsv (next to code_path) live next to the
    # builder file; TFDS would look them up through the (non-existent) package of the module.
    if cls.__dict__.get("pkg_dir_path") is None:
        cls.pkg_dir_path = tfds.core.Path(module.__file__).parent
    if "code_path" not in cls.__dict__:
        cls.code_path = tfds.core.Path(module.__file__)
    return cls


def config_names(cls: type) -> list[str]:
    return [c.name for c in (getattr(cls, "BUILDER_CONFIGS", None) or [])]


def default_config_name(cls: type) -> str | None:
    """The builder's own default config (TFDS: DEFAULT_BUILDER_CONFIG_NAME, else the first one)."""
    names = config_names(cls)
    if not names:
        return None
    default = getattr(cls, "DEFAULT_BUILDER_CONFIG_NAME", None)
    return default if default in names else names[0]


def preferred_config(name_or_cls: str | type) -> str | None:
    """``<default>_h32``, else ``h32``, else the default config (None for a builder without configs)."""
    cls = builder_class(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    names = config_names(cls)
    default = default_config_name(cls)
    if default is None:
        return None
    if default.endswith(H32_SUFFIX) or default == "h32":
        return default
    for candidate in (f"{default}{H32_SUFFIX}", "h32"):
        if candidate in names:
            return candidate
    return default


def get_builder(
    name: str,
    *,
    data_dir: str | None = None,
    config: str | None = None,
    manual_dir: str | None = None,
    **builder_kwargs: Any,
) -> tfds.core.DatasetBuilder:
    """A builder instance of ``datasets/<name>/`` with ``config`` (None: ``preferred_config``).

    ``data_dir``: where TFDS keeps prepared data (None: TFDS' default, ``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``). ``manual_dir`` is remembered for ``ensure_prepared``. Extra keyword
    arguments go to the builder's constructor (e.g. ``fonts_dir`` for handwriting_fonts).
    """
    cls = builder_class(name)
    names = config_names(cls)
    if config is None:
        config = preferred_config(cls)
    elif names and config not in names:
        raise ValueError(f"Dataset {name!r} has no config {config!r}; choose one of {names}")
    kwargs = dict(builder_kwargs)
    if data_dir is not None:
        kwargs["data_dir"] = str(data_dir)
    if config is not None:
        kwargs["config"] = config
    builder = cls(**kwargs)
    builder._scrabblegan_manual_dir = manual_dir  # pylint: disable=protected-access
    return builder


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    is_prepared = getattr(builder, "is_prepared", None)
    if callable(is_prepared):
        return bool(is_prepared())
    return tfds.core.Path(builder.data_dir, "dataset_info.json").exists()


@contextlib.contextmanager
def _tfds_output(shown: bool):
    """TFDS' progress bars and its "Downloading and preparing ..." lines, shown or not."""
    if shown:
        yield
        return
    was_active = tqdm_utils._active  # pylint: disable=protected-access
    tqdm_utils.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tqdm_utils.display_progress_bar(was_active)


def ensure_prepared(
    builder: tfds.core.DatasetBuilder, manual_dir: str | None = None, *, log=print
) -> tfds.core.DatasetBuilder:
    """Builds the dataset on first use (``download_and_prepare``); a no-op once prepared.

    ``manual_dir`` (default: the one given to ``get_builder``) reaches the builder through
    ``tfds.download.DownloadConfig(manual_dir=...)``. Statistics are not computed (faster; nothing
    in this project reads them). Progress: a line before and after; TFDS' own nested progress bars
    and messages only with ``SCRABBLEGAN_VERBOSE=1`` (``--verbose`` of the CLIs).
    """
    if _is_prepared(builder):
        return builder
    manual_dir = manual_dir or getattr(builder, "_scrabblegan_manual_dir", None)
    if manual_dir and not os.path.isdir(os.path.expanduser(str(manual_dir))):
        raise FileNotFoundError(f"manual_dir {manual_dir} does not exist (the folder with the "
                                f"downloaded {builder.name} files; see datasets/{builder.name}/README.md)")
    config = builder.builder_config.name if builder.builder_config else "-"
    log(
        f"Preparing dataset {builder.name} (config {config}) in {builder.data_dir} on first use"
        + (f", manual_dir={manual_dir}" if manual_dir else "")
        + " ..."
    )
    start = time.time()
    download_config = tfds.download.DownloadConfig(
        manual_dir=str(manual_dir) if manual_dir else None,
        compute_stats=tfds.download.ComputeStatsMode.SKIP,
    )
    try:
        with _tfds_output(shown=progress.verbose()):
            builder.download_and_prepare(download_config=download_config)
    except AssertionError as e:  # TFDS: "Manual directory ... does not exist or is empty. ..."
        if not str(e).startswith("Manual directory"):
            raise
        first = next((ln.strip() for ln in str(builder.MANUAL_DOWNLOAD_INSTRUCTIONS or "").splitlines()
                      if ln.strip()), "")
        raise FileNotFoundError(
            f"manual_dir {manual_dir or '(not given)'} holds no {builder.name} files: {first} "
            f"(details: datasets/{builder.name}/README.md)") from None
    splits = ", ".join(f"{k} {v.num_examples}" for k, v in sorted(builder.info.splits.items()))
    log(f"Prepared {builder.name}/{config} in {time.time() - start:.1f} s: {splits}")
    return builder
