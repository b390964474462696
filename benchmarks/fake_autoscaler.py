"""A real autoscaling Ray cluster on this machine, for the tests and the elastic benchmark:
Ray's own autoscaler on its
`fake_multinode` node provider (the one Ray's autoscaler tests use), which launches worker
nodes as local processes for pending demand and terminates idle ones.

Ray's wheel does not ship the example config that `ray.cluster_utils.AutoscalingCluster`
reads (and its `start()` runs `ray stop --force`, which stops every Ray on the machine), so
the config is written here. The provider's `gcs_address` points the launched nodes at the
head's port (they look for 6379 without it). Every process inherits a marker variable, so
stopping the cluster stops only what it started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.local_ray import BIN, free_ports, psutil_module, stop_marked

__all__ = ["AutoscalingCluster", "autoscaler_config", "kill_worker", "start_autoscaling_cluster"]

MARKER = "TUNEFLEET_FAKE_AUTOSCALER"
WORKER_TYPE = "cpu_node"
# The node id the fake provider gives the head (`FAKE_HEAD_NODE_ID` in Ray's provider).
HEAD_NODE_ID = "f" * 51 + "00000"


def autoscaler_config(
    gcs_address: str, *, max_workers: int, worker_cpus: int = 1, idle_timeout_minutes: float
) -> dict[str, Any]:
    """The autoscaler's cluster config: a head with no CPU (it runs the driver only) and one
    worker type of `worker_cpus` CPUs, from 0 up to `max_workers` nodes."""
    return {
        "cluster_name": "tunefleet-fake",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            WORKER_TYPE: {
                "resources": {"CPU": worker_cpus},
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_workers,
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@dataclass
class AutoscalingCluster:
    """A head whose autoscaler launches `cpu_node` workers on demand.

    Attributes:
        root: The folder of the head's files and the config.
        env: The environment the head (and so every launched node) runs with; clients that
            talk to the cluster use it too.
        gcs_address: `127.0.0.1:PORT`, for `--address`.
        max_workers: The most worker nodes the autoscaler launches.
    """

    root: Path
    env: dict[str, str]
    gcs_address: str
    max_workers: int

    def worker_raylets(self) -> dict[str, Any]:
        """Node id -> psutil process of every launched worker node's raylet alive now."""
        psutil = psutil_module()
        found = {}
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "raylet":
                continue
            try:
                env = proc.environ()
            except (psutil.Error, OSError):
                continue
            node_id = env.get("RAY_OVERRIDE_NODE_ID_FOR_TESTING")
            if env.get(MARKER) == str(self.root) and node_id and node_id != HEAD_NODE_ID:
                found[node_id] = proc
        return found

    def alive_workers(self) -> set[str]:
        """Ids of the worker nodes Ray counts as alive (the head has no CPU)."""
        import ray

        return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0}

    def monitor_log(self) -> str:
        """The autoscaler's log (`monitor.log`), for assertion messages."""
        logs = sorted(self.root.glob("**/logs/monitor.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)


def kill_worker(raylet: Any) -> None:
    """Loses a launched node as a machine is lost: SIGKILL to its raylet and everything
    under it."""
    psutil = psutil_module()
    procs = [raylet, *raylet.children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)


@contextlib.contextmanager
def start_autoscaling_cluster(
    *, max_workers: int = 3, worker_cpus: int = 1, idle_timeout_minutes: float = 0.25
) -> Iterator[AutoscalingCluster]:
    """Starts a 0-CPU head with Ray's autoscaler on the fake provider, under token
    authentication; stops the head and every node it launched on exit. The autoscaler
    updates every second and counts a node dead after 5 s without a heartbeat, and the GCS
    after 3 failed health checks 1 s apart (Ray's defaults, 5 s, 30 s and 5 checks 3 s
    apart, only make the tests slower)."""
    root = Path(tempfile.mkdtemp(prefix="tf-as-", dir="/tmp"))
    token_file = root / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    (gcs,) = free_ports(1)
    gcs_address = f"127.0.0.1:{gcs}"
    config = root / "autoscaler.yaml"
    config.write_text(
        yaml.safe_dump(
            autoscaler_config(
                gcs_address,
                max_workers=max_workers,
                worker_cpus=worker_cpus,
                idle_timeout_minutes=idle_timeout_minutes,
            )
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN")
    }
    env.update(
        {
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            "AUTOSCALER_HEARTBEAT_TIMEOUT_S": "5",
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_file),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            MARKER: str(root),
        }
    )
    try:
        subprocess.run(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                f"--port={gcs}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=0",
                f"--autoscaling-config={config}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                "--object-store-memory=100000000",
                f"--temp-dir={root / 'head'}",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        started = time.monotonic()
        print(f"\nautoscaling head up (max {max_workers} workers) at {gcs_address}")
        yield AutoscalingCluster(
            root=root, env=env, gcs_address=gcs_address, max_workers=max_workers
        )
        print(f"autoscaling cluster ran {time.monotonic() - started:.1f} s")
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"ray start failed:\n{exc.stderr.decode()[-3000:]}") from exc
    finally:
        stop_marked(MARKER, root)
        shutil.rmtree(root, ignore_errors=True)
