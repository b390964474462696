"""How many trials run at once: as many as the cluster's nodes fit when the run starts, or
`search.max_concurrent` when the spec sets it.

Ray Tune gives a model-based searcher (Optuna, Hyperopt) one trial at a time unless it is
told a cap; the runner passes this one (see `tunefleet.experiments.run.runner`). A trial runs
on one node, so the trials that fit are counted node by node: two nodes of 1.5 CPUs hold
two 1-CPU trials, not three.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tunefleet.cluster import RayConnection
from tunefleet.experiments.spec.experiment import ExperimentSpec

__all__ = ["TrialSlots", "fitting_trials", "local_slots", "trial_slots"]

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
        cap: Trials running or waiting for resources at the same time: `max_concurrent`
            when set (it may exceed `fits`: the others wait, and an autoscaling cluster adds
            nodes for them), else `fits`, at least 1.
        fits: Trials the nodes held at once when the run started.
        cpus: The cluster's CPUs.
        gpus: The cluster's GPUs; None when not counted (`tunefleet validate`).
        nodes: Alive nodes.
        cpu: CPUs per trial.
        gpu: GPUs per trial.
        max_concurrent: `search.max_concurrent`, if set.
    """

    cap: int
    fits: int
    cpus: float
    gpus: float | None
    nodes: int
    cpu: float
    gpu: float
    max_concurrent: int | None = None

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
        why = f"{have} on {_amount(self.nodes, 'node')}, {need} per trial"
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

    def to_dict(self) -> dict[str, Any]:
        """The fields, for the results' metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialSlots:
        """The slots `to_dict` gave."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _slots(spec: ExperimentSpec, nodes: Sequence[tuple[float, float | None]]) -> TrialSlots:
    cpu, gpu = spec.resources.cpu, spec.resources.gpu
    fits = fitting_trials(nodes, cpu, gpu)
    cap = spec.search.max_concurrent
    known = [g for _, g in nodes if g is not None]
    return TrialSlots(
        cap=cap if cap is not None else max(fits, 1),
        fits=fits,
        cpus=sum(c for c, _ in nodes),
        gpus=sum(known) if len(known) == len(nodes) else None,
        nodes=len(nodes),
        cpu=cpu,
        gpu=gpu,
        max_concurrent=cap,
    )


def trial_slots(connection: RayConnection, spec: ExperimentSpec) -> TrialSlots:
    """The slots of the cluster the driver is connected to, as it is now (at start)."""
    nodes = connection.node_resources or ((connection.cpus, connection.gpus),)
    return _slots(spec, nodes)


def local_slots(spec: ExperimentSpec) -> TrialSlots:
    """The slots of an embedded Ray on this machine, counting its CPUs (GPUs are counted by
    Ray when it starts, so not here)."""
    return _slots(spec, ((float(os.cpu_count() or 1), None),))
