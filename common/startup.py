"""No cyclic garbage collection while a command starts up.

Starting a run imports Ray, pandas, pyarrow, pydantic and the trainable's module (often
torch): several hundred thousand objects that live as long as the process. While they are
created, CPython's collector runs its full collections again and again, each walking every
object imported so far, and finds next to nothing to free: on this project's machine, 3 full
collections and about 0.25 s of the driver's CPU in a 2-trial no-op run (the whole command,
6 alternating runs with and without the pause: 1.20-1.31 s against 1.45-1.54 s). So the
`tunefleet` command pauses the collector from its first line (`pause`) until its imports are
done and Ray has started, then moves everything created so far out of the collector's sight
(`gc.freeze`) and turns it back on (`resume`), right before Ray Tune's fit: the run itself
collects as usual, over its own objects only (and the baseline's fit, when a spec has one,
the same way). Reference counting frees everything else as always. What the freeze keeps is
all the start-up made: its long-lived objects (modules, classes, functions), which a process
keeps anyway, and any garbage in reference cycles made during the pause, never collected
(the peak memory of the 2-trial run did not change: 232-235 MiB). `pause` is for the
command's own process (`tunefleet.experiments.entry`); library callers of
`tunefleet.experiments.cli.main` never pause, and `resume` then does nothing.
"""

from __future__ import annotations

import gc

__all__ = ["pause", "paused", "resume"]

_paused = False


def pause() -> None:
    """Pauses the cyclic collector, if it runs, until `resume`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Ends what `pause` began: freezes the objects created so far and turns the collector
    back on. Does nothing if `pause` did not pause it (or a `resume` came first), so that
    any command may call it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def paused() -> bool:
    """Whether `pause` paused the collector and no `resume` came since."""
    return _paused
