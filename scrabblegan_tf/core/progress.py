"""Progress of long loops (GAN and HTR training): durations as h:mm:ss, the ETA, and ``Progress``,
one display per loop: a tqdm bar with the latest figures on it when standard error is a terminal,
else one log line per report (log files stay readable)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable

from tqdm import tqdm

# Set (to 1) by ``--verbose`` of the CLIs, or by the user: third-party progress output (TFDS'
# preparation bars and messages) is shown, not only the project's own.
VERBOSE_ENV = "SCRABBLEGAN_VERBOSE"


def verbose(environ=os.environ) -> bool:
    return environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


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


def format_figures(figures: dict) -> str:
    """``{"loss": 0.12345, "lr": 2e-4, "note": "x"}`` -> ``loss 0.1235  lr 2.00e-04  note x``."""
    def one(v):
        if isinstance(v, float):
            return f"{v:.2e}" if v and abs(v) < 1e-3 else f"{v:.4f}"
        return str(v)
    return "  ".join(f"{k} {one(v)}" for k, v in figures.items())


class Progress:
    """The progress of a loop from step ``start`` to ``total``.

    ``update(step)`` after every step; ``report(step, figures)`` every few steps: computes the rate
    since the previous report and the ETA from the rate since ``start_timing`` (the first step, which
    traces the graph, is left out), then shows them with ``figures``, on the bar or as the line
    ``step 40/100  2.50 it/s  8.0 img/s  ETA 0:24  loss 0.1234``. ``per_step``: more rates, e.g.
    ``{"img/s": 8}`` for 8 images per step. Time inside ``with progress.paused():`` (validation) is
    not training time. ``say(message)`` prints through ``log`` without breaking the bar."""

    def __init__(self, total: int, *, start: int = 0, unit: str = "it", per_step: dict | None = None,
                 log: Callable[[str], None] = print, bar: bool | None = None, description: str = ""):
        self.total, self.unit, self.log = total, unit, log
        self.per_step = dict(per_step or {})
        show_bar = sys.stderr.isatty() if bar is None else bar
        self.bar = (tqdm(total=total, initial=start, unit=unit, desc=description or None,
                         dynamic_ncols=True, file=sys.stderr, leave=True) if show_bar else None)
        self.t0 = self.last_t = time.perf_counter()
        self.first = self.last = start
        self.paused_s = 0.0

    def start_timing(self, step: int) -> None:
        """Rates and ETA count from here (call after the first, tracing, step)."""
        self.t0 = self.last_t = time.perf_counter()
        self.first = self.last = step
        self.paused_s = 0.0
        if self.bar is not None:  # tqdm's own rate and ETA count from here too
            self.bar.initial = self.bar.last_print_n = step
            self.bar.start_t = self.bar.last_print_t = time.time()  # tqdm's clock

    @contextlib.contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            self.paused_s += dt
            self.last_t += dt
            if self.bar is not None:
                self.bar.start_t += dt

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def elapsed(self) -> float:
        """Seconds of timed steps (from ``start_timing``, pauses left out)."""
        return max(time.perf_counter() - self.t0 - self.paused_s, 1e-9)

    def overall_rate(self, step: int) -> float:
        return (step - self.first) / self.elapsed() if step > self.first else 0.0

    def report(self, step: int, figures: dict) -> float:
        """Shows the rates, the ETA and ``figures``; returns the steps per second since the last
        report."""
        now = time.perf_counter()
        rate = (step - self.last) / max(now - self.last_t, 1e-9) if step > self.last else 0.0
        self.last_t, self.last = now, step
        left = eta(step, self.total, self.overall_rate(step))
        if self.bar is not None:
            self.bar.set_postfix_str(format_figures(figures), refresh=False)
            self.update(step)
        else:
            rates = "".join(f"  {rate * k:.1f} {name}" for name, k in self.per_step.items())
            self.log(f"step {step}/{self.total}  {rate:.2f} {self.unit}/s{rates}  ETA {left}  "
                     f"{format_figures(figures)}".rstrip())
        return rate

    def say(self, message: str) -> None:
        if self.bar is None:
            self.log(message)
        else:
            with tqdm.external_write_mode():
                self.log(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
