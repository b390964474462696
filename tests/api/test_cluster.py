"""`tunefleet.run(..., address=...)` on a real 3-node `ray start` cluster, from a script whose
trainable is a function of `__main__` (as in a notebook): Ray ships it to the workers by
value, and the results record it as `__main__:train`. The script runs on an embedded Ray
first, which the run on the cluster replaces."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support.local_cluster import start_cluster

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import tunefleet

    def train(config):
        import time

        import ray
        from tunefleet.trainables import report

        node = ray.get_runtime_context().get_node_id()
        Path(config["nodes"], node).touch()
        for step in range(1, 3):
            time.sleep(0.5)
            report({"score": config["x"] * step})

    spec = {
        "name": "on-cluster",
        "metric": "score",
        "mode": "max",
        "space": {"x": {"uniform": [0, 1]}, "nodes": sys.argv[3]},
        "search": {"algorithm": "random", "num_samples": 4, "seed": 0},
        "resources": {"cpu": 1},
    }
    # First on an embedded Ray, kept up after the run; the cluster run replaces it.
    local = Path(sys.argv[3] + "-local")
    local.mkdir()
    tunefleet.run(
        spec,
        trainable=train,
        storage=sys.argv[2],
        name="local",
        overrides={"search.num_samples": 1, "space.nodes": str(local)},
    )
    exp = tunefleet.run(spec, trainable=train, address=sys.argv[1], storage=sys.argv[2])
    print("trials", len(exp.trials), exp.summary.statuses)
    tunefleet.shutdown()
    """
)


@pytest.mark.slow
@pytest.mark.cluster
def test_a_function_of_main_runs_on_a_three_node_cluster(tmp_path: Path) -> None:
    script = tmp_path / "tune_it.py"
    script.write_text(SCRIPT)
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    with start_cluster((1, 1, 2)) as cluster:
        proc = subprocess.run(
            [
                sys.executable,
                str(script),
                cluster.gcs_address,
                str(tmp_path / "results"),
                str(nodes),
            ],
            cwd=tmp_path,  # nothing here imports `train`: it can only travel by value
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        used = {p.name for p in nodes.iterdir()}
        assert len(used) >= 2 and used <= cluster.node_ids(), used
        (embedded,) = {p.name for p in (tmp_path / "nodes-local").iterdir()}
        assert embedded not in cluster.node_ids()
    assert "trials 4 {'TERMINATED': 4}" in proc.stdout
    exp_dir = tmp_path / "results" / "on-cluster"
    assert yaml.safe_load((exp_dir / "spec.yaml").read_text())["trainable"] == "__main__:train"
    assert len(pd.read_parquet(exp_dir / "trials.parquet")) == 4
    assert "Traceback" not in proc.stderr
