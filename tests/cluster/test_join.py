"""Joining a running cluster ends fast, in one line, when it cannot work: a closed port, a port
that is not Ray's, a cluster with token authentication and no token or a wrong one. A run
that failed so leaves its results folder as it found it: the same command simply reruns.

The CLI runs as a user runs it (a subprocess). How long each failure took is printed (run
with -s to see it), not asserted: the machine is shared. The cluster is one `ray start --head`
node with a token of this module's own, stopped when the module's tests end.
"""

from __future__ import annotations

import http.server
import re
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ray_head import BIN, Head, clean_env, free_ports, start_head, stop_head
from tunefleet.cluster import ClusterError, ClusterUnavailable
from tunefleet.cluster.join import PROBE_TIMEOUT_S, Endpoint, endpoint, probe

TUNEFLEET = str(BIN / "tunefleet")
TOKEN_SOURCES = (
    r"give the cluster's token in RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, "
    r"or ~/\.ray/auth_token\.$"
)

MODEL = """
from tunefleet.trainables import report

def train(config):
    for step in range(1, 3):
        report({"acc": config["a"] * step})
"""

SPEC = """
name: joined
trainable: model:train
metric: acc
mode: max
space:
  a: {grid: [1, 2]}
search: {algorithm: grid}
"""

DIGITS_FINAL = """
name: digits
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-2]}
  epochs: 1
final: {top_k: 1, seeds: 1}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A user's folder: a model module and a spec that uses it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL)
    (folder / "exp.yaml").write_text(SPEC)
    return folder


def _tunefleet(
    args: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [TUNEFLEET, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return proc, time.monotonic() - started


def _one_line(proc: subprocess.CompletedProcess[str], pattern: str) -> str:
    """The only line on stderr (nothing on stdout), checked against `pattern`."""
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert re.match(pattern, lines[0]), lines[0]
    return lines[0]


def _endpoint(address: str) -> Endpoint:
    found = endpoint(address)
    assert found is not None
    return found


def _tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


# --- Addresses and the probe, without Ray ---------------------------------------------


@pytest.mark.parametrize(
    ("address", "host", "port", "client"),
    [
        ("10.0.0.5:6379", "10.0.0.5", 6379, False),
        ("head.example.org:6380", "head.example.org", 6380, False),
        ("ray://10.0.0.5:10001", "10.0.0.5", 10001, True),
        ("[::1]:6379", "::1", 6379, False),
    ],
)
def test_endpoint_reads_the_address_forms(address: str, host: str, port: int, client: bool) -> None:
    assert endpoint(address) == Endpoint(host=host, port=port, client=client, shown=address)


@pytest.mark.parametrize("address", ["10.0.0.5", "10.0.0.5:port", "http://10.0.0.5:8265", ":6379"])
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(ClusterError, match=r"^address: .* is not a Ray cluster address; give "):
        endpoint(address)


def test_auto_is_ray_address_or_the_cluster_ray_start_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert endpoint("auto") is None  # Ray looks for a local cluster itself
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.7:6379\n")
    found = endpoint("auto")
    assert found is not None and (found.host, found.port) == ("10.0.0.7", 6379)
    assert (
        found.shown
        == f"10.0.0.7:6379 (from {tmp_path}/ray/ray_current_cluster, left by `ray start`)"
    )
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.8:10001")
    assert endpoint("auto") == Endpoint(
        host="10.0.0.8", port=10001, client=True, shown="ray://10.0.0.8:10001 (from RAY_ADDRESS)"
    )


def test_the_probe_says_nothing_listens() -> None:
    port = free_ports(1)[0]
    with pytest.raises(
        ClusterUnavailable,
        match=rf"^could not reach a Ray cluster at 127\.0\.0\.1:{port}: connection refused: "
        rf"nothing listens on that port; check that the cluster is up \(`ray status` on its "
        rf"head node\), that {port} is its head's GCS port \(`ray start --head --port`, 6379 "
        r"by default\), and that no firewall blocks it\.$",
    ):
        probe(_endpoint(f"127.0.0.1:{port}"))


@pytest.mark.slow
def test_the_probe_gives_up_on_a_port_that_drops_connections() -> None:
    """As behind a firewall that drops packets: a listening socket whose queue is full."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        queued.append(sock)
    time.sleep(0.5)
    started = time.monotonic()
    try:
        with pytest.raises(
            ClusterUnavailable,
            match=rf"^could not reach a Ray cluster at ray://127\.0\.0\.1:{port}: no answer within "
            rf"{PROBE_TIMEOUT_S:g} s; check .* that {port} is its Ray Client port .*firewall",
        ):
            probe(_endpoint(f"ray://127.0.0.1:{port}"))
        print(f"\nprobe of a port that drops connections: {time.monotonic() - started:.1f} s")
    finally:
        for sock in [*queued, server]:
            sock.close()


