"""The same experiment file on a real multi-node Ray cluster, and the cluster helpers.

The cluster is three `ray start` nodes on this machine (a head and two workers, each with
its own ports and CPU count) under token authentication with a token of the test's own
(`tests.support.local_cluster`); teardown stops only the processes it started.

The tests that need the cluster run in file order: the last one kills a worker node.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support.local_cluster import (
    BIN,
    LocalCluster,
    busy_worker,
    free_ports,
    kill_node,
    start_cluster,
)
from tests.support.overlap import most_at_once
from tunefleet.cluster import ClusterError
from tunefleet.cluster.jobs import DEFAULT_EXCLUDES, job_request, submit
from tunefleet.cluster.launcher import attach, down, launcher_command, up
from tunefleet.common.ray_compat import installed_ray_version

# --- Helpers that need no Ray -------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_job_request_runs_the_spec_from_the_uploaded_folder(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "my exp.yaml"
    spec.write_text("name: x\n")
    request = job_request(
        spec,
        storage="s3://bucket/results",
        working_dir=tmp_path,
        overrides=["search.num_samples=8", "space.lr=0.1"],
        name="again",
        overwrite=True,
        pip=["${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}/dist/tunefleet-0.1.0-py3-none-any.whl"],
    )
    assert request.entrypoint == (
        "tunefleet run 'specs/my exp.yaml' --address auto --storage s3://bucket/results "
        "--set search.num_samples=8 --set space.lr=0.1 --name again --overwrite"
    )
    assert request.runtime_env == {
        "working_dir": str(tmp_path.resolve()),
        "excludes": list(DEFAULT_EXCLUDES),
        "pip": ["${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}/dist/tunefleet-0.1.0-py3-none-any.whl"],
    }


def test_job_request_takes_a_spec_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "exp.yaml").write_text("name: x\n")
    monkeypatch.chdir(tmp_path)
    request = job_request("exp.yaml", storage="~/results")
    assert request.entrypoint == "tunefleet run exp.yaml --address auto --storage '~/results'"
    assert request.runtime_env == {
        "working_dir": str(tmp_path.resolve()),
        "excludes": list(DEFAULT_EXCLUDES),
    }


@pytest.mark.parametrize(
    ("spec", "storage", "working_dir", "message"),
    [
        ("nope.yaml", "/shared/results", "work", r"^nope\.yaml: no such file\.$"),
        (
            "outside.yaml",
            "/shared/results",
            "work",
            r"outside\.yaml is outside the working directory .*/work; the job sees only",
        ),
        (
            "work/exp.yaml",
            "results",
            "work",
            r"^storage: 'results' is relative, but the job runs in a temporary copy",
        ),
        ("work/exp.yaml", "/shared", "missing", r"^working_dir: .*missing is not a folder\.$"),
    ],
)
def test_job_request_errors_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    storage: str,
    working_dir: str,
    message: str,
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "exp.yaml").write_text("name: x\n")
    (tmp_path / "outside.yaml").write_text("name: x\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ClusterError, match=message) as info:
        job_request(spec, storage=storage, working_dir=tmp_path / working_dir)
    assert "\n" not in str(info.value)


def test_submit_wants_the_dashboard_address(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("name: x\n")
    with pytest.raises(ClusterError, match=r"^address: '127\.0\.0\.1:6379' is not the dash"):
        submit(
            tmp_path / "exp.yaml",
            address="127.0.0.1:6379",
            storage="/shared",
            working_dir=tmp_path,
        )


def test_submit_refuses_a_conflicting_ray_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "exp.yaml").write_text("name: x\n")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.1:8265")
    with pytest.raises(
        ClusterError,
        match=r"^RAY_ADDRESS=http://10\.0\.0\.1:8265 is set and Ray would use it instead of "
        r"http://127\.0\.0\.1:8265; unset it",
    ):
        submit(
            tmp_path / "exp.yaml",
            address="http://127.0.0.1:8265",
            storage="/shared",
            working_dir=tmp_path,
        )


def test_submit_needs_rays_job_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exp.yaml").write_text("name: x\n")
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as on an install without ray[default]
    with pytest.raises(
        ClusterError,
        match=r"^submitting jobs needs Ray's job client, which is not installed here "
        rf"\(aiohttp is missing\): pip install 'ray\[default\]=={re.escape(installed_ray_version())}'\.$",
    ):
        submit(
            tmp_path / "exp.yaml",
            address="http://127.0.0.1:8265",
            storage="/shared",
            working_dir=tmp_path,
        )


def test_submit_says_when_nothing_listens(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp", reason="Ray's job client needs ray[default]")
    (tmp_path / "exp.yaml").write_text("name: x\n")
    port = free_ports(1)[0]
    with pytest.raises(ClusterError, match=r"^could not reach the Ray job server at http://"):
        submit(
            tmp_path / "exp.yaml",
            address=f"http://127.0.0.1:{port}",
            storage="/shared",
            working_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("action", "args"), [("up", ["up", "-y"]), ("down", ["down", "-y"]), ("attach", ["attach"])]
)
def test_launcher_commands(tmp_path: Path, action: str, args: list[str]) -> None:
    config = tmp_path / "aws.yaml"
    config.write_text("cluster_name: x\n")
    assert launcher_command(action, config, ray="/opt/ray") == ["/opt/ray", *args, str(config)]


def test_launcher_runs_ray_and_returns_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `ray` next to a stand-in interpreter records what it was asked to do."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    log = tmp_path / "calls"
    fake_ray = fake_bin / "ray"
    fake_ray.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 3\n')
    fake_ray.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_bin / "python"))
    config = tmp_path / "gcp.yaml"
    config.write_text("cluster_name: x\n")
    assert up(config) == 3
    assert down(config) == 3
    assert attach(config) == 3
    assert log.read_text().splitlines() == [
        f"up -y {config}",
        f"down -y {config}",
        f"attach {config}",
    ]


def test_launcher_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClusterError, match=r"^nope\.yaml: no such cluster config file\.$"):
        up("nope.yaml")
    with pytest.raises(ClusterError, match=r"^action: 'restart' is not one of up, down, attach"):
        launcher_command("restart", "nope.yaml")
    config = tmp_path / "aws.yaml"
    config.write_text("cluster_name: x\n")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ClusterError,
        match=r"^the `ray` command is not installed here \(not next to .*python nor on PATH\); "
        r"install it with pip install 'ray\[default\]'\.$",
    ):
        down(config)


# --- A real three-node cluster ------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Head (1 CPU) + worker w1 (1 CPU) + worker w2 (2 CPUs), token auth on."""
    with start_cluster((1, 1, 2)) as local:
        yield local


