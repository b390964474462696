"""`tunefleet.run`, `resume`, `validate` and `load` from Python, on the session's real Ray:
a function, a class and a wrapper given as objects, a spec as a dict, a file and a model,
the command's one-line errors, and Ctrl-C followed by `resume(..., trainable=...)`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import tunefleet
from tests.support.trainables import Counter
from tunefleet.experiments.results.files import SPEC_FILE
from tunefleet.experiments.run.experiment_folder import RunError
from tunefleet.experiments.spec.loading import SpecError, validate_spec
from tunefleet.trainables import get_checkpoint, report
from tunefleet.trainables.resolve import TrainableError

REPO = Path(__file__).resolve().parents[2]


def scored(config: dict[str, Any]) -> None:
    """Three results: score = x * step."""
    for step in range(1, 4):
        report({"score": config["x"] * step})


def two_args(config: dict[str, Any], other: int) -> None:
    """Not a trainable: it needs a second argument."""


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "name": "py",
        "metric": "score",
        "mode": "max",
        "space": {"x": {"uniform": [0.0, 1.0]}},
        "search": {"algorithm": "random", "num_samples": 3, "seed": 0},
        "resources": {"cpu": 1},
        **changes,
    }


def test_import_tunefleet_is_cheap_and_names_the_python_door() -> None:
    code = (
        "import sys, tunefleet; "
        "print(sorted(m for m in ('ray', 'torch', 'pandas') if m in sys.modules)); "
        "print(tunefleet.__version__); print(all(getattr(tunefleet, n) is not None "
        "for n in tunefleet.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split("\n")
    from importlib.metadata import version

    assert out[:3] == ["[]", version("tunefleet"), "True"]
    assert {"run", "resume", "validate", "load", "shutdown"} <= set(tunefleet.__all__)


def test_validate_takes_a_dict_a_file_and_a_spec_model(tmp_path: Path) -> None:
    raw = spec(trainable="tests.api.test_running:scored")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    for given in (raw, path, str(path), validate_spec(raw)):
        plan = tunefleet.validate(given, overrides={"search.num_samples": 5})
        assert plan.spec.trial_count == 5
        assert plan.spec.trainable == "tests.api.test_running:scored"
        assert not plan.given_as_object
    plan = tunefleet.validate(path, overrides=["search.num_samples=4"], name="other")
    assert (plan.spec.name, plan.spec.trial_count) == ("other", 4)


def test_a_wrong_spec_raises_the_commands_one_line() -> None:
    with pytest.raises(
        SpecError,
        match=r"^search\.algorithm: 'tpe-ish' is not allowed; choose one of random, grid, "
        r"hyperopt, optuna, pbt, pb2",
    ):
        tunefleet.run(spec(search={"algorithm": "tpe-ish"}), trainable=scored)
    with pytest.raises(tunefleet.TunefleetError, match=r"^trainable: required key is missing\.$"):
        tunefleet.validate(spec())
    with pytest.raises(
        TrainableError,
        match=r"^trainable: 'tests\.api\.test_running:two_args' must take exactly one argument",
    ):
        tunefleet.validate(spec(), trainable=two_args)
    with pytest.raises(
        SpecError,
        match=r"^spec: a int is not a spec; give a file's path, a dict written like the YAML, or an ExperimentSpec",
    ):
        tunefleet.validate(3)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.core
@pytest.mark.usefixtures("ray_instance")
def test_run_a_function_object_and_read_the_results(tmp_path: Path) -> None:
    exp = tunefleet.run(spec(), trainable=scored, storage=tmp_path)
    assert exp.summary is not None and exp.summary.statuses == {"TERMINATED": 3}
    assert len(exp.trials) == 3 and len(exp.iterations) == 9
    assert exp.best()["best/score"] == pytest.approx(exp.trials["best/score"].max())
    assert list(exp.top(2)["best/score"]) == sorted(exp.trials["best/score"], reverse=True)[:2]
    assert exp.learning_curves().shape == (3, 3)
    assert exp.path == tunefleet.load(tmp_path / "py").path
    # An importable function is recorded by its path, and a resume finds it again.
    text = (tmp_path / "py" / SPEC_FILE).read_text()
    assert yaml.safe_load(text)["trainable"] == "tests.api.test_running:scored"
    assert not text.startswith("#")
    assert "trainable_given_as_object" not in exp.metadata
    more = tunefleet.resume(tmp_path / "py", extend=1)
    assert len(more.trials) == 4


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_run_a_class_from_a_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "counter.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "counter",
                "trainable": "tests.support.trainables:NoCheckpoints",  # replaced below
                "metric": "value",
                "mode": "max",
                "space": {"start": 0, "rate": {"grid": [1, 2]}},
                "search": {"algorithm": "grid"},
                "stop": {"training_iteration": 3},
            }
        )
    )
    exp = tunefleet.run(path, trainable=Counter, storage=tmp_path / "results")
    assert sorted(exp.trials["best/value"]) == [3, 6]
    assert exp.metadata["spec"]["trainable"] == "tests.support.trainables:Counter"


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_run_a_wrapper_object_defined_in_a_function(tmp_path: Path) -> None:
    from torch import nn

    from tunefleet.trainables.examples.digits import data
    from tunefleet.trainables.pytorch import TorchTrainable

    def linear(config: dict[str, Any]) -> nn.Module:
        return nn.Linear(64, 10)

    wrapper = TorchTrainable(model=linear, data=data, metrics=("accuracy",))
    raw = spec(
        metric="val_accuracy",
        space={"lr": {"loguniform": [1e-3, 1e-1]}, "epochs": 2, "batch_size": 64},
        search={"algorithm": "optuna", "num_samples": 2, "seed": 0},
    )
    exp = tunefleet.run(raw, trainable=wrapper, storage=tmp_path, name="wrapped")
    assert exp.summary is not None and exp.summary.statuses == {"TERMINATED": 2}
    assert (exp.trials["best/val_accuracy"] > 0.5).all()
    # No name reaches the object: the results say so, and resume asks for it again.
    assert (
        (tmp_path / "wrapped" / SPEC_FILE)
        .read_text()
        .startswith("# trainable: given to tunefleet.run() as an object")
    )
    assert exp.metadata["trainable_given_as_object"] is True


def _interrupting(config: dict[str, Any]) -> None:
    """Counts to `steps`, checkpointing each step; the first trial to reach step 2 sends
    SIGINT (Ctrl-C) to the driver once, as a user would after seeing a checkpoint."""
    import time

    start = 0
    checkpoint = get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = int(Path(directory, "step").read_text())
    for step in range(start + 1, int(config["steps"]) + 1):
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "step").write_text(str(step))
            report({"score": config["x"] + step}, checkpoint=directory)
        marker = Path(config["marker"])
        if step == 2 and not marker.exists():
            marker.touch()
            os.kill(int(config["driver"]), signal.SIGINT)
        time.sleep(float(config["sleep"]))


@pytest.mark.slow
@pytest.mark.core
@pytest.mark.usefixtures("ray_instance")
def test_ctrl_c_then_resume_with_the_object_finishes_every_trial_once(tmp_path: Path) -> None:
    # Defined here, so no import path reaches it: resume must be given it again.
    def interrupting(config: dict[str, Any]) -> None:
        _interrupting(config)

    raw = spec(
        space={
            "x": {"uniform": [0.0, 1.0]},
            "steps": 6,
            "sleep": 0.3,
            "driver": os.getpid(),
            "marker": str(tmp_path / "interrupted"),
        },
        search={"algorithm": "optuna", "num_samples": 4, "seed": 0, "max_concurrent": 2},
        results={"flush_every_s": 1},
    )
    with pytest.raises(tunefleet.Interrupted) as info:
        tunefleet.run(raw, trainable=interrupting, storage=tmp_path, name="ctrl-c")
    exp_dir = str(tmp_path / "ctrl-c")
    assert info.value.location == exp_dir
    assert f"trials unfinished; continue with: tunefleet.resume({exp_dir!r}, trainable=...)" in str(
        info.value
    )
    with pytest.raises(
        RunError,
        match=r"its trainable '__main__:trainable' was given to tunefleet\.run\(\) as an object; "
        r"resume it from Python with tunefleet\.resume\(.*, trainable=\.\.\.\)\.$",
    ):
        tunefleet.resume(exp_dir)
    exp = tunefleet.resume(exp_dir, trainable=interrupting)
    assert exp.summary is not None and exp.summary.statuses == {"TERMINATED": 4}
    assert len(exp.trials) == 4 and exp.trials["trial_id"].is_unique
    steps = exp.iterations[["trial_id", "training_iteration"]]
    assert not steps.duplicated().any()
    assert (exp.iterations.groupby("trial_id")["training_iteration"].max() == 6).all()


@pytest.mark.slow
def test_the_readme_example_runs_as_a_script(tmp_path: Path) -> None:
    import re

    readme = (REPO / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)\n```", section, flags=re.S)
    (tmp_path / "example.py").write_text(block)
    proc = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,  # its own embedded Ray, `train` in `__main__`
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best/score" in proc.stdout and "{'x': " in proc.stdout
    saved = yaml.safe_load((tmp_path / "results" / "from-python" / SPEC_FILE).read_text())
    assert saved["trainable"] == "__main__:train"
    assert "4/4 done" in proc.stderr and "Traceback" not in proc.stderr
