"""Progress figures of long loops (GAN and HTR training): durations as h:mm:ss and the ETA."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above (3725 s -> ``1:02:05``)."""
    seconds = int(round(max(seconds, 0.0)))
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def eta(done: int, total: int, per_second: float) -> str:
    """The time left for ``total - done`` steps at ``per_second`` steps per second (``?`` unknown)."""
    if per_second <= 0:
        return "?"
    return duration(max(total - done, 0) / per_second)
