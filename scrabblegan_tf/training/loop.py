"""The step loop shared by the GAN and the HTR training: steps, hooks, SIGTERM, checkpoints.

``run_loop`` calls ``step_fn`` from ``start`` to ``total`` and after each step, in order:

1. the progress display (``core.progress.Progress``);
2. every ``Hook`` whose ``every`` divides the step (logging, samples, evaluation), before the last
   step only;
3. on a stop request (SIGTERM, see ``SigtermFlag``): a checkpoint, then the loop ends with
   ``interrupted="SIGTERM"``;
4. a checkpoint every ``checkpoint_every`` steps (before the last).

After the last step (unless interrupted, and only when it ran a step or the run has no checkpoint
yet): a checkpoint, then the hooks with ``at_end`` in order. The first step traces the graph: its
time is reported and left out of the rates.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

from scrabblegan_tf.core.progress import Progress
from scrabblegan_tf.core.run_folder import Checkpoints


@dataclass
class Hook:
    """``fn(step)`` every ``every`` steps (0: never periodically) and, with ``at_end``, once after
    the last step."""
    every: int
    fn: Callable[[int], None]
    at_end: bool = True


@dataclass
class LoopResult:
    step: int              # the last step done
    interrupted: str = ""  # "SIGTERM" when a SIGTERM stopped the loop (after a checkpoint)
    timed_steps: int = 0   # steps after the first (tracing) one
    seconds: float = 0.0   # their time, pauses (validation) left out


class SigtermFlag:
    """Installs a SIGTERM handler that only records the signal (the loop checks the flag after each
    step, saves a checkpoint and stops); ``restore()`` puts the previous handler back. Does nothing
    outside the main thread (Python delivers signals to the main thread only)."""

    def __init__(self):
        self.received = False
        self.previous = None
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.received = True

    def restore(self):
        if self.installed:
            # None: the previous handler was not installed from Python; the default is closest.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self.previous is None else self.previous)
            self.installed = False


def run_loop(step_fn: Callable[[int, bool], bool], *, start: int, total: int,
             checkpoints: Checkpoints, checkpoint_every: int, hooks: list[Hook],
             progress: Progress, save: Callable[[int], str] | None = None,
             collective_stop: bool = False) -> LoopResult:
    """Runs steps ``start + 1 .. total`` (see the module docstring).

    ``step_fn(step, stop_requested)`` runs step ``step`` and returns whether to stop;
    ``stop_requested`` is True once a SIGTERM arrived. ``collective_stop``: only ``step_fn``'s answer
    stops the loop (multi-worker: the all-reduced flag, the same on every worker), else the signal
    itself does too. ``save(step)``: writes a checkpoint and returns what to log (default
    ``checkpoints.save``)."""
    save = save or checkpoints.save
    step = start
    interrupted = ""
    sigterm = SigtermFlag()
    t_start = time.perf_counter()
    try:
        while step < total:
            stop = step_fn(step + 1, sigterm.received)
            step += 1
            if step == start + 1:
                progress.say(f"step {step}: traced and ran the first step in "
                             f"{time.perf_counter() - t_start:.1f} s")
                progress.start_timing(step)
            progress.update(step)
            for hook in hooks:
                if hook.every > 0 and step % hook.every == 0 and step < total:
                    hook.fn(step)
            if (stop or (sigterm.received and not collective_stop)) and step < total:
                interrupted = "SIGTERM"
                progress.say(f"checkpoint: {save(step)}")
                progress.say(f"SIGTERM: saved checkpoint at step {step}")
                break
            if checkpoint_every > 0 and step % checkpoint_every == 0 and step < total:
                progress.say(f"checkpoint: {save(step)}")
    finally:
        sigterm.restore()
    seconds = progress.elapsed()
    if not interrupted and (step != start or checkpoints.latest() is None):
        progress.say(f"checkpoint: {save(step)}")
        for hook in hooks:
            if hook.at_end:
                hook.fn(step)
    progress.close()
    return LoopResult(step=step, interrupted=interrupted, timed_steps=max(step - start - 1, 0),
                      seconds=seconds)
