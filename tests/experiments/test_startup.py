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

import pytest

from tests.support.specs import spec_yaml
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


def _noop_spec(tmp_path: Path, name: str, space: dict | None = None, **overrides: object) -> Path:
    """A spec file: 2 trials of random search over `benchmarks.fixed_cost:noop`, each
    reporting 2 results (`space` adds keys to its space, `overrides` to the spec)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        spec_yaml(
            name=name,
            trainable="benchmarks.fixed_cost:noop",
            space={"x": {"uniform": [0.0, 1.0]}, "results": 2, **(space or {})},
            search={"algorithm": "random", "num_samples": 2, "seed": 0},
            resources={"cpu": 1},
            **overrides,
        )
    )
    return spec


def _driver(code: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """Runs `code` in a fresh interpreter from the repository; returns the JSON it prints
    last, and all it printed."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


@pytest.mark.slow
def test_a_no_op_run_imports_no_library_it_does_not_use_in_the_driver(
    tmp_path: Path,
) -> None:
    spec = _noop_spec(tmp_path, "startup")
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


@pytest.mark.slow
def test_a_no_op_run_imports_no_library_it_does_not_use_in_the_worker(tmp_path: Path) -> None:
    """The trial's worker process loads what Ray Tune and the trainable's module need, not
    torch, Optuna or the other libraries a random search of a plain function never uses."""
    modules = tmp_path / "worker.json"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        spec_yaml(
            name="worker",
            trainable="tests.support.trainables:records_modules",
            space={"x": {"uniform": [0.0, 1.0]}, "modules": str(modules)},
            search={"algorithm": "random", "num_samples": 1, "seed": 0},
        )
    )
    tunefleet = str(Path(sys.executable).with_name("tunefleet"))
    proc = subprocess.run(
        [tunefleet, "run", str(spec), "--storage", str(tmp_path / "res")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(modules.read_text()))
    assert {"ray.tune", "tests.support.trainables"} <= loaded  # read in the trial's worker
    assert loaded.isdisjoint(UNUSED_BY_A_RANDOM_NO_OP_RUN), sorted(
        loaded & set(UNUSED_BY_A_RANDOM_NO_OP_RUN)
    )


@pytest.mark.slow
def test_the_command_collects_no_garbage_while_it_starts_up_and_as_usual_in_the_fit(
    tmp_path: Path,
) -> None:
    """The entry point (`tunefleet`, `python -m tunefleet.experiments`) pauses the cyclic
    collector for the start-up and resumes it, start-up objects frozen, right before the
    fit: read from the collector's own callbacks against the run's timeline."""
    spec = _noop_spec(tmp_path, "gc")
    timeline = tmp_path / "timeline.txt"
    state, printed = _driver(
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
        """,
        env={"TUNEFLEET_TIMELINE": str(timeline)},
    )
    assert "gc: 2 trials (2 terminated)" in printed
    steps = timeline_steps(timeline)
    start_up = [t for t in state["collections"] if state["called"] <= t < steps["fit_started"]]
    fit = [t for t in state["collections"] if steps["fit_started"] <= t <= steps["fit_done"]]
    assert state["called"] < steps["imports_done"] < steps["ray_up"] < steps["fit_started"]
    assert start_up == []  # Ray Tune, pandas, pyarrow, pydantic imported, Ray started: none
    assert fit  # the run collects as usual
    assert state["enabled"] and state["frozen"] > 100_000  # the start-up's objects frozen


@pytest.mark.slow
def test_every_fit_runs_with_the_collector_on_the_baseline_s_too(tmp_path: Path) -> None:
    spec = _noop_spec(tmp_path, "gc-baseline", baseline={"config": {"x": 0.5}})
    state, _ = _driver(
        f"""
        import gc, json
        from ray import tune
        fits = []
        fit = tune.Tuner.fit
        def recorded(self):
            fits.append([gc.isenabled(), gc.get_freeze_count()])
            return fit(self)
        tune.Tuner.fit = recorded
        from tunefleet.experiments.entry import main
        rc = main(["run", {str(spec)!r}, "--storage", {str(tmp_path / "res")!r}])
        print(json.dumps({{"rc": rc, "fits": fits}}))
        """
    )
    assert state["rc"] == 0
    assert len(state["fits"]) == 2  # the baseline's fit, then the search's
    for enabled, frozen in state["fits"]:
        assert enabled and frozen > 100_000  # on, after the start-up paused and froze


def test_every_other_command_runs_with_the_collector_on() -> None:
    """`run` starts paused (until its fit); every other command resumes the collector once
    its arguments are parsed: a long `dashboard` or `resume` collects as usual."""
    state, _ = _driver(
        """
        import gc, json
        from tunefleet.experiments import cli, entry
        seen = {}
        def probe(args):
            seen[args.command] = gc.isenabled()
            return 0
        for name in cli._COMMANDS:
            cli._COMMANDS[name] = probe
        for argv in (["run", "s.yaml"], ["validate", "s.yaml"], ["resume", "x"],
                     ["show", "x"], ["evaluate", "x"], ["report", "x"], ["export", "x"],
                     ["dashboard", "x"], ["cluster", "up", "c.yaml"], ["schema"]):
            assert entry.main(argv) == 0
            assert gc.isenabled()  # and on again afterwards, whatever the command did
        print(json.dumps({"commands": sorted(cli._COMMANDS), "seen": seen}))
        """
    )
    assert sorted(state["seen"]) == state["commands"]  # every command was tried
    assert state["seen"].pop("run") is False  # paused: the runner resumes it for the fit
    assert all(state["seen"].values()), state["seen"]
