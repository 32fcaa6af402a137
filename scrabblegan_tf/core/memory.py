"""glibc heap settings for a training process: larger freed buffers go back to the system.

Where TensorFlow's memory comes from (x86 Linux, oneDNN on, TensorFlow's default): tensors of 4 KiB
and more from a BFC allocator (``MklCPUAllocator``) that grows by regions and never returns them,
so its resident size is the largest working set seen plus fragmentation; everything else (small
tensors, graphs and their optimisation, oneDNN primitives, Python) from ``malloc``. glibc serves
requests above the *mmap threshold* with their own mappings (returned on ``free``) and smaller ones
from heap arenas that keep freed memory; the threshold starts at 128 KiB and grows, up to 32 MiB,
each time such a mapping is freed (``mallopt(3)``, "M_MMAP_THRESHOLD"), one arena per thread that
contended for one (up to 8 x cores, "M_ARENA_MAX"). A fixed 1 MiB threshold and two arenas keep the
``malloc`` side (graph building, the first step's optimisation) from holding large freed blocks.
Measured (bench/RESULTS.md), the paper config's ``train_main.py --steps=3`` (bfloat16, 2 cores, peak
RSS by ``/usr/bin/time``): 3,078 -> 2,783 MiB, same speed (5.8 vs 5.9 real images/s).

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
