"""How many trials run at once: as many as the cluster's nodes fit, or, on a cluster with
an autoscaler, as many as it fits once grown to its limits; never more than
`search.max_concurrent`.

Ray Tune gives a model-based searcher (Optuna, Hyperopt) one trial at a time unless it is
told a cap; the runner passes this one and moves it while the run lasts, as nodes join
and leave (`tunefleet.experiments.run.elastic`). A trial runs on one node, so the trials
that fit are counted node by node: two nodes of 1.5 CPUs hold two 1-CPU trials, not three.
A data-parallel trial (`resources.workers`) is a gang of workers that may span nodes: its
workers are counted node by node, then whole gangs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tunefleet.cluster import RayConnection
from tunefleet.cluster.capacity import ClusterShape
from tunefleet.experiments.spec.experiment import ExperimentSpec

__all__ = ["TrialSlots", "fitting_trials", "local_slots", "shape_slots", "trial_slots"]

# Resource amounts are floats (fractions are allowed): 6 CPUs / 0.1 must give 60, not 59.
_EPS = 1e-9


def fitting_trials(nodes: Sequence[tuple[float, float | None]], cpu: float, gpu: float) -> int:
    """How many trials asking `cpu` CPUs and `gpu` GPUs each the nodes hold at once.

    Args:
        nodes: (CPUs, GPUs) of each node; GPUs None when unknown (not counted).
        cpu: CPUs per trial (> 0).
        gpu: GPUs per trial (0 for none).
    """
    total = 0
    for cpus, gpus in nodes:
        fit = math.floor(cpus / cpu + _EPS)
        if gpu > 0 and gpus is not None:
            fit = min(fit, math.floor(gpus / gpu + _EPS))
        total += fit
    return total


def _amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}" + ("" if 0 < value <= 1 else "s")


@dataclass(frozen=True)
class TrialSlots:
    """How many trials run at once, and why.

    Attributes:
        cap: Trials running or waiting for resources at the same time: `fits`, or
            `grow_to` on a cluster whose autoscaler adds nodes for the waiting ones; at
            most `max_concurrent`, at least 1. With `max_concurrent` set and no autoscaler
            in sight, `max_concurrent` (the others wait for resources).
        fits: Trials the nodes hold at once now.
        cpus: The cluster's CPUs.
        gpus: The cluster's GPUs; None when not counted (`tunefleet validate`).
        nodes: Alive nodes.
        cpu: CPUs per trial (per worker when `workers` > 1).
        gpu: GPUs per trial (per worker when `workers` > 1).
        max_concurrent: `search.max_concurrent`, if set.
        grow_to: Trials the cluster holds once its autoscaler has added every node it
            may; None without an autoscaler.
        growth: The nodes the autoscaler may still add (`3 x cpu_node`).
        workers: Workers per trial (a data-parallel trial's gang).
    """

    cap: int
    fits: int
    cpus: float
    gpus: float | None
    nodes: int
    cpu: float
    gpu: float
    max_concurrent: int | None = None
    grow_to: int | None = None
    growth: str | None = None
    workers: int = 1

    @property
    def running(self) -> int:
        """Trials running at once while the cluster does not grow."""
        return min(self.cap, max(self.fits, 1))

    def describe(self) -> str:
        """`up to 6 trials at once: 6 CPUs on 3 nodes, 1 CPU per trial`, and the like."""
        have = _amount(self.cpus, "CPU")
        if self.gpu > 0 and self.gpus is not None:
            have += f" and {_amount(self.gpus, 'GPU')}"
        need = _amount(self.cpu, "CPU")
        if self.gpu > 0:
            need += f" and {_amount(self.gpu, 'GPU')}"
        if self.workers > 1:
            need = f"{self.workers} workers of {need}"
        why = f"{have} on {_amount(self.nodes, 'node')}, {need} per trial"
        if self.grow_to is not None and self.grow_to > self.fits:
            cap = f" (search.max_concurrent {self.max_concurrent})" if self.capped else ""
            now = {0: "no trial fits now", 1: "1 trial at a time now"}.get(
                self.fits, f"up to {self.fits} trials at once now"
            )
            return (
                f"{now}, up to {self.cap} as the autoscaler adds nodes ({self.growth}){cap}: {why}"
            )
        head = "1 trial at a time" if self.cap == 1 else f"up to {self.cap} trials at once"
        if self.max_concurrent is None or self.max_concurrent == self.fits:
            if self.fits == 0:
                return f"{head}: no node fits one yet ({why}); it waits for resources"
            return f"{head}: {why}"
        if self.max_concurrent < self.fits:
            return f"{head} (search.max_concurrent; {self.fits} would fit: {why})"
        return (
            f"{head} (search.max_concurrent; {self.fits} fit now: {why}; the others wait "
            "for resources, or for nodes an autoscaling cluster adds)"
        )

    @property
    def capped(self) -> bool:
        """Whether `search.max_concurrent` holds the cap below what the cluster could run."""
        most = max(self.fits, self.grow_to or 0)
        return self.max_concurrent is not None and self.max_concurrent < most

    def to_dict(self) -> dict[str, Any]:
        """The fields, for the results' metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialSlots:
        """The slots `to_dict` gave."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _growth(shape: ClusterShape, cpu: float, gpu: float) -> tuple[int, str]:
    """Trials (workers, for gangs) the nodes the autoscaler may still add hold, and which
    nodes (the types that hold the most trials per node first, within the types' and the
    cluster's limits; GPU types only for trials that ask for a GPU)."""
    workers = dict(shape.workers)
    room = None if shape.max_workers is None else shape.max_workers - sum(workers.values())
    added, parts = 0, []
    per_node = {t.name: fitting_trials(((t.cpus, t.gpus),), cpu, gpu) for t in shape.node_types}
    for kind in sorted(shape.node_types, key=lambda t: -per_node[t.name]):
        if per_node[kind.name] == 0 or (gpu == 0 and kind.gpus > 0):
            continue  # no room, or GPU nodes kept for GPU trials (as Ray's autoscaler does)
        more = None if kind.max_workers is None else kind.max_workers - workers.get(kind.name, 0)
        if room is not None:
            more = room if more is None else min(more, room)
        if more is None or more <= 0:
            continue  # an unbounded type with no cluster cap: counted by max_concurrent only
        added += more * per_node[kind.name]
        parts.append(f"{more} x {kind.name}")
        if room is not None:
            room -= more
    return added, ", ".join(parts)


def shape_slots(spec: ExperimentSpec, shape: ClusterShape) -> TrialSlots:
    """The slots of a cluster of this shape, for this spec."""
    cpu, gpu, workers = spec.resources.cpu, spec.resources.gpu, spec.resources.workers
    nodes = shape.nodes
    fitting_workers = fitting_trials(nodes, cpu, gpu)
    fits = fitting_workers // workers
    most = spec.search.max_concurrent
    grow_to, growth = None, None
    if shape.autoscaling:
        added, growth = _growth(shape, cpu, gpu)
        grow_to = (fitting_workers + added) // workers
        cap = max(grow_to, 1) if most is None else min(most, max(grow_to, 1))
    else:
        cap = most if most is not None else max(fits, 1)
    known = [g for _, g in nodes if g is not None]
    return TrialSlots(
        cap=cap,
        fits=fits,
        cpus=sum(c for c, _ in nodes),
        gpus=sum(known) if len(known) == len(nodes) else None,
        nodes=len(nodes),
        cpu=cpu,
        gpu=gpu,
        max_concurrent=most,
        grow_to=grow_to,
        growth=growth or None,
        workers=workers,
    )


def trial_slots(connection: RayConnection, spec: ExperimentSpec) -> TrialSlots:
    """The slots of the cluster the driver is connected to, as it is now."""
    nodes = connection.node_resources or ((connection.cpus, connection.gpus),)
    shape = connection.shape or ClusterShape(nodes=nodes)
    return shape_slots(spec, shape)


def local_slots(spec: ExperimentSpec) -> TrialSlots:
    """The slots of an embedded Ray on this machine, counting its CPUs (GPUs are counted by
    Ray when it starts, so not here)."""
    return shape_slots(spec, ClusterShape(nodes=((float(os.cpu_count() or 1), None),)))