SPREAD_SPEC = """
name: spread
trainable: tests.support.overlap:gathering
metric: score
mode: max
space:
  x: {uniform: [0.0, 1.0]}
  steps: 3
  sleep: 0.3
  gather: 4
  wait_s: 20
  meet: MEET
search: {num_samples: 6, seed: 0}
resources: {cpu: 1}
"""


def _tunefleet(cluster: LocalCluster, spec: Path, storage: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "tunefleet"),
            "run",
            str(spec),
            "--address",
            cluster.gcs_address,
            "--storage",
            str(storage),
        ],
        # The repository on the path: the trial imports `tests.support.overlap`.
        env={**cluster.env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("algorithm", ["random", "optuna"])
def test_trials_spread_over_the_nodes(
    cluster: LocalCluster, tmp_path: Path, algorithm: str
) -> None:
    """The cluster's 4 CPUs hold 4 trials at once, measured from the trials' own step times,
    and each node's CPUs are used, whatever chooses the configs (Ray alone would give Optuna
    one trial at a time: one node)."""
    spec = tmp_path / "spread.yaml"
    spec.write_text(
        SPREAD_SPEC.replace(
            "search: {num_samples: 6, seed: 0}",
            f"search: {{algorithm: {algorithm}, num_samples: 6, seed: 0}}",
        ).replace("MEET", str(tmp_path / "meet"))
    )
    proc = _tunefleet(cluster, spec, tmp_path / "results")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-3000:]
    assert "spread: 6 trials (6 terminated)" in stdout
    assert cluster.token not in stdout + stderr
    trials = pd.read_parquet(tmp_path / "results" / "spread" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "results" / "spread" / "iterations.parquet")
    assert list(trials["status"]) == ["TERMINATED"] * 6
    assert set(iterations["node_id"]) == cluster.node_ids(), iterations["node_id"].value_counts()
    assert "up to 4 trials at once: 4 CPUs on 3 nodes, 1 CPU per trial\n" in stderr
    # The first four wait for each other (at most 20 s): only a cap below 4 keeps them apart.
    assert most_at_once(iterations) == 4, iterations[["trial_id", "node_id", "began", "ended"]]


