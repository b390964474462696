"""`tracking:`: TensorBoard and MLflow through Ray Tune's own logger callbacks."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tunefleet.experiments.cli import main
from tunefleet.experiments.run.tracking import tracking_callbacks
from tunefleet.experiments.spec.optional_sections import (
    MlflowSettings,
    TrackingSettings,
    check_tracking,
)

SPEC = """
name: tb
trainable: tests.support.trainables:linear
metric: score
mode: max
space: {x: {uniform: [0.0, 1.0]}, steps: 3}
search: {num_samples: 2, seed: 0}
tracking: {tensorboard: true}
"""


def _installed(module: str) -> ModuleType:
    """The optional package a test needs: skipped without it, except under CI (`CI` set,
    as `.ci/run` does), where the dev extra installs it and a missing one fails the test."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{module} is not installed, but CI must run this test; the dev extra installs "
                "it: pip install -e '.[dev]'"
            )
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    return importlib.import_module(module)


def test_callbacks_are_ray_tunes_own() -> None:
    from ray.tune.logger import TBXLoggerCallback

    assert tracking_callbacks(TrackingSettings(), experiment="e") == []
    (tbx,) = tracking_callbacks(TrackingSettings(tensorboard=True), experiment="e")
    assert isinstance(tbx, TBXLoggerCallback)


@pytest.mark.parametrize(
    ("module", "tracking", "key", "extra"),
    [
        ("mlflow", "{mlflow: {tracking_uri: 'file:///x'}}", "mlflow", "mlflow"),
        ("tensorboardX", "{tensorboard: true}", "tensorboard", "tensorboard"),
    ],
)
def test_a_missing_package_is_one_line_naming_the_extra(
    write_spec: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    tracking: str,
    key: str,
    extra: str,
) -> None:
    # None in sys.modules is how Python marks a module that cannot be imported.
    monkeypatch.setitem(sys.modules, module, None)
    spec = write_spec(SPEC.replace("{tensorboard: true}", tracking))
    assert main(["validate", str(spec)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tunefleet: error: tracking.{key}: needs the {module} package, which is not installed; "
        f"pip install 'tunefleet[{extra}]', or remove tracking.{key}."
    )
    settings = TrackingSettings(
        mlflow=MlflowSettings(tracking_uri="file:///x") if key == "mlflow" else None,
        tensorboard=key == "tensorboard",
    )
    with pytest.raises(ValueError, match=rf"pip install 'tunefleet\[{extra}\]'"):
        check_tracking(settings)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_tensorboard_writes_event_files_per_trial(write_spec: Any, tmp_path: Path) -> None:
    _installed("tensorboardX")
    spec = write_spec(SPEC)
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    events = sorted((tmp_path / "tb").glob("trial_*/events.out.tfevents.*"))
    assert len(events) == 2
    for path in events:
        scores = [v.simple_value for v in _summaries(path) if v.tag == "ray/tune/score"]
        assert len(scores) == 3 and scores[1] == pytest.approx(2 * scores[0])


def _summaries(path: Path) -> list[Any]:
    """Summary values of a TensorBoard event file (TFRecord: length, crc, data, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, values, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
        values += list(event.summary.value)
        offset += 12 + length + 4
    return values


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_mlflow_logs_one_run_per_trial(write_spec: Any, tmp_path: Path) -> None:
    mlflow = _installed("mlflow")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3 refuses its old file store
    spec = write_spec(SPEC.replace("{tensorboard: true}", f"{{mlflow: {{tracking_uri: '{uri}'}}}}"))
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tb")  # the spec's name by default
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    for run in runs:
        x = float(run.data.params["x"])
        history = client.get_metric_history(run.info.run_id, "score")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
            [x, 2 * x, 3 * x]
        )
