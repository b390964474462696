"""What a `tunefleet run` imports (no library its spec does not use, in the driver or in the
trial's worker) and when it collects garbage. Checked in fresh processes (`sys.modules`, the
collector's callbacks), never by timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tunefleet.common.timeline import read as timeline_steps

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("ray", "ray.tune", "pandas", "pyarrow", "numpy", "torch", "optuna", "hyperopt",
         "sklearn", "matplotlib", "mlflow")  # fmt: skip
UNUSED_BY_A_RANDOM_NO_OP_RUN = ("torch", "optuna", "hyperopt", "sklearn", "matplotlib", "mlflow")
# tunefleet's own modules that only other commands use: `run` loads none of them.
OTHER_COMMANDS = (
    "tunefleet.experiments.analysis.report",
    "tunefleet.experiments.analysis.show",
    "tunefleet.experiments.analysis.experiment",
    "tunefleet.experiments.analysis.baseline_and_final",
    "tunefleet.experiments.results.export",
    "tunefleet.experiments.run.resume",
    "tunefleet.cluster.jobs",
    "tunefleet.cluster.launcher",
)


def test_a_no_op_run_imports_no_library_it_does_not_use_in_the_driver(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            name: startup
            trainable: benchmarks.fixed_cost:noop
            metric: score
            mode: max
            space: {{x: {{uniform: [0.0, 1.0]}}, results: 2, timeline: {tmp_path / "t.txt"}}}
            search: {{algorithm: random, num_samples: 2, seed: 0}}
            resources: {{cpu: 1}}
            """
        )
    )
    driver = textwrap.dedent(
        f"""
        import atexit, json, sys
        atexit.register(lambda: open({str(tmp_path / "driver.json")!r}, "w").write(
            json.dumps(sorted(sys.modules))))
        from tunefleet.experiments.cli import main
        sys.exit(main(["run", {str(spec)!r}, "--storage", {str(tmp_path / "res")!r}]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "startup: 2 trials (2 terminated)" in proc.stdout
    loaded = set(json.loads((tmp_path / "driver.json").read_text()))
    assert {"ray.tune", "pyarrow.parquet"} <= loaded  # the run itself did happen here
    assert loaded.isdisjoint(UNUSED_BY_A_RANDOM_NO_OP_RUN), sorted(
        loaded & set(UNUSED_BY_A_RANDOM_NO_OP_RUN)
    )
    assert "tunefleet.experiments.run.runner" in loaded
    assert loaded.isdisjoint(OTHER_COMMANDS), sorted(loaded & set(OTHER_COMMANDS))
    import pandas as pd

    rows = pd.read_parquet(tmp_path / "res" / "startup" / "iterations.parquet")
    assert len(rows) == 4  # 2 trials x 2 results: the same trials and results as before


def test_the_command_collects_no_garbage_while_it_starts_up_and_as_usual_in_the_fit(
    tmp_path: Path,
) -> None:
    """The entry point (`tunefleet`, `python -m tunefleet.experiments`) pauses the cyclic
    collector for the start-up and resumes it, start-up objects frozen, right before the
    fit: read from the collector's own callbacks against the run's timeline."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: gc
            trainable: benchmarks.fixed_cost:noop
            metric: score
            mode: max
            space: {x: {uniform: [0.0, 1.0]}, results: 2}
            search: {algorithm: random, num_samples: 2, seed: 0}
            resources: {cpu: 1}
            """
        )
    )
    timeline = tmp_path / "timeline.txt"
    driver = textwrap.dedent(
        f"""
        import gc, json, sys, time
        collections = []
        gc.callbacks.append(
            lambda phase, info: phase == "start" and collections.append(time.time())
        )
        from tunefleet.experiments.entry import main
        called = time.time()
        rc = main(["run", {str(spec)!r}, "--storage", {str(tmp_path / "res")!r}])
        print(json.dumps({{
            "called": called,
            "collections": collections,
            "enabled": gc.isenabled(),
            "frozen": gc.get_freeze_count(),
        }}))
        sys.exit(rc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver],
        cwd=REPO,
        env={**os.environ, "TUNEFLEET_TIMELINE": str(timeline)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "gc: 2 trials (2 terminated)" in proc.stdout
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    steps = timeline_steps(timeline)
    start_up = [t for t in state["collections"] if state["called"] <= t < steps["fit_started"]]
    fit = [t for t in state["collections"] if steps["fit_started"] <= t <= steps["fit_done"]]
    assert state["called"] < steps["imports_done"] < steps["ray_up"] < steps["fit_started"]
    assert start_up == []  # Ray Tune, pandas, pyarrow, pydantic imported, Ray started: none
    assert fit  # the run collects as usual
    assert state["enabled"] and state["frozen"] > 100_000  # the start-up's objects frozen
