"""Shared pytest set-up."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """tf.test.TestCase (the base of tfds' DatasetBuilderTestCase) defines ``test_session``, a
    context-manager helper that pytest collects and TensorFlow then skips as "Not a test". It is no
    test of ours: drop it rather than report a skip."""
    items[:] = [item for item in items if item.name != "test_session"]