JOB_MODEL = """
from tunefleet.trainables import report

def train(config):
    for step in range(1, 3):
        report({"acc": config["a"] * step})
"""

JOB_SPEC = """
name: by_job
trainable: my_model:train
metric: acc
mode: max
space:
  a: {grid: [1, 2, 3]}
search: {algorithm: grid}
"""

SUBMIT = """
import sys
from tunefleet.cluster.jobs import submit
status = submit("exp.yaml", address=sys.argv[1], storage=sys.argv[2])
sys.exit(0 if status == "SUCCEEDED" else 1)
"""


@pytest.mark.slow
@pytest.mark.cluster
def test_submit_runs_the_experiment_as_a_job(cluster: LocalCluster, tmp_path: Path) -> None:
    """A user's folder (a spec and the module it names) goes to the cluster as a job."""
    if cluster.dashboard_url is None:
        pytest.skip("the job server needs Ray's dashboard: pip install 'ray[default]'")
    project = tmp_path / "project"
    project.mkdir()
    (project / "my_model.py").write_text(JOB_MODEL)
    (project / "exp.yaml").write_text(JOB_SPEC)
    storage = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-c", SUBMIT, cluster.dashboard_url, str(storage)],
        env=cluster.env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("submitted job raysubmit_")
    assert "by_job: 3 trials (3 terminated)" in proc.stdout
    assert lines[-1].endswith(" succeeded")
    assert cluster.token not in proc.stdout + proc.stderr
    trials = pd.read_parquet(storage / "by_job" / "trials.parquet")
    assert sorted(trials["acc"]) == [2, 4, 6]
    assert set(trials["node_id"]) <= cluster.node_ids()


GANG_SPEC = """
name: gangs
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [3.0e-3, 3.0e-2]}
  hidden: 32
  epochs: 3
search: {num_samples: 2, seed: 0}
resources: {workers: 2, cpu: 1}
stop: {training_iteration: 3}
"""


@pytest.mark.slow
@pytest.mark.cluster
def test_two_worker_trials_span_the_nodes(cluster: LocalCluster, tmp_path: Path) -> None:
    """Two data-parallel trials of 2 one-CPU workers fill the cluster's 4 CPUs (1 + 1 + 2):
    the gangs use every node, and a gang whose workers sit on two nodes trains as one (its
    ranks' weights agree after every epoch)."""
    spec = tmp_path / "gangs.yaml"
    spec.write_text(GANG_SPEC)
    proc = _tunefleet(cluster, spec, tmp_path / "results")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "gangs: 2 trials (2 terminated)" in stdout
    assert "up to 2 trials at once: 4 CPUs on 3 nodes, 2 workers of 1 CPU per trial" in stderr
    iterations = pd.read_parquet(tmp_path / "results" / "gangs" / "iterations.parquet")
    nodes = iterations[["workers/0/node_id", "workers/1/node_id"]]
    assert set(nodes.stack()) == cluster.node_ids(), nodes.value_counts()
    spanning = iterations[nodes["workers/0/node_id"] != nodes["workers/1/node_id"]]
    assert len(spanning) >= 1
    assert (iterations["workers/0/weights"] == iterations["workers/1/weights"]).all()
    assert (iterations["workers/0/samples"] == iterations["workers/1/samples"]).all()


