"""The cloud rehearsal: experiments submitted to a real three-node Ray cluster (head and two
worker nodes, token authentication on) with their results on an S3-compatible object store.

Nothing is shared through a local disk on purpose: the nodes, the job's driver and the
"laptop" (this test, `tunefleet resume`, `show`, `report`, pandas) reach the results and the
checkpoints only through the bucket, with the standard AWS variables. While each job runs,
a reader polls the bucket's Parquet files: each must read whole at every moment.

The tests run in file order; the first kills a worker node.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.local_cluster import BIN, LocalCluster, busy_worker, kill_node, start_cluster
from tests.support.object_store import ObjectStore
from tunefleet.common.locations import Location, locate
from tunefleet.common.ray_compat import installed_ray_version
from tunefleet.experiments.results.parquet_io import read_frame

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.core]

TUNEFLEET = str(BIN / "tunefleet")

PBT_SPEC = """
name: pbt
trainable: paced:paced_mlp   # the digits MLP, at least 1 s an epoch (PACED below)
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-1]}
  hidden: 32
  batch_size: 16
  epochs: 12
  checkpoint_every: 1
search:
  algorithm: pbt
  num_samples: 4
  seed: 0
  pbt: {perturbation_interval: 3}
resources: {cpu: 1}
failure: {max_failures: 3}
stop: {training_iteration: 12}
results: {flush_every_s: 1}
"""

# The PBT job's trainable, uploaded with the project: the digits MLP whose validation
# accuracy takes at least 1 s to compute, so that every trial is still training when the
# test kills a node, however fast the machine (CI's 2 CPUs ran 12 plain epochs of all four
# trials before the test saw them all checkpointed).
PACED = """
import time

from tunefleet.trainables.examples.digits import data, mlp
from tunefleet.trainables.pytorch import TorchTrainable


def paced_accuracy(outputs, targets):
    time.sleep(1.0)
    return (outputs.argmax(dim=1) == targets).float().mean().item()


paced_mlp = TorchTrainable(
    model=mlp,
    data=data,
    metrics={"accuracy": paced_accuracy},
    monitor="val_accuracy",
    monitor_mode="max",
)
"""

TPE_SPEC = """
name: tpe
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-1]}
  hidden: {choice: [16, 32, 64]}
  batch_size: 8           # slow enough epochs that the job is mid-run when stopped
  epochs: 8
  checkpoint_every: 1
