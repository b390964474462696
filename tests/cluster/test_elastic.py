"""Elastic clusters: a search uses the nodes a cluster adds while it runs, an autoscaling
cluster scales up for a default Optuna or Hyperopt spec and back down after it, and a node
lost mid-run costs no trial. Every cluster here is real: `ray start` nodes, and Ray's own
autoscaler on its `fake_multinode` provider."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks.fake_autoscaler import (
    AutoscalingCluster,
    kill_worker,
    start_autoscaling_cluster,
)
from tests.support.local_cluster import BIN, join_worker, start_cluster
from tests.support.specs import spec_yaml

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _spec(algorithm: str, trials: int, steps: int, **more: Any) -> str:
    """A default spec of `algorithm` (no max_concurrent): `trials` trials of `steps` steps
    of half a second each, checkpointing every step."""
    return spec_yaml(
        name="elastic",
        trainable="benchmarks.elastic:paced",
        space={"x": {"uniform": [0.0, 1.0]}, "steps": steps, "sleep": 0.5},
        search={"algorithm": algorithm, "num_samples": trials, "seed": 0},
        results={"flush_every_s": 1},
        **more,
    )


def _run(spec: Path, address: str, env: dict[str, str], storage: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "tunefleet"), "run", str(spec), "--address", address, "--storage", str(storage)],
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _spans(exp: Path) -> pd.DataFrame:
    """Each trial's run on each node: first step's start, last step's end."""
    rows = pd.read_parquet(exp / "iterations.parquet")
    return (
        rows.groupby(["trial_id", "node_id"])
        .agg(began=("began", "min"), ended=("ended", "max"))
        .reset_index()
    )


def _most_at_once(spans: pd.DataFrame, after: float = 0.0) -> tuple[int, set[str]]:
    """The most trials running at one instant (at or after `after`), and their nodes."""
    best: tuple[int, set[str]] = (0, set())
    for t in spans["began"]:
        if t < after:
            continue
        running = spans[(spans["began"] <= t) & (spans["ended"] > t)]
        if len(running) > best[0]:
            best = (len(running), set(running["node_id"]))
    return best


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[str] | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _finished_trials(exp: Path) -> int:
    path = exp / "trials.parquet"
    if not path.exists():
        return 0
    return int((pd.read_parquet(path)["status"] == "TERMINATED").sum())


def _check_complete(exp: Path, trials: int, steps: int) -> pd.DataFrame:
    """Every trial finished once with every step once; returns the iterations."""
    done = pd.read_parquet(exp / "trials.parquet")
    rows = pd.read_parquet(exp / "iterations.parquet")
    assert len(done) == trials and done["trial_id"].is_unique
    assert (done["status"] == "TERMINATED").all(), done["status"].value_counts()
    assert not rows.duplicated(["trial_id", "training_iteration"]).any()
    assert len(rows) == trials * steps
    return rows


@pytest.fixture()
def autoscaling() -> Any:
    with start_autoscaling_cluster(max_workers=3) as cluster:
        yield cluster


@pytest.mark.parametrize("algorithm", ["optuna", "hyperopt"])
def test_a_default_spec_scales_an_autoscaling_cluster_up_and_back_down(
    autoscaling: AutoscalingCluster, tmp_path: Path, algorithm: str
) -> None:
    """A 0-CPU head whose autoscaler may add three 1-CPU workers: the default spec keeps
    trials waiting for them, the autoscaler launches them, trials run on several at once,
    and the idle workers are released after the run."""
    spec = tmp_path / "elastic.yaml"
    spec.write_text(_spec(algorithm, trials=9, steps=4))
    proc = _run(spec, autoscaling.gcs_address, autoscaling.env, tmp_path)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert (
        "no trial fits now, up to 3 as the autoscaler adds nodes (3 x cpu_node): 0 CPUs on "
        "1 node, 1 CPU per trial\n"
    ) in stderr
    exp = tmp_path / "elastic"
    _check_complete(exp, trials=9, steps=4)
    most, nodes = _most_at_once(_spans(exp))
    launched = set(_spans(exp)["node_id"])
    assert len(launched) >= 2, autoscaling.monitor_log()
    assert most >= 2 and len(nodes) >= 2, (most, nodes)
    # Each change of the cluster is in the results' metadata, the last one the grown one.
    meta = pq.read_schema(exp / "trials.parquet").metadata
    assert meta is not None
    assert b'"trials_at_once_changes"' in meta[b"tunefleet"]
    # Idle workers go once the run is over (idle_timeout_minutes: 0.25).
    _wait(lambda: not autoscaling.worker_raylets(), 120, "the idle workers to be released")


