"""What the machine's processors offer: the CPU's bfloat16 instructions (Linux /proc/cpuinfo)."""

from __future__ import annotations


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU flags that make bfloat16 fast here (oneDNN uses them for bfloat16 convolutions and
    matmuls): ``amx_bf16`` (AMX tiles) and ``avx512_bf16``; read from /proc/cpuinfo (Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
