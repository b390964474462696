"""Optuna's samplers as tunefleet offers them: the same classes, made picklable.

Ray pickles the whole search algorithm when a `Tuner` is built (`ray.cloudpickle`) and
`OptunaSearch.save` pickles its sampler with every experiment-state save (plain `pickle`),
so a sampler must survive both. Optuna's genetic-algorithm samplers (NSGA-II) hold a
`threading.Lock` since Optuna 5.1, which neither can pickle. Each class here is Optuna's
own with `__getstate__` / `__setstate__` that leave the locks out of the pickle and make
new ones on load (a lock guards one process's threads; nothing in it is state to keep).
The classes are importable by name, as plain `pickle` needs. Every sampler gets the
mixin, so a lock a later release adds to another sampler is handled the same way;
`tests/search/test_searcher_pickling.py` checks every searcher tunefleet builds.

Loaded only for an Optuna search (it imports Optuna).
"""

from __future__ import annotations

import threading
from typing import Any

from optuna import samplers

__all__ = [
    "CmaEsSampler",
    "GPSampler",
    "NSGAIISampler",
    "QMCSampler",
    "RandomSampler",
    "TPESampler",
]

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _LocksLeftOut:
    """Pickles an object without its `threading.Lock`/`RLock` attributes; loading makes
    new, unlocked ones of the same kind."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        locks = {
            k: isinstance(v, type(threading.RLock()))
            for k, v in state.items()
            if isinstance(v, _LOCK_TYPES)
        }
        for name in locks:
            del state[name]
        state["_tunefleet_locks"] = locks
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        locks = state.pop("_tunefleet_locks", {})
        self.__dict__.update(state)
        for name, reentrant in locks.items():
            setattr(self, name, threading.RLock() if reentrant else threading.Lock())


class TPESampler(_LocksLeftOut, samplers.TPESampler):
    """Optuna's `TPESampler`, picklable."""


class CmaEsSampler(_LocksLeftOut, samplers.CmaEsSampler):
    """Optuna's `CmaEsSampler`, picklable."""


class GPSampler(_LocksLeftOut, samplers.GPSampler):
    """Optuna's `GPSampler`, picklable."""


class NSGAIISampler(_LocksLeftOut, samplers.NSGAIISampler):
    """Optuna's `NSGAIISampler`, picklable (it holds a lock from Optuna 5.1 on)."""


class QMCSampler(_LocksLeftOut, samplers.QMCSampler):
    """Optuna's `QMCSampler`, picklable."""


class RandomSampler(_LocksLeftOut, samplers.RandomSampler):
    """Optuna's `RandomSampler`, picklable."""
