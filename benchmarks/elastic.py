"""An autoscaling cluster under a default spec: how soon the nodes it adds run trials.

Ray's own autoscaler on its `fake_multinode` provider (`benchmarks.fake_autoscaler`: a
0-CPU head, workers of 1 CPU launched as local processes, up to `max_workers`) runs a
default Optuna spec through `tunefleet run --address`, and, for comparison, the same spec
with `search.max_concurrent` set to the cluster's maximum (what a user had to write before
the slots followed the cluster). While it runs, the harness notes when each worker node's
raylet appears; afterwards it reads the trials' own start and end times and nodes from the
Parquet files. Figures per run:

- pending to new node: seconds from the command's start (every trial waits: the head has
  no CPU) to the first step of a trial on a launched node;
- per node: seconds from its raylet's start to the first trial step on it;
- busy 10 s after a join: the share of the slots up 10 s after each node joined that are
  running a trial then, counted while trials remain to start (target: >= 90%).

    python -m benchmarks elastic --repeats 1
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tunefleet.trainables import get_checkpoint, report

__all__ = ["BUSY_TARGET", "markdown", "paced", "run"]

REPO = Path(__file__).resolve().parents[1]
BUSY_TARGET = 0.9
SETTLE_S = 10.0


def paced(config: dict[str, Any]) -> None:
    """`steps` steps of `sleep` seconds, a checkpoint after each (a retried trial goes on
    from its last one); reports `score = x * step`, `began` and `ended` (Unix times)."""
    start = 0
    checkpoint = get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = int(Path(directory, "step").read_text())
    for step in range(start + 1, int(config["steps"]) + 1):
        began = time.time()
        time.sleep(float(config["sleep"]))
        metrics = {"score": float(config["x"]) * step, "began": began, "ended": time.time()}
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "step").write_text(str(step))
            report(metrics, checkpoint=directory)


def _spec(trials: int, steps: int, max_concurrent: int | None) -> str:
    import yaml

    search: dict[str, Any] = {"algorithm": "optuna", "num_samples": trials, "seed": 0}
    if max_concurrent is not None:
        search["max_concurrent"] = max_concurrent
    return yaml.safe_dump(
        {
            "name": "elastic",
            "trainable": "benchmarks.elastic:paced",
            "metric": "score",
            "mode": "max",
            "space": {"x": {"uniform": [0.0, 1.0]}, "steps": steps, "sleep": 0.5},
            "search": search,
            "results": {"flush_every_s": 1},
        },
        sort_keys=False,
    )


def _spans(exp: Path) -> Any:
    import pandas as pd

    rows = pd.read_parquet(exp / "iterations.parquet")
    return (
        rows.groupby(["trial_id", "node_id"])
        .agg(began=("began", "min"), ended=("ended", "max"))
        .reset_index()
    )


def _one(case: str, *, max_workers: int, trials: int, steps: int) -> dict[str, Any]:
    from benchmarks.fake_autoscaler import start_autoscaling_cluster
    from benchmarks.local_ray import BIN

    cap = max_workers if case == "max_concurrent set" else None
    with (
        tempfile.TemporaryDirectory(prefix="tf-elastic-") as tmp,
        start_autoscaling_cluster(max_workers=max_workers) as cluster,
    ):
        spec = Path(tmp, "elastic.yaml")
        spec.write_text(_spec(trials, steps, cap))
        joined: dict[str, float] = {}
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                for node_id in cluster.worker_raylets():
                    joined.setdefault(node_id, time.time())
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        started = time.time()
        watcher.start()
        proc = subprocess.run(
            [
                str(BIN / "tunefleet"),
                "run",
                str(spec),
                "--address",
                cluster.gcs_address,
                "--storage",
                tmp,
            ],
            env={**cluster.env, "PYTHONPATH": str(REPO)},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        done.set()
        watcher.join()
        if proc.returncode != 0:
            raise RuntimeError(f"tunefleet run failed: {proc.stderr[-2000:]}")
        spans = _spans(Path(tmp, "elastic"))
    return _figures(case, spans, joined, started, wall_s=time.time() - started)


def _figures(
    case: str, spans: Any, joined: dict[str, float], started: float, wall_s: float
) -> dict[str, Any]:
    first_on = spans.groupby("node_id")["began"].min()
    used = [n for n in joined if n in first_on.index]
    per_node = {n: float(first_on[n] - joined[n]) for n in used}
    last_start = float(spans["began"].max())
    busy: list[dict[str, Any]] = []
    for node_id, at in sorted(joined.items(), key=lambda kv: kv[1]):
        t = at + SETTLE_S
        if t >= last_start:  # no trial left to start then
            continue
        slots = sum(1 for j in joined.values() if j <= at)
        running = int(((spans["began"] <= t) & (spans["ended"] > t)).sum())
        busy.append({"node": node_id[-5:], "slots": slots, "running": min(running, slots)})
    return {
        "case": case,
        "wall_s": wall_s,
        "nodes_launched": len(joined),
        "nodes_used": len(used),
        "pending_to_new_node_s": float(first_on.min() - started) if len(first_on) else None,
        "join_to_first_trial_s": per_node,
        "busy_after_join": busy,
        "busy_share": (
            sum(int(b["running"]) for b in busy) / sum(int(b["slots"]) for b in busy)
            if busy
            else None
        ),
    }


def run(
    *, repeats: int = 1, max_workers: int = 3, trials: int = 18, steps: int = 8
) -> list[dict[str, Any]]:
    """Runs the default spec and the `max_concurrent` one, alternating, `repeats` times."""
    rows = []
    for _ in range(repeats):
        for case in ("default spec", "max_concurrent set"):
            rows.append(_one(case, max_workers=max_workers, trials=trials, steps=steps))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"Fake autoscaler, 0-CPU head, 1-CPU workers; busy = share of the slots up 10 s after "
        f"each join that run a trial then, while trials remain (target >= {BUSY_TARGET:.0%}).",
        "",
        "| case | wall s | nodes launched / used | pending -> trial on a new node s | "
        "join -> first trial s (per node) | busy 10 s after joins |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        joins = ", ".join(s(v) for v in r["join_to_first_trial_s"].values()) or "-"
        share = "-" if r["busy_share"] is None else f"{r['busy_share']:.0%}"
        detail = " ".join(f"{b['running']}/{b['slots']}" for b in r["busy_after_join"])
        lines.append(
            f"| {r['case']} | {s(r['wall_s'])} | {r['nodes_launched']} / {r['nodes_used']} | "
            f"{s(r['pending_to_new_node_s'])} | {joins} | {share} ({detail}) |"
        )
    return "\n".join(lines)
