"""A one-node Ray cluster started with `ray start --head` for tests, and stopped again.

It runs with its own temp dir under /tmp and free ports (this machine is shared), and every
process it starts inherits a marker variable, so that `stop` ends exactly those processes
(never `ray stop`, which would end any Ray on the machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.local_cluster import BIN, free_ports, stop_marked

__all__ = ["BIN", "Head", "clean_env", "free_ports", "start_head", "stop_head"]

MARKER = "TUNEFLEET_TEST_HEAD"


@dataclass(frozen=True)
class Head:
    """A running head node: its GCS address and the folder holding its temp dir."""

    root: Path
    gcs_address: str


def start_head(root: Path, env: Mapping[str, str], *, cpus: int = 1) -> Head:
    """`ray start --head` with `env` (e.g. `RAY_AUTH_MODE=token`), temp dir `root/head`.

    Raises:
        AssertionError: With Ray's output, if the head did not start.
    """
    gcs, dashboard, agent, metrics, client = free_ports(5)
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        f"--port={gcs}",
        f"--num-cpus={cpus}",
        "--include-dashboard=false",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}",
        f"--metrics-export-port={metrics}",
        f"--ray-client-server-port={client}",
        f"--temp-dir={root / 'head'}",
        "--disable-usage-stats",
        "--object-store-memory=100000000",
    ]
    proc = subprocess.run(
        command,
        env={**env, MARKER: str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        stop_head(root)
        raise AssertionError(f"ray start failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return Head(root=root, gcs_address=f"127.0.0.1:{gcs}")


def stop_head(root: Path) -> None:
    """Ends every process carrying `root`'s marker (SIGTERM, then SIGKILL); removes `root`."""
    stop_marked(MARKER, root)
    shutil.rmtree(root, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Ray's address and token variables, plus `extra`."""
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in dropped and k != "RAY_AUTH_TOKEN_PATH"}
    env.update(extra)
    return env
