"""How many trials run at once: counted node by node, grown with an autoscaler's limits,
capped by `search.max_concurrent`, and moved while the run lasts."""

from __future__ import annotations

import os
from typing import Any

import pytest
from ray.tune.search import ConcurrencyLimiter

from tunefleet.cluster import RayConnection
from tunefleet.cluster.capacity import ClusterShape, NodeType
from tunefleet.experiments.run.elastic import SlotWatch
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.plan import at_once_text
from tunefleet.experiments.spec.slots import (
    TrialSlots,
    fitting_trials,
    local_slots,
    shape_slots,
    trial_slots,
)
from tunefleet.search.searcher_wrappers import NoSearch


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


def test_validate_says_how_many_here_and_how_a_cluster_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)  # a machine of 6 CPUs
    cpus = 6
    assert local_slots(_spec()).cap == 6
    assert at_once_text(_spec()) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU per trial); on a "
        "cluster, as many as its nodes fit, following nodes that join or leave, and as many "
        "as its autoscaler may add nodes for"
    )
    assert at_once_text(_spec(max_concurrent=cpus + 2)) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU per trial); on a cluster, "
        f"as many as its nodes fit (and its autoscaler may add nodes for), up to {cpus + 2} "
        "(search.max_concurrent)"
    )
    assert at_once_text(_spec(max_concurrent=1)) == (
        f"up to 1 at once on this machine ({cpus} CPUs, 1 CPU per trial) (search.max_concurrent)"
    )
    assert at_once_text(_spec({"cpu": 1, "gpu": 1})) == (
        f"up to {cpus} at once on this machine ({cpus} CPUs, 1 CPU and 1 GPU per trial, "
        "fewer if Ray finds fewer GPUs); on a cluster, as many as its nodes fit, following "
        "nodes that join or leave, and as many as its autoscaler may add nodes for"
    )


CPU_NODE = NodeType(name="cpu_node", cpus=4, gpus=0, max_workers=8)
GPU_NODE = NodeType(name="gpu_node", cpus=8, gpus=1, max_workers=2)


def test_an_autoscaler_counts_the_nodes_it_may_still_add() -> None:
    # A 0-CPU head and one of 8 allowed 4-CPU workers: 4 trials fit now, 4 x 8 at most.
    shape = ClusterShape(
        nodes=((0, 0), (4, 0)), node_types=(CPU_NODE,), max_workers=10, workers=(("cpu_node", 1),)
    )
    slots = shape_slots(_spec(), shape)
    assert (slots.fits, slots.grow_to, slots.cap, slots.running) == (4, 32, 32, 4)
    assert slots.describe() == (
        "up to 4 trials at once now, up to 32 as the autoscaler adds nodes (7 x cpu_node): "
        "4 CPUs on 2 nodes, 1 CPU per trial"
    )
    # The cluster-wide max_workers binds before the type's own.
    tight = ClusterShape(nodes=((0, 0),), node_types=(CPU_NODE,), max_workers=3)
    assert shape_slots(_spec(), tight).grow_to == 12
    # max_concurrent is the hard cap; the message says so.
    capped = shape_slots(_spec(max_concurrent=6), shape)
    assert (capped.cap, capped.grow_to) == (6, 32)
    assert capped.describe().startswith(
        "up to 4 trials at once now, up to 6 as the autoscaler adds nodes (7 x cpu_node) "
        "(search.max_concurrent 6)"
    )


def test_gpu_trials_count_only_the_node_types_that_hold_them() -> None:
    shape = ClusterShape(nodes=((2, 0),), node_types=(CPU_NODE, GPU_NODE), max_workers=10)
    slots = shape_slots(_spec({"cpu": 2, "gpu": 0.5}), shape)
    # CPU nodes hold none; each GPU node holds two; the head none.
    assert (slots.fits, slots.grow_to) == (0, 4)
    assert slots.growth == "2 x gpu_node"
    # CPU trials are not counted on GPU nodes (Ray's autoscaler keeps those for GPU work).
    cpu_only = shape_slots(_spec(), shape)
    assert (cpu_only.grow_to, cpu_only.growth) == (2 + 32, "8 x cpu_node")


