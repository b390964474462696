"""The GPU path of `TorchTrainable`: the device follows the resources a trial (or a final
retraining) reserved, and a reserved GPU that torch cannot use fails the trial in one line
instead of training on the CPU while the GPU sits idle.

On machines without CUDA (this project's CI) the refusal is what runs; with CUDA, the
device. Ray itself is given a logical GPU here, so the trial really reserves one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.support.specs import spec_yaml
from tunefleet.trainables.examples.digits import mlp_trainable
from tunefleet.trainables.pytorch import NoCudaError, trial_device

REPO = Path(__file__).resolve().parents[2]
CUDA = torch.cuda.is_available()
NO_CUDA = r"resources\.gpu: the trial reserved 0\.5 GPU, but torch \S+ sees no CUDA device"


def test_the_device_follows_the_reserved_gpus() -> None:
    assert trial_device(0) == torch.device("cpu")
    if CUDA:
        assert trial_device(0.5) == torch.device("cuda")
    else:
        with pytest.raises(NoCudaError, match=NO_CUDA):
            trial_device(0.5)


def test_the_final_retraining_trains_where_the_trials_did() -> None:
    config = {"epochs": 3, "hidden": 32, "lr": 1e-2}
    cpu = mlp_trainable.evaluate(config, seed=0, cpus=1, gpus=0)
    assert cpu["test_accuracy"] > 0.5
    if CUDA:
        assert mlp_trainable.evaluate(config, seed=0, cpus=1, gpus=0.5)["test_accuracy"] > 0.5
    else:
        with pytest.raises(NoCudaError, match=NO_CUDA):
            mlp_trainable.evaluate(config, seed=0, cpus=1, gpus=0.5)


@pytest.mark.slow
def test_a_trial_that_reserved_a_gpu_trains_on_it_or_fails_in_one_line(tmp_path: Path) -> None:
    """Two `gpu: 0.5` trials share Ray's one GPU (logical here): with CUDA both train on it;
    without, both fail in one line each, and neither trains on the CPU."""
    spec = tmp_path / "gpu.yaml"
    spec.write_text(
        spec_yaml(
            name="gpu",
            trainable="tunefleet.trainables.examples.digits:mlp_trainable",
            metric="val_accuracy",
            space={"lr": {"loguniform": [1e-3, 1e-2]}, "epochs": 1, "hidden": 16},
            search={"num_samples": 2, "seed": 0},
            resources={"cpu": 1, "gpu": 0.5},
        )
    )
    script = textwrap.dedent(
        f"""
        import ray, sys
        from tunefleet.experiments.cli import main
        ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False)
        sys.exit(main(["run", {str(spec)!r}, "--storage", {str(tmp_path)!r}]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    if CUDA:
        assert proc.returncode == 0, proc.stderr[-2000:]
        return
    assert proc.returncode == 1, proc.stderr[-2000:]  # every trial failed
    failed = [line for line in proc.stderr.splitlines() if " failed: " in line]
    assert len(failed) == 2, proc.stderr[-2000:]
    assert all("sees no CUDA device" in line for line in failed), failed
    assert "Traceback" not in proc.stderr