search: {algorithm: hyperopt, num_samples: 8, seed: 0, n_initial_points: 3, max_concurrent: 2}
scheduler: {name: asha, grace_period: 2, reduction_factor: 2}
resources: {cpu: 1}
stop: {training_iteration: 8}
results: {flush_every_s: 1}
"""


@pytest.fixture(scope="module")
def cluster(object_store: ObjectStore) -> Iterator[LocalCluster]:
    """Head (1 CPU) + w1 (1 CPU) + w2 (2 CPUs), token auth on, every node with the AWS
    variables that reach the bucket (as an instance profile or a secret would give them)."""
    with start_cluster((1, 1, 2), extra_env=object_store.env) as local:
        if local.dashboard_url is None:
            pytest.skip("the job server needs Ray's dashboard: pip install 'ray[default]'")
        yield local


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The user's folder `tunefleet cluster submit` uploads: the two specs and the PBT
    job's trainable."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "paced.py").write_text(PACED)
    (folder / "pbt.yaml").write_text(PBT_SPEC)
    (folder / "tpe.yaml").write_text(TPE_SPEC)
    return folder


class BucketReader(threading.Thread):
    """Reads the experiment's Parquet files from the bucket every 0.2 s until stopped, two
    ways: a plain S3 GET of the whole object (a torn or half-written object would fail to
    parse) and tunefleet's own reader (what `tunefleet show` does while a run goes on).
    Records each version read and every read that failed."""

    def __init__(self, exp: Location) -> None:
        super().__init__(daemon=True)
        import boto3

        self.exp = exp
        self.client = boto3.client("s3")
        self.versions: dict[str, set[int]] = {"trials.parquet": set(), "iterations.parquet": set()}
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        bucket, prefix = self.exp.path.split("/", 1)
        while not self._stop_event.wait(0.2):
            for name, seen in self.versions.items():
                try:
                    body = self.client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"]
                    data = body.read()
                except self.client.exceptions.NoSuchKey:
                    continue  # not written yet
                except Exception as exc:  # recorded, and the reader goes on reading
                    self.failures.append(f"{name}, plain GET: {exc!r}")
                    continue
                try:
                    seen.add(pq.read_table(io.BytesIO(data)).num_rows)
                except Exception as exc:
                    self.failures.append(f"{name}, plain GET ({len(data)} bytes): {exc}")
                try:
                    read_frame(self.exp / name)
                except Exception as exc:
                    self.failures.append(f"{name}, tunefleet's reader: {exc}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)

    def trials(self) -> pd.DataFrame | None:
        location = self.exp / "trials.parquet"
        return read_frame(location) if location.is_file() else None


def _submit(cluster: LocalCluster, project: Path, spec: str, storage: str) -> subprocess.Popen:
    command = [TUNEFLEET, "cluster", "submit", spec, "--address", str(cluster.dashboard_url)]
    command += ["--storage", storage, "--working-dir", str(project)]
    return subprocess.Popen(
        command,
        env=cluster.env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


STOP = """
import sys
from ray.job_submission import JobSubmissionClient
client = JobSubmissionClient(sys.argv[1])
print(client.stop_job(sys.stdin.readline().strip()))
"""


def _stopper(cluster: LocalCluster) -> subprocess.Popen:
    """What `ray job stop` does, started ahead: it stops the job whose id it reads."""
    return subprocess.Popen(
        [sys.executable, "-c", STOP, str(cluster.dashboard_url)],
        env=cluster.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpointed_trials(exp: Location) -> set[str]:
    """Trials with a checkpoint in the bucket."""
    from pyarrow import fs as pafs

    selector = pafs.FileSelector(exp.path, recursive=True, allow_not_found=True)
    infos = exp.filesystem.get_file_info(selector)
    rel = [i.path[len(exp.path) + 1 :].split("/") for i in infos]
    return {p[0] for p in rel if len(p) > 1 and p[0].startswith("trial_") and "checkpoint_" in p[1]}


def _check_no_trial_lost_or_run_twice(exp: str, trials: int, iterations: int | None) -> None:
    """Every trial finished, once; each reported each iteration once, from 1 on, except
    where PBT copied another trial's checkpoint: Ray then carries on from that trial's
    iteration count, which may be ahead (a trial that lost time to the killed node)."""
    frame = pd.read_parquet(f"{exp}/trials.parquet")
    rows = pd.read_parquet(f"{exp}/iterations.parquet")
    assert len(frame) == trials and frame["trial_id"].is_unique
    assert (frame["status"] == "TERMINATED").all(), frame["status"].value_counts()
    assert not rows.duplicated(["trial_id", "training_iteration"]).any()
    for trial_id, group in rows.groupby("trial_id"):
        n = int(frame.loc[frame["trial_id"] == trial_id, "iterations"].iloc[0])
        group = group.sort_values("training_iteration")
        steps = list(group["training_iteration"])
        assert steps[0] == 1 and steps[-1] == n, (trial_id, steps)
        for before, (_, row) in zip(steps, group.iloc[1:].iterrows(), strict=False):
            if row["training_iteration"] != before + 1:  # a jump: only onto a donor's state
                assert row["restored_from"] not in (None, trial_id), (trial_id, steps)
                assert pd.notna(row["restored_from"]), (trial_id, steps)
        if iterations is not None:
            assert n == iterations, trial_id


def test_pbt_job_survives_a_worker_node_loss_with_checkpoints_in_the_bucket(
    cluster: LocalCluster, project: Path, s3_storage: str, object_store: ObjectStore
) -> None:
    exp = f"{s3_storage}/pbt"
    reader = BucketReader(locate(exp))
    reader.start()
    job = _submit(cluster, project, "pbt.yaml", s3_storage)
    try:
        deadline = time.monotonic() + 300
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "the trials never all checkpointed"
            assert job.poll() is None, job.communicate()[0][-3000:]
            time.sleep(0.5)
            if len(_checkpointed_trials(locate(exp))) >= 4:
                victim = busy_worker(cluster)
        killed_at = time.time()
        kill_node(victim)
        stdout, stderr = job.communicate(timeout=400)
    finally:
        reader.stop()
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "pbt: 4 trials (4 terminated)" in stdout
    assert stdout.rstrip().endswith("succeeded")
    assert cluster.token not in stdout + stderr
    assert object_store.env["AWS_SECRET_ACCESS_KEY"] not in stdout + stderr
    assert reader.failures == []
    assert len(reader.versions["iterations.parquet"]) >= 2  # read while it was rewritten

    _check_no_trial_lost_or_run_twice(exp, trials=4, iterations=12)
    rows = pd.read_parquet(f"{exp}/iterations.parquet")
    exploits = pd.read_parquet(f"{exp}/exploits.parquet")
    assert len(exploits) >= 1
    for exploit in exploits.itertuples(index=False):
        later = rows[
            (rows["trial_id"] == exploit.trial_id)
            & (rows["training_iteration"] >= exploit.training_iteration)
        ]
        assert (later["restored_from"] == exploit.cloned_from).any(), exploit
    # Every checkpoint was read from the bucket; at least one on another node than the
    # one that wrote it (the killed node's trial, resumed elsewhere, is one such).
    written_on = rows.set_index(["trial_id", "training_iteration"])["node_id"]
    crossed = []
    for row in rows[rows["restored_from"].notna()].itertuples(index=False):
        donor = row.restored_from
        if donor == row.trial_id:
            at = row.training_iteration - 1
        else:
            match = exploits[
                (exploits["trial_id"] == row.trial_id)
                & (exploits["training_iteration"] <= row.training_iteration)
            ]
            at = int(match["cloned_iteration"].iloc[-1])
        if (donor, at) in written_on.index and written_on[(donor, at)] != row.node_id:
            crossed.append((row.trial_id, donor, at))
    assert crossed, "no checkpoint was restored on another node than its writer's"
    # The trials interrupted by the kill continued on the nodes still alive.
    after = rows[rows["restored_from"].notna() & (rows["timestamp"] > killed_at + 1)]
    assert (after["node_id"] != victim.node_id).any(), after[["trial_id", "node_id"]]
    assert _checkpointed_trials(locate(exp)) == {f"trial_{t}" for t in rows["trial_id"].unique()}
    print(
        f"\nPBT: {len(exploits)} exploits; killed {victim.name}; {len(crossed)} checkpoint(s) "
        f"restored on another node; the reader read {sum(map(len, reader.versions.values()))} "
        "versions of the Parquet files"
    )


def test_compat_reads_the_clusters_ray_version_from_rays_job_client(
    cluster: LocalCluster,
) -> None:
    """What `cluster submit` compares with this machine's Ray before it uploads anything."""
    code = (
        "import sys\n"
        "from ray.job_submission import JobSubmissionClient\n"
        "from tunefleet.common.ray_compat import cluster_ray_version\n"
        "print(cluster_ray_version(JobSubmissionClient(sys.argv[1])))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cluster.dashboard_url)],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == installed_ray_version()


def test_a_stopped_job_resumes_from_the_bucket_and_every_command_reads_it(
    cluster: LocalCluster, project: Path, s3_storage: str, tmp_path: Path
) -> None:
    exp = f"{s3_storage}/tpe"
    reader = BucketReader(locate(exp))
    reader.start()
    job = _submit(cluster, project, "tpe.yaml", s3_storage)
    stopper = _stopper(cluster)  # `ray job stop`, its imports done before it is needed
    try:
        first = job.stdout.readline() if job.stdout else ""
        assert first.startswith("submitted job raysubmit_"), first + job.communicate()[1]
        job_id = first.split()[2]
        deadline = time.monotonic() + 300
        finished: set[str] = set()
        while not finished:
            assert time.monotonic() < deadline, "the run did not get far enough to be stopped"
            assert job.poll() is None, job.communicate()[0][-3000:]
            time.sleep(0.5)
            trials = reader.trials()
            if trials is not None:
                finished = set(trials.loc[trials["status"] == "TERMINATED", "trial_id"])
        stop_out, stop_err = stopper.communicate(job_id + "\n", timeout=120)
        stopped_at = time.time()
        assert stopper.returncode == 0 and stop_out.strip() == "True", stop_err
        stdout, _ = job.communicate(timeout=120)
    finally:
        for proc in (job, stopper):
            if proc.poll() is None:
                proc.kill()
                reader.stop()
    assert job.returncode == 1
    assert stdout.rstrip().splitlines()[-1].startswith(f"job {job_id} stopped")
    before = pd.read_parquet(f"{exp}/trials.parquet")
    assert len(before) < 8 or (before["status"] != "TERMINATED").any(), "stopped too late"

    # The "laptop" resumes it on the cluster, from the bucket alone.
    try:
        resumed = subprocess.run(
            [TUNEFLEET, "resume", exp, "--address", cluster.gcs_address],
            env=cluster.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        reader.stop()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "tpe: 8 trials (8 terminated)" in resumed.stdout
    assert reader.failures == []
    assert reader.versions["trials.parquet"], "the reader never read the results"
    _check_no_trial_lost_or_run_twice(exp, trials=8, iterations=None)
    trials = pd.read_parquet(f"{exp}/trials.parquet")
    rows = pd.read_parquet(f"{exp}/iterations.parquet")
    # Trials finished before the stop were not run again.
    assert (rows.loc[rows["trial_id"].isin(finished), "timestamp"] <= stopped_at).all()
    # The searcher kept what it learned: a seeded TPE started afresh would suggest its
    # first configs again.
    configs = trials[["config/lr", "config/hidden"]].astype(str).agg("/".join, axis=1)
    assert configs.is_unique, configs
    # ASHA stopped some trials early; all reported at least its grace period.
    assert (trials["iterations"] >= 2).all() and (trials["iterations"] <= 8).all()

    # Afterwards, from the "laptop": show, report, and pandas with only the standard
    # environment (the AWS variables, no tunefleet code).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    show = subprocess.run(
        [TUNEFLEET, "show", exp], env=env, capture_output=True, text=True, timeout=120
    )
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith("tpe: 8 trials (8 terminated); best val_accuracy = ")
    report = subprocess.run(
        [TUNEFLEET, "report", exp],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report-tpe" / "report.html").stat().st_size > 0
    code = (
        "import pandas as pd, sys\n"
        "t = pd.read_parquet(sys.argv[1] + '/trials.parquet')\n"
        "i = pd.read_parquet(sys.argv[1] + '/iterations.parquet')\n"
        "print(len(t), len(i))\n"
    )
    plain = subprocess.run(
        [sys.executable, "-I", "-c", code, exp],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split() == [str(len(trials)), str(len(rows))]
