"""Shared fixtures: one real Ray instance for the whole session."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """A real, embedded Ray with 2 CPUs (never a leftover cluster from `ray start`)."""
    import ray

    os.chdir(REPO)  # workers import `tests.support...` relative to the driver's folder
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield
    ray.shutdown()


@pytest.fixture()
def write_spec(tmp_path: Path):
    """Writes a YAML spec into tmp_path and returns its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
