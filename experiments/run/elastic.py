"""Trial slots that follow the cluster while a run lasts.

Ray Tune runs a model-based searcher (Optuna, Hyperopt) only as many trials at once as the
cap of its `ConcurrencyLimiter`, counted once when the run starts. `SlotWatch` reads the
cluster again every few seconds on Ray's controller loop and moves that cap with it
(`ConcurrencyLimiter.set_max_concurrency`, Ray's public method): nodes that join (an
autoscaler, `ray start`, KubeRay) get trials within seconds, and a cluster with an
autoscaler is kept enough trials waiting for the nodes it may still add; nodes that leave
lower the cap (their trials are retried from checkpoints by Ray's fault tolerance).
Data-parallel trials reserve nothing themselves, so their random, grid or PBT generator's
cap is moved the same way. Each change is recorded (time, nodes, slots) for the results'
metadata and shown on the progress line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from tunefleet.cluster.capacity import AutoscalerLimits, ClusterShape, cluster_shape
from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.slots import TrialSlots, shape_slots

__all__ = ["SlotWatch"]


class SlotWatch(Callback):
    """Moves a searcher's concurrency cap with the cluster.

    Args:
        spec: The experiment (resources per trial, `search.max_concurrent`).
        limiter: What caps the trials at once (`tune_setup.moved_cap`): Ray's
            `ConcurrencyLimiter` around a searcher, or the random, grid or PBT generator of
            data-parallel trials; None where Ray's resources cap them: then only recorded.
        start: The slots the run started with.
        changes: Where each change is appended (the results' metadata holds this list).
        on_change: Called with the new slots after each change (the progress line).
        limits: The autoscaler's limits, read once when the run starts.
        every_s: Seconds between reads of the cluster.
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        limiter: Any,
        start: TrialSlots,
        *,
        changes: list[dict[str, Any]],
        on_change: Callable[[TrialSlots], None] | None = None,
        limits: AutoscalerLimits | None = None,
        every_s: float = 2.0,
    ) -> None:
        self.spec = spec
        self.limiter = limiter
        self.slots = start
        self.changes = changes
        self.on_change = on_change
        self.limits = limits
        self.every_s = every_s
        self._read_at = time.monotonic()
        if limiter is not None:
            self.attach(limiter)

    def attach(self, limiter: Any) -> None:
        """Moves the cap of `limiter` (see the class) from now on."""
        self.limiter = limiter
        if limiter.max_concurrent != self.slots.cap:
            limiter.set_max_concurrency(self.slots.cap)

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with its experiment state: the searcher is saved on its
        # own, and a resumed run builds a new watch.
        return {**self.__dict__, "limiter": None, "on_change": None}

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._read_at < self.every_s:
            return
        self._read_at = now
        self.check(cluster_shape(self.limits))

    def check(self, shape: ClusterShape) -> TrialSlots:
        """Takes the cluster's shape now: moves the cap and records a change."""
        slots = shape_slots(self.spec, shape)
        old = self.slots
        if self.limiter is not None and self.limiter.max_concurrent != slots.cap:
            self.limiter.set_max_concurrency(slots.cap)
        if (slots.nodes, slots.fits, slots.cap, slots.grow_to) != (
            old.nodes,
            old.fits,
            old.cap,
            old.grow_to,
        ):
            self.slots = slots
            self.changes.append(
                {
                    "time": time.time(),
                    "nodes": slots.nodes,
                    "cpus": slots.cpus,
                    "gpus": slots.gpus,
                    "fits": slots.fits,
                    "cap": slots.cap,
                    "grow_to": slots.grow_to,
                }
            )
            if self.on_change is not None:
                self.on_change(slots)
        return slots
