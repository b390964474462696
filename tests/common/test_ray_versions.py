"""The supported Ray window and what differs across it (`tunefleet.common.ray_compat`),
checked on the Ray installed here: CI runs these on the newest and the oldest of the window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tunefleet.common.ray_compat import (
    SUPPORTED,
    cluster_ray_version,
    installed_ray_version,
    minor,
    version_problem,
)

pytestmark = pytest.mark.core


def test_the_installed_ray_is_inside_the_supported_window() -> None:
    import ray

    assert installed_ray_version() == ray.__version__
    low, high = SUPPORTED
    installed = minor(ray.__version__)
    assert installed is not None and low <= installed <= high


def test_the_window_is_the_one_pyproject_declares() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    (low_major, low), (high_major, high) = SUPPORTED
    window = f"ray[tune]>={low_major}.{low},<{high_major}.{high + 1}"
    assert f'"{window}"' in text
    assert f'"ray[default]>={low_major}.{low},<{high_major}.{high + 1}"' in text


@pytest.mark.parametrize(
    ("version", "expected"),
    [("2.60.0", (2, 60)), ("2.55.1", (2, 55)), ("2.60.0rc1", (2, 60)), ("nightly", None)],
)
def test_minor(version: str, expected: tuple[int, int] | None) -> None:
    assert minor(version) == expected


def test_same_minor_versions_work_together() -> None:
    assert version_problem("2.60.0", "2.60.1") is None
    assert version_problem("2.60.0", None) is None  # unknown: Ray's own check remains


def test_a_different_supported_minor_says_which_ray_to_install() -> None:
    assert version_problem("2.60.0", "2.55.1") == (
        "the cluster runs Ray 2.55.1 and this machine Ray 2.60.0; Ray needs the same minor "
        "version on both: pip install 'ray[default,tune]==2.55.1' here."
    )


def test_an_unsupported_cluster_ray_says_which_image_to_use() -> None:
    problem = version_problem("2.60.0", "2.40.0")
    assert problem is not None
    assert problem.startswith("the cluster runs Ray 2.40.0, which tunefleet does not support")
    assert "rayproject/ray:2.60.0-py311-cpu" in problem and "\n" not in problem


def test_rays_job_client_keeps_the_cluster_version_where_compat_reads_it() -> None:
    """The private attribute `cluster_ray_version` reads is the one Ray's client sets (reading
    it from a real cluster: tests/cluster/test_object_store_cluster.py)."""
    from ray.dashboard.modules.dashboard_sdk import SubmissionClient

    client = SubmissionClient.__new__(SubmissionClient)
    SubmissionClient.__init__(client, address="http://127.0.0.1:1")
    assert hasattr(client, "_server_ray_version")
    assert cluster_ray_version(client) is None  # not connected yet


def test_version_prints_the_ray_in_use() -> None:
    tunefleet = str(Path(sys.executable).with_name("tunefleet"))
    out = subprocess.run([tunefleet, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip().endswith(f"(Ray {installed_ray_version()})")
