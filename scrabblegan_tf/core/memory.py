"""glibc heap settings that keep a TensorFlow process's resident memory close to its live tensors.

TensorFlow's CPU allocator takes tensor buffers from ``malloc``. glibc serves requests above the
*mmap threshold* with their own mappings (returned to the system on ``free``) and smaller ones from
heap arenas, which keep freed memory; the threshold starts at 128 KiB and grows, up to 32 MiB, each
time such a mapping is freed (``mallopt(3)``, "M_MMAP_THRESHOLD"), so after the first training step
most activation and gradient buffers (MiBs each) come from arenas, one per thread that contended
for one (up to 8 x cores, "M_ARENA_MAX"), and stay resident between steps. A fixed 1 MiB threshold
and two arenas return them instead. Measured (bench/RESULTS.md): the paper config's training from the
CLI (``train_main.py --config=paper --steps=3``, bfloat16, 2 cores, peak RSS by ``/usr/bin/time``)
3,142 -> 2,818 MiB, same losses; training speed unchanged within noise (``cpu`` preset: 22.5 vs
22.7 real images per CPU second).

``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_ARENA_MAX`` in the environment win (glibc reads them at start).
Elsewhere than glibc (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # <malloc.h>
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENA_MAX = 2


def _glibc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def settings(environ=os.environ) -> dict[int, int]:
    """{mallopt parameter: value} this module would set, leaving out what the environment sets."""
    wanted = {}
    if "MALLOC_MMAP_THRESHOLD_" not in environ:
        wanted[M_MMAP_THRESHOLD] = MMAP_THRESHOLD
    if "MALLOC_ARENA_MAX" not in environ:
        wanted[M_ARENA_MAX] = ARENA_MAX
    return wanted


def return_freed_buffers(environ=os.environ) -> bool:
    """Applies ``settings()`` with ``mallopt``; call before TensorFlow starts its threads. True when
    glibc accepted every setting (False elsewhere than glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in settings(environ).items())