def test_the_probe_tells_a_web_server_from_ray() -> None:
    """The dashboard's port given for the GCS's: it answers, but not in gRPC's HTTP/2."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        with pytest.raises(
            ClusterUnavailable,
            match=rf"^could not join a Ray cluster at 127\.0\.0\.1:{port}: port {port} answers, "
            r"but not as Ray does \(no gRPC\); give its head's GCS port .*not the dashboard's",
        ):
            probe(_endpoint(f"127.0.0.1:{port}"))
    finally:
        server.shutdown()
        server.server_close()


# --- The CLI against a closed port ----------------------------------------------------


def _closed_port_line(address: str, port: int) -> str:
    return (
        rf"^tunefleet: error: could not reach a Ray cluster at {re.escape(address)}: connection "
        rf"refused: nothing listens on that port; check that the cluster is up .*, that {port} "
        r"is its head's GCS port .*, and that no firewall blocks it\.$"
    )


@pytest.mark.parametrize("command", ["run", "resume", "evaluate"])
def test_a_closed_port_ends_in_one_line(project: Path, tmp_path: Path, command: str) -> None:
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    env = clean_env(HOME=str(tmp_path))
    if command == "run":
        args = ["run", "exp.yaml", "--storage", str(tmp_path / "results")]
    else:  # an experiment folder as `tunefleet run` leaves it
        folder = tmp_path / "results" / "exp"
        folder.mkdir(parents=True)
        (folder / "spec.yaml").write_text(DIGITS_FINAL if command == "evaluate" else SPEC)
        args = [command, str(folder)]
    before = _tree(tmp_path / "results") if command != "run" else {}
    proc, seconds = _tunefleet([*args, "--address", address], project, env)
    print(f"\n{command} --address {address} (closed): exit {proc.returncode} in {seconds:.1f} s")
    assert proc.returncode == 1
    _one_line(proc, _closed_port_line(address, port))
    if command == "run":
        assert not (tmp_path / "results").exists()
    else:
        assert _tree(tmp_path / "results") == before


@pytest.mark.slow
def test_a_run_that_could_not_join_reruns_and_replaces_nothing(
    project: Path, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    storage = tmp_path / "results"
    env = clean_env(HOME=str(tmp_path))
    args = ["run", "exp.yaml", "--storage", str(storage), "--address", address]
    for _ in range(2):  # the rerun gets as far as the first run: no "already holds" refusal
        proc, _ = _tunefleet(args, project, env)
        assert proc.returncode == 1
        _one_line(proc, _closed_port_line(address, port))
        assert not storage.exists()
    old = storage / "joined"  # an earlier experiment of that name, to be replaced
    old.mkdir(parents=True)
    (old / "trials.parquet").write_bytes(b"earlier results")
    before = _tree(storage)
    proc, _ = _tunefleet([*args, "--overwrite"], project, env)
    assert proc.returncode == 1
    _one_line(proc, _closed_port_line(address, port))
    assert _tree(storage) == before


def test_a_malformed_address_is_a_command_line_error(project: Path, tmp_path: Path) -> None:
    proc, _ = _tunefleet(
        ["run", "exp.yaml", "--address", "127.0.0.1", "--storage", str(tmp_path / "results")],
        project,
        clean_env(HOME=str(tmp_path)),
    )
    assert proc.returncode == 2
    _one_line(proc, r"^tunefleet: error: address: '127\.0\.0\.1' is not a Ray cluster address; ")


# --- A real cluster with token authentication -----------------------------------------


@pytest.fixture(scope="module")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Head, str, Path]]:
    """One head node (1 CPU) that wants a token: (the head, its token, the token's file)."""
    # Short: Ray's socket paths under the temp dir must stay under 108 characters.
    root = Path(tempfile.mkdtemp(prefix="tf-join-", dir="/tmp"))
    token = secrets.token_hex(32)
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    env = clean_env(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_file),
        HOME=str(tmp_path_factory.mktemp("home")),
    )
    try:
        yield start_head(root, env), token, token_file
    finally:
        stop_head(root)