def test_trials_started_after_nodes_join_run_on_them(tmp_path: Path) -> None:
    """A head with 1 CPU runs one Optuna trial at a time; two workers join mid-run
    (`ray start --address`), and the trials started after run on them, three at once.
    (Trials of 5 s: a trial waiting for a new node's first worker process takes the head's
    idle one instead, and on 2 busy cores a new node's first worker takes seconds.)"""
    spec = tmp_path / "elastic.yaml"
    spec.write_text(_spec("optuna", trials=16, steps=10))
    with start_cluster((1,)) as cluster:
        proc = _run(spec, cluster.gcs_address, cluster.env, tmp_path)
        exp = tmp_path / "elastic"
        _wait(lambda: (exp / "iterations.parquet").exists(), 120, "a first result", proc)
        joined_at = time.time()
        new = {join_worker(cluster, 1).node_id, join_worker(cluster, 1).node_id}
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "up to 1 trials at once" not in stderr
    assert "1 trial at a time: 1 CPU on 1 node, 1 CPU per trial\n" in stderr
    assert "cluster now: up to 3 trials at once: 3 CPUs on 3 nodes, 1 CPU per trial\n" in stderr
    _check_complete(exp, trials=16, steps=10)
    spans = _spans(exp)
    later = spans[spans["began"] > joined_at]
    assert new & set(later["node_id"]), (new, later)
    most, nodes = _most_at_once(spans, after=joined_at)
    assert most == 3 and len(nodes) == 3, (most, nodes)
    assert _most_at_once(spans[spans["began"] < joined_at])[0] == 1


def test_a_lost_worker_costs_no_trial_and_the_autoscaler_replaces_it(tmp_path: Path) -> None:
    """Two 1-CPU workers at most; one is killed while it trains: its trial goes on from its
    checkpoint elsewhere, every trial finishes once, and while trials remain the
    autoscaler launches a node in its place."""
    spec = tmp_path / "elastic.yaml"
    spec.write_text(_spec("optuna", trials=16, steps=6, failure={"max_failures": 3}))
    with start_autoscaling_cluster(max_workers=2) as cluster:
        proc = _run(spec, cluster.gcs_address, cluster.env, tmp_path)
        exp = tmp_path / "elastic"

        def training_on_a_worker() -> str | None:
            # A worker with a trial at least 2 steps in (so it has a checkpoint to resume).
            path = exp / "iterations.parquet"
            if len(cluster.worker_raylets()) < 2 or not path.exists():
                return None
            rows = pd.read_parquet(path)
            done = set()
            if (exp / "trials.parquet").exists():
                trials = pd.read_parquet(exp / "trials.parquet")
                done = set(trials.loc[trials["status"] == "TERMINATED", "trial_id"])
            busy = rows[~rows["trial_id"].isin(done)].groupby("trial_id").last()
            busy = busy[(busy["training_iteration"] >= 2) & (busy["training_iteration"] < 5)]
            alive = cluster.worker_raylets()
            for node_id in busy["node_id"]:
                if node_id in alive:
                    return node_id
            return None

        victim = _wait(training_on_a_worker, 180, "a worker with a trial in training", proc)
        seen = set(cluster.worker_raylets())
        kill_worker(cluster.worker_raylets()[victim])
        replaced = _wait(
            lambda: set(cluster.worker_raylets()) - seen or proc.poll() is not None,
            120,
            "a replacement node",
        )
        remaining = 16 - _finished_trials(exp)
        log = cluster.monitor_log()
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert replaced is not True, f"the run ended before the autoscaler replaced the node: {log}"
    assert remaining > 0
    rows = _check_complete(exp, trials=16, steps=6)
    # The victim's trial went on from its checkpoint on another node.
    moved = rows.groupby("trial_id")["node_id"].nunique()
    assert (moved > 1).any(), rows.groupby("trial_id")["node_id"].unique()
