"""A one-node Ray cluster started with `ray start --head` for tests, and stopped again.

It runs with its own temp dir under /tmp and free ports (this machine is shared), and every
process it starts inherits a marker variable, so that `stop` ends exactly those processes
(never `ray stop`, which would end any Ray on the machine).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MARKER = "TUNEFLEET_TEST_HEAD"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (bound to port 0, then closed)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


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
    psutil = _psutil()
    procs = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == str(root):
                procs.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    shutil.rmtree(root, ignore_errors=True)


def _psutil() -> Any:
    """psutil as Ray bundles it (importing ray puts it on sys.path)."""
    import ray  # noqa: F401

    return importlib.import_module("psutil")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Ray's address and token variables, plus `extra`."""
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in dropped and k != "RAY_AUTH_TOKEN_PATH"}
    env.update(extra)
    return env
