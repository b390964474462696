"""No cyclic garbage collection while a command starts up.

Starting a run imports Ray, pandas, pyarrow, pydantic and the trainable's module: objects
that live as long as the process, over which CPython's collector would run full collections
again and again, finding next to nothing to free. The `tunefleet` command pauses the
collector from its first line (`pause`) until its imports are done and Ray has started,
then freezes what exists (`gc.freeze`) and turns it back on (`resume`) right before Ray
Tune's fit, which then collects as usual over its own objects. `pause` is for the command's
own process (`tunefleet.experiments.entry`); library callers never pause, and `resume` then
does nothing. Its effect is measured by `python -m benchmarks fixed-cost`.
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
