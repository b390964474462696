"""No cyclic garbage collection while a command starts up.

Starting a run imports Ray, pandas, pyarrow, pydantic and the trainable's module (often
torch): several hundred thousand objects that live as long as the process. While they are
created, CPython's collector runs its full collections again and again, each walking every
object imported so far, and finds next to nothing to free: on this project's machine, 3 full
collections and 0.15-0.2 s of the driver's CPU in a 2-trial run, as much as everything
tunefleet adds to a plain Ray Tune script. So the `tunefleet` command pauses the collector
from its first line (`pause`) until its imports are done and Ray has started, then moves
everything created so far out of the collector's sight (`gc.freeze`) and turns it back on
(`resume`), right before Ray Tune's fit: the run itself collects as usual, over its own
objects only. The reference counts free everything else as always; what the freeze keeps is
the start-up's long-lived objects (modules, classes, functions), which a process keeps
anyway.
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
