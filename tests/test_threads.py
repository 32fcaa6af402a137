"""run.inter_op_threads: TensorFlow's inter-op pool, set before its runtime starts."""

import subprocess
import sys
import textwrap

import pytest

from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.training import distribution

# A fresh process: the setting only applies before TensorFlow's runtime starts (this test process
# has started it). After the first op, asking for the same value is fine, another one is an error.
SCRIPT = textwrap.dedent(r'''
    import json
    import tensorflow as tf
    from scrabblegan_tf.training import distribution
    distribution.configure_inter_op_threads(0)  # 0: leaves TensorFlow's default (0 = one per core)
    default = tf.config.threading.get_inter_op_parallelism_threads()
    distribution.configure_inter_op_threads(1)
    tf.constant(1.0) + 1.0  # starts the runtime
    distribution.configure_inter_op_threads(1)  # the same value: accepted
    try:
        distribution.configure_inter_op_threads(2)
        error = ""
    except RuntimeError as e:
        error = str(e)
    print(json.dumps({"default": default, "now": tf.config.threading.get_inter_op_parallelism_threads(),
                      "error": error}))
''')


def test_inter_op_threads_set_before_the_runtime_starts():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    result = __import__("json").loads(out.strip().splitlines()[-1])
    assert result["default"] == 0
    assert result["now"] == 1
    assert result["error"] == ("cannot set 2 inter-op threads: TensorFlow is already initialised "
                               "with 1")


def test_inter_op_threads_refused_with_multi_worker():
    with pytest.raises(ValueError, match="inter_op_threads is not supported with --strategy=multi_worker"):
        distribution.make_strategy("multi_worker", 0, inter_op_threads=1)


def test_inter_op_threads_default_and_override():
    assert config_lib.get_config("paper").run.inter_op_threads == 0
    cfg = config_lib.get_config("paper", ["run.inter_op_threads=1"])
    assert cfg.run.inter_op_threads == 1
