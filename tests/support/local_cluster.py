"""A real multi-node Ray cluster on this machine, for tests: `ray start` nodes under token
authentication, each with its own ports and CPU count.

Every process the cluster starts inherits a marker variable, so stopping it never touches
another Ray on the machine (no `ray stop`). Ray 2.60 gives each node its own `--temp-dir`;
Ray 2.50 ignores the flag on worker nodes (they share the head's), so nodes are told apart
by the metrics port each is given.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.local_ray import BIN, free_ports, psutil_module, stop_marked

__all__ = [
    "BIN",
    "MARKER",
    "LocalCluster",
    "Node",
    "busy_worker",
    "dashboard_available",
    "free_ports",
    "join_worker",
    "kill_node",
    "psutil_module",
    "start_cluster",
    "stop_marked",
]

MARKER = "TUNEFLEET_TEST_CLUSTER"


@dataclass
class Node:
    """One `ray start` node: its name, temp dir, CPUs, metrics port and (once up) raylet
    PID and node id."""

    name: str
    temp_dir: Path
    cpus: int
    metrics_port: int = 0
    raylet_pid: int = 0
    node_id: str = ""


@dataclass
class LocalCluster:
    """A head and workers started with `ray start` on this machine.

    Attributes:
        root: The folder under which every node keeps its files.
        env: The environment the nodes run with (token settings, marker, PATH); clients
            that talk to the cluster use it too.
        token: The cluster's authentication token (to check it never shows up in output).
        gcs_address: `127.0.0.1:PORT`, for `--address`.
        dashboard_url: The job server's address, or None without Ray's dashboard.
        nodes: The head first, then the workers.
    """

    root: Path
    env: dict[str, str]
    token: str
    gcs_address: str
    dashboard_url: str | None
    nodes: list[Node] = field(default_factory=list)

    def node_ids(self) -> set[str]:
        return {node.node_id for node in self.nodes}

    def node_of(self, node_id: str) -> Node:
        return next(node for node in self.nodes if node.node_id == node_id)


def _find_raylet(node: Node) -> None:
    """Fills in the raylet PID and node id of a started node from its command line."""
    psutil = psutil_module()
    flag = f"--metrics_export_port={node.metrics_port}"
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "raylet" and flag in cmdline:
            node.raylet_pid = proc.pid
            # `--node-id=` in Ray 2.60, `--node_id=` in Ray 2.50.
            match = re.search(r"--node[-_]id=(\w+)", " ".join(cmdline))
            assert match is not None, cmdline
            node.node_id = match[1]
            return
    raise AssertionError(f"no raylet found for {node.name} ({flag})")


def dashboard_available() -> bool:
    """Whether Ray's dashboard (and so its job server) can start here."""
    try:
        from ray._private.utils import get_dashboard_dependency_error
    except ImportError:
        return False
    return get_dashboard_dependency_error() is None


@contextlib.contextmanager
def start_cluster(
    cpus: tuple[int, ...] = (1, 1, 2), extra_env: Mapping[str, str] | None = None
) -> Iterator[LocalCluster]:
    """Starts a head with `cpus[0]` CPUs and one worker node per further entry, under
    token authentication with a fresh token; stops them all on exit.

    Args:
        cpus: CPUs of the head, then of each worker node.
        extra_env: More variables for every node (and `LocalCluster.env`).
    """
    # Short: Ray's socket paths under the temp dirs must stay under 108 characters.
    root = Path(tempfile.mkdtemp(prefix="tf-mn-", dir="/tmp"))
    token_file = root / "auth_token"
    token = secrets.token_hex(32)
    token_file.write_text(token)
    token_file.chmod(0o600)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN")
    }
    env.update(
        {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_file),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # `tunefleet` for jobs
            MARKER: str(root),
            **(extra_env or {}),
        }
    )
    gcs, dashboard, agent, *metrics = free_ports(3 + 2 * len(cpus))
    with_dashboard = dashboard_available()
    nodes = [
        Node("head" if i == 0 else f"w{i}", root / ("head" if i == 0 else f"w{i}"), n)
        for i, n in enumerate(cpus)
    ]
    started = time.monotonic()
    try:
        for i, node in enumerate(nodes):
            node.metrics_port = metrics[2 * i]
            if i == 0:
                where = [
                    "--head",
                    f"--port={gcs}",
                    f"--include-dashboard={'true' if with_dashboard else 'false'}",
                    f"--dashboard-port={dashboard}",
                    f"--dashboard-agent-listen-port={agent}",
                ]
            else:
                where = [
                    f"--address=127.0.0.1:{gcs}",
                    f"--dashboard-agent-listen-port={metrics[2 * i + 1]}",
                ]
            _ray_start(node, where, env)
        for node in nodes:
            _find_raylet(node)
        print(f"\n{len(nodes)}-node cluster up in {time.monotonic() - started:.1f} s")
        yield LocalCluster(
            root=root,
            env=env,
            token=token,
            gcs_address=f"127.0.0.1:{gcs}",
            dashboard_url=f"http://127.0.0.1:{dashboard}" if with_dashboard else None,
            nodes=nodes,
        )
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"ray start failed:\n{exc.stderr.decode()[-3000:]}") from exc
    finally:
        stop_marked(MARKER, root)
        shutil.rmtree(root, ignore_errors=True)


def _ray_start(node: Node, where: list[str], env: Mapping[str, str]) -> None:
    """`ray start` of one node: its CPUs, metrics port and temp dir (raises
    CalledProcessError with Ray's output when it fails)."""
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            *where,
            f"--num-cpus={node.cpus}",
            f"--metrics-export-port={node.metrics_port}",
            f"--temp-dir={node.temp_dir}",
            "--disable-usage-stats",
            "--object-store-memory=100000000",
        ],
        env=dict(env),
        check=True,
        capture_output=True,
        timeout=120,
    )


def join_worker(cluster: LocalCluster, cpus: int) -> Node:
    """Adds a worker node to a running cluster (`ray start --address=...`), as a person
    adds a machine; it is stopped with the cluster."""
    metrics, agent = free_ports(2)
    name = f"w{len(cluster.nodes)}"
    node = Node(name, cluster.root / name, cpus, metrics_port=metrics)
    where = [f"--address={cluster.gcs_address}", f"--dashboard-agent-listen-port={agent}"]
    try:
        _ray_start(node, where, cluster.env)
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"ray start failed:\n{exc.stderr.decode()[-3000:]}") from exc
    _find_raylet(node)
    cluster.nodes.append(node)
    return node


def kill_node(node: Node) -> None:
    """Loses `node` as a machine is lost: SIGKILL to its raylet and every process under it
    (the trials' workers among them). Killing the raylet alone leaves its workers running
    until they notice, long enough on a fast machine for a trial to finish its epochs."""
    psutil = psutil_module()
    raylet = psutil.Process(node.raylet_pid)
    procs = [raylet, *raylet.children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)


def busy_worker(cluster: LocalCluster) -> Node | None:
    """A worker node (not the head) whose raylet has a trial in training."""
    psutil = psutil_module()
    for node in cluster.nodes[1:]:
        try:
            children = psutil.Process(node.raylet_pid).children()
        except psutil.Error:
            continue
        for child in children:
            try:
                title = " ".join(child.cmdline())  # Ray sets it to `ray::ImplicitFunc.train`
            except psutil.Error:
                continue
            if title.startswith("ray::ImplicitFunc") and "train" in title:
                return node
    return None