FAILURE_SPEC = """
name: failover
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-2]}
  hidden: 32
  batch_size: 8         # slow enough epochs that every trial is mid-run at the kill
                        # (at 16, a quiet 2-CPU machine sometimes finished first)
  epochs: 40
  checkpoint_every: 1
search: {num_samples: 4, seed: 0}
resources: {cpu: 1}
failure: {max_failures: 3}
"""


@pytest.mark.slow
@pytest.mark.cluster
def test_killing_a_worker_node_mid_run_resumes_its_trials(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """SIGKILL one worker node (its raylet and every process under it) once every trial has
    a checkpoint: the experiment still completes, and the interrupted trial continues from
    its checkpoint on another node."""
    spec = tmp_path / "failover.yaml"
    spec.write_text(FAILURE_SPEC)
    exp = tmp_path / "results" / "failover"
    proc = _tunefleet(cluster, spec, tmp_path / "results")
    try:
        deadline = time.monotonic() + 120
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "trials never all checkpointed"
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
            checkpointed = {p.parent for p in exp.glob("trial_*/checkpoint_*")}
            if len(checkpointed) >= 4:
                victim = busy_worker(cluster)
        killed_at = time.time()
        kill_node(victim)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    finished_at = time.time()
    assert proc.returncode == 0, stderr[-3000:]
    assert "failover: 4 trials (4 terminated)" in stdout
    assert cluster.token not in stdout + stderr

    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert list(trials["status"]) == ["TERMINATED"] * 4
    assert list(trials["iterations"]) == [40] * 4
    assert list(trials["epoch"]) == [39] * 4
    assert not iterations.duplicated(["trial_id", "training_iteration"]).any()
    for trial_id, rows in iterations.groupby("trial_id"):
        assert sorted(rows["training_iteration"]) == list(range(1, 41)), trial_id
        assert sorted(rows["epoch"]) == list(range(40)), trial_id
    restored = iterations[iterations["restored_from"].notna()]
    assert len(restored) >= 1, "no trial was resumed from a checkpoint"
    assert (restored["restored_from"] == restored["trial_id"]).all()
    assert victim.node_id not in set(restored["node_id"])  # resumed on a live node
    for _, row in restored.iterrows():
        before = iterations[
            (iterations["trial_id"] == row["trial_id"])
            & (iterations["training_iteration"] < row["training_iteration"])
        ]
        assert victim.node_id in set(before["node_id"])  # it was running on the victim
    print(
        f"\nkilled node {victim.name}; resumed {len(restored)} trial(s) at iteration(s) "
        f"{list(restored['training_iteration'])}; first resumed result "
        f"{restored['timestamp'].min() - killed_at:.0f} s after the kill; run ended "
        f"{finished_at - killed_at:.1f} s after it"
    )


@pytest.mark.parametrize("action", ["up", "down", "attach"])
def test_cluster_command_reports_a_missing_config_in_one_line(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tunefleet.experiments.cli import main

    assert main(["cluster", action, str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == f"tunefleet: error: {tmp_path / 'nope.yaml'}: no such cluster config file.\n"


def test_cluster_submit_command_reports_an_unreachable_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunefleet.experiments.cli import main

    for variable in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(variable, raising=False)
    spec = tmp_path / "exp.yaml"
    spec.write_text("name: x\n")
    port = free_ports(1)[0]
    argv = ["cluster", "submit", str(spec), "--working-dir", str(tmp_path)]
    argv += ["--address", f"http://127.0.0.1:{port}", "--storage", "/tmp/results"]
    assert main(argv) == 1  # the command was right; the cluster could not be reached
    err = capsys.readouterr().err
    assert err.startswith(
        f"tunefleet: error: could not reach the Ray job server at http://127.0.0.1:{port}"
    )
    assert err.count("\n") == 1
