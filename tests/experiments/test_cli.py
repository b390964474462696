"""The `tunefleet` command as a user runs it: exit codes, one-line errors, real runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.specs import spec_yaml

TUNEFLEET = shutil.which("tunefleet") or str(Path(sys.executable).with_name("tunefleet"))

GOOD = spec_yaml(name="cli", search={"num_samples": 2})

# Runs the CLI's main() in a fresh interpreter and reports whether Ray was started.
PROBE = (
    "import sys, ray; from tunefleet.experiments.cli import main; rc = main(sys.argv[1:]); "
    "print('ray started' if ray.is_initialized() else 'ray not started'); sys.exit(rc)"
)

# Runs the CLI's main() in a fresh interpreter that sees a machine of 6 CPUs.
SIX_CPUS = (
    "import os, sys; os.cpu_count = lambda: 6; from tunefleet.experiments.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def _env() -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("metric: score", "metirc: score", "metirc: unknown key; did you mean 'metric'?"),
        (
            "num_samples: 2",
            "num_samples: two",
            "search.num_samples: input should be a valid integer",
        ),
        (
            "[0.0, 1.0]",
            "[1.0, 0.0]",
            "space.x.uniform: `low < high` must hold, but got low=1, high=0.",
        ),
        (
            "uniform: [0.0, 1.0]",
            "loguniform: [0.0, 1.0]",
            "space.x.loguniform: a log scale needs `low > 0`",
        ),
        (
            "uniform: [0.0, 1.0]",
            "choice: []",
            "space.x.choice: needs a non-empty list of values",
        ),
        (
            "tests.support.trainables:linear",
            "tests.support.nothing:linear",
            "trainable: cannot import module 'tests.support.nothing'",
        ),
        (
            "search: {num_samples: 2}",
            "search: {algorithm: bohb}",
            "search.algorithm: 'bohb' is not allowed",
        ),
    ],
)
def test_bad_spec_exits_2_with_one_line_and_no_ray(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    assert replace in GOOD
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace(replace, by))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "run", str(spec), "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"tunefleet: error: {lines[0].removeprefix('tunefleet: error: ')}"]
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "ray not started"
    assert not (tmp_path / "cli").exists()


def test_validate_prints_the_plan_without_running(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SIX_CPUS,
            "validate",
            str(spec),
            "--set",
            "search.num_samples=24",
            "--storage",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "lr            loguniform[0.0001, 0.03]" in out
    assert "hidden        randint[32, 256] (inclusive)" in out
    assert "optuna (tpe sampler, seed 0)" in out
    assert "asha (time_attr training_iteration, max_t 20, grace_period 3" in out
    assert (
        "trials      24; up to 6 at once on this machine (6 CPUs, 1 CPU per trial); "
        "on a cluster, as many as its nodes fit, following nodes that join or leave, and as "
        "many as its autoscaler may add nodes for\n"
    ) in out
    assert f"results     {tmp_path}/quickstart" in out
    assert out.rstrip().endswith("spec is valid.")
    assert not (tmp_path / "quickstart").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([TUNEFLEET, "run"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "the following arguments are required: spec" in proc.stderr
    missing = subprocess.run(
        [TUNEFLEET, "validate", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"tunefleet: error: {tmp_path / 'nope.yaml'}: no such file."


def test_python_m_tunefleet_experiments_is_the_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tunefleet.experiments", "validate", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"tunefleet: error: {tmp_path / 'nope.yaml'}: no such file."


USER_MODULE = """
from tunefleet.trainables import report

def train(config):
    for step in range(1, 3):
        report({"acc": config["a"] * step})
"""


@pytest.mark.slow
def test_run_tunes_a_users_own_module_on_an_embedded_ray(tmp_path: Path) -> None:
    """A model in the user's folder, outside this package, named by the spec, run by the
    real console script on its own embedded Ray."""
    (tmp_path / "my_model.py").write_text(USER_MODULE)
    (tmp_path / "exp.yaml").write_text(
        "name: mine\ntrainable: my_model:train\nmetric: acc\nmode: max\n"
        "space:\n  a: {grid: [1, 2, 3]}\nsearch: {algorithm: grid}\n"
    )
    proc = subprocess.run(
        [TUNEFLEET, "run", "exp.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "best acc = 6 (trial" in proc.stdout
    assert "3/3 done" in proc.stderr
    assert "Traceback" not in proc.stderr
    trials = pd.read_parquet(tmp_path / "results" / "mine" / "trials.parquet")
    assert sorted(trials["acc"]) == [2, 4, 6]
    assert sorted(trials["config/a"]) == [1, 2, 3]
