"""Shared fixtures: one real Ray instance and one real S3-compatible object store for the
whole session."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.object_store import ObjectStore, start_object_store

REPO = Path(__file__).resolve().parents[1]

# Ray Train's controller collects a gang's reports once per health check, every 2 s by
# default; the data-parallel tests' epochs take a fraction of that. Set before any Ray starts
# (the session's, the commands' and the clusters' inherit it).
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")


def _fail_skips_under_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI (`CI` set), a skipped test or module fails: CI installs everything every
    test needs, so a skip there means a feature went untested without a word."""
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skips_under_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skips_under_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    """moto's S3 server on 127.0.0.1 with a bucket, its endpoint and credentials exported
    in the standard AWS variables: to this process, and so to the subprocesses, Ray
    instances and Ray workers started after it."""
    with start_object_store() as store:
        saved = {k: os.environ.get(k) for k in store.env}
        os.environ.update(store.env)
        try:
            yield store
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture()
def s3_storage(object_store: ObjectStore) -> str:
    """A fresh `s3://bucket/<prefix>` results root for one test."""
    return object_store.uri(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def ray_instance(object_store: ObjectStore) -> Iterator[None]:
    """A real, embedded Ray with 2 CPUs (never a leftover cluster from `ray start`).

    Started after the object store, so that its workers reach the bucket through the same
    environment as the driver.
    """
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A `cluster` or `browser` test is a `slow` one too, so the fast loop leaves it out."""
    for item in items:
        heavy = item.get_closest_marker("cluster") or item.get_closest_marker("browser")
        if heavy and not item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} is marked {heavy.name}: mark it slow too.")
