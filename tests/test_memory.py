"""core.memory: glibc returns freed tensor-sized buffers to the system once its settings are applied."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from scrabblegan_tf.core import memory

GLIBC = memory._glibc() is not None  # pylint: disable=protected-access


def test_settings_leave_what_the_environment_sets():
    both = {memory.M_MMAP_THRESHOLD: 1 << 20, memory.M_ARENA_MAX: 2}
    assert memory.settings({}) == both
    assert memory.settings({"MALLOC_ARENA_MAX": "4"}) == {memory.M_MMAP_THRESHOLD: 1 << 20}
    assert memory.settings({"MALLOC_MMAP_THRESHOLD_": "0", "MALLOC_ARENA_MAX": "1"}) == {}


# 64 buffers of 2 MiB (activation-sized) interleaved with 256 KiB ones (too large for the holes of a
# fresh heap, so they land between the large ones), the large ones freed, the small ones kept
# (16 MiB). Before: one 4 MiB buffer is mapped and freed, which (glibc's dynamic threshold) lifts the
# mmap threshold to 4 MiB, as TensorFlow's first step does. Then 2 MiB buffers come from the heap,
# and the small ones between them keep the heap from shrinking: 128 + 16 MiB stay resident. With
# the settings the large ones are mapped and unmapped on free: 16 MiB stay.
SCRIPT = textwrap.dedent(r'''
    import ctypes, json, sys
    from scrabblegan_tf.core import memory
    applied = memory.return_freed_buffers(environ={}) if sys.argv[1] == "1" else False
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]

    def rss_mib():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    def touched(n):
        p = libc.malloc(n)
        ctypes.memset(p, 1, n)
        return p

    libc.free(touched(4 << 20))
    base = rss_mib()
    big, small = [], []
    for _ in range(64):
        big.append(touched(2 << 20))
        small.append(touched(256 << 10))
    for p in big:
        libc.free(p)
    print(json.dumps({"applied": applied, "kept_mib": rss_mib() - base}))
''')


def _kept(apply: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, apply], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc only (mallopt)")
def test_freed_large_buffers_leave_the_process():
    default, applied = _kept("0"), _kept("1")
    assert applied["applied"] is True
    assert default["kept_mib"] > 128  # 64 x 2 MiB stay in the heap, plus the small ones
    assert applied["kept_mib"] < 32   # the small ones (16 MiB) only



# cli.run applies the settings in training commands only (before TensorFlow is imported).
RUN = textwrap.dedent(r'''
    import sys
    from scrabblegan_tf import cli
    from scrabblegan_tf.core import memory
    calls = []
    memory.return_freed_buffers = lambda *a, **k: calls.append(1) or True
    cli.run(lambda argv: print("calls", len(calls)), None, ["prog"],
            tensorflow=sys.argv[1] == "1", trains=sys.argv[2] == "1")
''')


@pytest.mark.parametrize("tensorflow, trains, calls", [("1", "1", 1), ("1", "0", 0), ("0", "1", 0)])
def test_cli_applies_the_settings_in_training_commands(tensorflow, trains, calls):
    out = subprocess.run([sys.executable, "-c", RUN, tensorflow, trains], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert out.split()[-1] == str(calls)
