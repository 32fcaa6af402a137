"""Export of the ScrabbleGAN generator for TF Serving (``export_lib``), its CLI (``export_main``) and
a REST/gRPC client (``client``).

``export`` is a regular package imported from the repository root (``from export import
export_lib``): Bazel puts the workspace root on ``sys.path``; ``python export/export_main.py`` and
``python export/client.py`` put the repository root first on ``sys.path`` themselves; tests and
``bench/`` scripts do the same. It is not installed by ``pip install -e .`` (``pyproject.toml``
lists only ``scrabblegan_tf``), so nothing named ``export`` reaches site-packages.
"""
