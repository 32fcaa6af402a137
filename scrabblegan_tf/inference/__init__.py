"""Inference with a trained generator: loading runs and shipped model folders, rendering text,
synthetic datasets. Imports ``core``, ``models`` and ``data``."""