def test_a_full_autoscaler_or_none_leaves_the_cap_at_what_fits() -> None:
    full = ClusterShape(
        nodes=((0, 0), *[(4, 0)] * 8),
        node_types=(CPU_NODE,),
        max_workers=10,
        workers=(("cpu_node", 8),),
    )
    slots = shape_slots(_spec(), full)
    assert (slots.fits, slots.grow_to, slots.cap) == (32, 32, 32)
    assert slots.describe() == "up to 32 trials at once: 32 CPUs on 9 nodes, 1 CPU per trial"


def _watch(spec: Any, start: ClusterShape) -> tuple[SlotWatch, ConcurrencyLimiter, list]:
    changes: list[dict[str, Any]] = []
    limiter = ConcurrencyLimiter(NoSearch(), max_concurrent=1)
    seen: list[TrialSlots] = []
    watch = SlotWatch(
        spec, limiter, shape_slots(spec, start), changes=changes, on_change=seen.append
    )
    return watch, limiter, changes


def test_the_watch_moves_rays_limiter_with_the_cluster_and_records_each_change() -> None:
    spec = _spec()
    watch, limiter, changes = _watch(spec, ClusterShape(nodes=((1, 0),)))
    assert limiter.max_concurrent == 1
    # Two nodes join: 3 slots; the limiter lets 3 trials out.
    watch.check(ClusterShape(nodes=((1, 0), (1, 0), (1, 0))))
    assert limiter.max_concurrent == 3
    assert [limiter.suggest(f"t{i}") for i in range(4)] == [{}, {}, {}, None]
    # The same cluster again: no change recorded.
    watch.check(ClusterShape(nodes=((1, 0), (1, 0), (1, 0))))
    assert [(c["nodes"], c["cap"]) for c in changes] == [(3, 3)]
    # A node leaves: the cap follows it down.
    watch.check(ClusterShape(nodes=((1, 0), (1, 0))))
    assert limiter.max_concurrent == 2
    assert [(c["nodes"], c["fits"], c["cap"]) for c in changes] == [(3, 3, 3), (2, 2, 2)]
    assert all(isinstance(c["time"], float) for c in changes)


def test_the_watch_keeps_max_concurrent_as_the_hard_cap() -> None:
    spec = _spec(max_concurrent=2)
    watch, limiter, _ = _watch(spec, ClusterShape(nodes=((1, 0),), node_types=(CPU_NODE,)))
    assert limiter.max_concurrent == 2
    watch.check(ClusterShape(nodes=((1, 0), *[(4, 0)] * 4), node_types=(CPU_NODE,)))
    assert limiter.max_concurrent == 2


def test_data_parallel_trials_are_counted_as_whole_gangs() -> None:
    # A gang's workers may span nodes: 1 + 1 + 2 CPUs hold 4 one-CPU workers, 2 gangs of 2.
    spread = ClusterShape(nodes=((1, None), (1, None), (2, None)))
    slots = shape_slots(_spec({"cpu": 1, "workers": 2}), spread)
    assert (slots.fits, slots.cap, slots.workers) == (2, 2, 2)
    assert slots.describe() == (
        "up to 2 trials at once: 4 CPUs on 3 nodes, 2 workers of 1 CPU per trial"
    )
    # Workers fit node by node: two nodes of 1.5 CPUs hold 2 one-CPU workers, 1 gang of 2
    # (3 CPUs in all, but no node holds a second worker), and no gang of 3.
    halves = ClusterShape(nodes=((1.5, None), (1.5, None)))
    assert shape_slots(_spec({"cpu": 1, "workers": 2}), halves).fits == 1
    assert shape_slots(_spec({"cpu": 1, "workers": 3}), halves).fits == 0
    # An autoscaler's 4-CPU nodes: 1 more gang of 4 workers per node, 8 nodes at most.
    shape = ClusterShape(
        nodes=((0, 0), (4, 0)), node_types=(CPU_NODE,), max_workers=10, workers=(("cpu_node", 1),)
    )
    grown = shape_slots(_spec({"cpu": 1, "workers": 4}), shape)
    assert (grown.fits, grown.grow_to) == (1, 8)
    # Budgets and the plan count the whole gang.
    spec = _spec({"cpu": 2, "gpu": 0.5, "workers": 3})
    assert (spec.resources.trial_cpu, spec.resources.trial_gpu) == (6, 1.5)
    assert spec.resources.describe() == "3 workers x (2 CPU, 0.5 GPU) per trial"
