"""How many trials run at once: counted node by node at start, or `search.max_concurrent`."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tunefleet.cluster import RayConnection
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.plan import at_once_text
from tunefleet.experiments.spec.slots import TrialSlots, fitting_trials, local_slots, trial_slots


def _spec(resources: dict[str, float] | None = None, **search: Any) -> Any:
    return validate_spec(
        {
            "name": "a",
            "trainable": "tests.support.trainables:linear",
            "metric": "score",
            "mode": "max",
            "space": {"x": {"uniform": [0.0, 1.0]}},
            "search": {"algorithm": "optuna", **search},
            "resources": resources or {"cpu": 1},
        }
    )


def _cluster(*nodes: tuple[float, float]) -> RayConnection:
    return RayConnection(
        address="127.0.0.1:6379",
        started_here=False,
        cpus=sum(c for c, _ in nodes),
        gpus=sum(g for _, g in nodes),
        nodes=len(nodes),
        node_resources=nodes,
    )


@pytest.mark.parametrize(
    ("nodes", "cpu", "gpu", "fits"),
    [
        ([(1.0, 0.0), (1.0, 0.0), (2.0, 0.0)], 1.0, 0.0, 4),
        ([(1.5, 0.0), (1.5, 0.0)], 1.0, 0.0, 2),  # a trial runs on one node
        ([(6.0, 0.0)], 0.1, 0.0, 60),  # not 59 from 6 / 0.1 = 59.999...
        ([(2.0, 0.0)], 4.0, 0.0, 0),
        ([(8.0, 0.0), (4.0, 1.0), (4.0, 1.0)], 1.0, 1.0, 2),  # GPUs bind
        ([(8.0, 0.0), (4.0, 1.0), (4.0, 1.0)], 4.0, 0.5, 2),  # CPUs bind on the GPU nodes
        ([(4.0, None)], 1.0, 1.0, 4),  # GPUs not counted
    ],
)
def test_trials_that_fit_are_counted_node_by_node(
    nodes: list[tuple[float, float | None]], cpu: float, gpu: float, fits: int
) -> None:
    assert fitting_trials(nodes, cpu, gpu) == fits


def test_the_cap_is_what_the_cluster_fits_at_start() -> None:
    slots = trial_slots(_cluster((1, 0), (1, 0), (2, 0)), _spec())
    assert (slots.cap, slots.fits, slots.running) == (4, 4, 4)
    assert slots.describe() == "up to 4 trials at once: 4 CPUs on 3 nodes, 1 CPU per trial"
    gpus = trial_slots(_cluster((8, 0), (4, 1), (4, 1)), _spec({"cpu": 2, "gpu": 0.5}))
    assert gpus.describe() == (
        "up to 4 trials at once: 16 CPUs and 2 GPUs on 3 nodes, 2 CPUs and 0.5 GPU per trial"
    )


def test_max_concurrent_caps_below_and_above_what_fits() -> None:
    cluster = _cluster((2, 0), (2, 0), (2, 0))
    below = trial_slots(cluster, _spec(max_concurrent=2))
    assert (below.cap, below.running) == (2, 2)
    assert below.describe() == (
        "up to 2 trials at once (search.max_concurrent; 6 would fit: 6 CPUs on 3 nodes, "
        "1 CPU per trial)"
    )
    above = trial_slots(cluster, _spec(max_concurrent=10))
    assert (above.cap, above.running) == (10, 6)
    assert above.describe() == (
        "up to 10 trials at once (search.max_concurrent; 6 fit now: 6 CPUs on 3 nodes, "
        "1 CPU per trial; the others wait for resources, or for nodes an autoscaling "
        "cluster adds)"
    )


def test_a_cluster_that_fits_no_trial_yet_still_gets_one() -> None:
    slots = trial_slots(_cluster((0, 0)), _spec({"cpu": 1, "gpu": 1}))
    assert (slots.cap, slots.fits) == (1, 0)
    assert slots.describe() == (
        "1 trial at a time: no node fits one yet (0 CPUs and 0 GPUs on 1 node, 1 CPU and "
        "1 GPU per trial); it waits for resources"
    )


def test_slots_survive_the_results_metadata() -> None:
    slots = trial_slots(_cluster((1, 0), (2, 0)), _spec(max_concurrent=5))
    assert TrialSlots.from_dict(slots.to_dict()) == slots


def test_validate_says_how_many_here_and_how_a_cluster_is_counted() -> None:
    cpus = os.cpu_count() or 1
    assert local_slots(_spec()).cap == cpus
    assert at_once_text(_spec()) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU per trial); on a "
        "cluster, as many as its nodes fit when the run starts"
    )
    assert at_once_text(_spec(max_concurrent=cpus + 2)) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU per trial); on a cluster, "
        f"up to {cpus + 2} (search.max_concurrent): those its nodes do not fit wait, and an "
        "autoscaling cluster adds nodes for them"
    )
    assert at_once_text(_spec(max_concurrent=1)) == (
        f"up to 1 at once on this machine ({cpus} CPUs, 1 CPU per trial) (search.max_concurrent)"
    )
    assert at_once_text(_spec({"cpu": 1, "gpu": 1})) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU and 1 GPU per trial, "
        "fewer if Ray finds fewer GPUs); on a cluster, as many as its nodes fit when the run "
        "starts"
    )