@pytest.mark.slow
@pytest.mark.cluster
def test_the_probe_passes_a_real_head(token_head: tuple[Head, str, Path]) -> None:
    head, _, _ = token_head
    probe(_endpoint(head.gcs_address))


@pytest.mark.slow
@pytest.mark.cluster
def test_joining_without_a_token_ends_in_one_line(
    token_head: tuple[Head, str, Path], project: Path, tmp_path: Path
) -> None:
    head, token, _ = token_head
    storage = tmp_path / "results"
    args = ["run", "exp.yaml", "--address", head.gcs_address, "--storage", str(storage)]
    # Without RAY_AUTH_MODE=token Ray sends no token to an address it was given.
    proc, seconds = _tunefleet(args, project, clean_env(HOME=str(tmp_path)))
    print(f"\nrun, token cluster, no RAY_AUTH_MODE: exit {proc.returncode} in {seconds:.1f} s")
    assert proc.returncode == 1
    _one_line(
        proc,
        rf"^tunefleet: error: could not join the Ray cluster at {head.gcs_address}: it requires "
        r"an authentication token and none was sent; set RAY_AUTH_MODE=token and " + TOKEN_SOURCES,
    )
    # With it, but no token anywhere (an empty home: no ~/.ray/auth_token).
    proc, seconds = _tunefleet(args, project, clean_env(HOME=str(tmp_path), RAY_AUTH_MODE="token"))
    print(f"run, token cluster, no token found: exit {proc.returncode} in {seconds:.1f} s")
    assert proc.returncode == 1
    _one_line(
        proc,
        rf"^tunefleet: error: could not join the Ray cluster at {head.gcs_address}: "
        r"RAY_AUTH_MODE=token is set but no token was found; " + TOKEN_SOURCES,
    )
    assert token not in proc.stdout + proc.stderr
    assert not storage.exists()


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("given", ["RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"])
def test_a_wrong_token_ends_in_one_line_and_the_right_one_reruns(
    token_head: tuple[Head, str, Path], project: Path, tmp_path: Path, given: str
) -> None:
    head, token, token_file = token_head
    wrong = secrets.token_hex(32)
    wrong_file = tmp_path / "wrong_token"
    wrong_file.write_text(wrong)
    storage = tmp_path / "results"
    args = ["run", "exp.yaml", "--address", head.gcs_address, "--storage", str(storage)]
    home = str(tmp_path)
    if given == "RAY_AUTH_TOKEN":
        env = clean_env(HOME=home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=wrong)
        source = "RAY_AUTH_TOKEN"
    else:
        env = clean_env(HOME=home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(wrong_file))
        source = rf"RAY_AUTH_TOKEN_PATH \({re.escape(str(wrong_file))}\)"
    proc, seconds = _tunefleet(args, project, env)
    print(f"\nrun, token cluster, wrong {given}: exit {proc.returncode} in {seconds:.1f} s")
    assert proc.returncode == 1
    _one_line(
        proc,
        rf"^tunefleet: error: could not join the Ray cluster at {head.gcs_address}: it refused "
        rf"the token from {source}; give the token the cluster was started with, in "
        r"RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/\.ray/auth_token\.$",
    )
    assert wrong not in proc.stderr and token not in proc.stderr
    assert not storage.exists()
    # The same command with the cluster's token runs: no --overwrite needed.
    right = clean_env(HOME=home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    proc, _ = _tunefleet(args, project, right)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "joined: 2 trials (2 terminated)" in proc.stdout
    assert token not in proc.stdout + proc.stderr
    assert (storage / "joined" / "trials.parquet").is_file()
