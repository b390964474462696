"""A run rides through an object store's blips; a long outage stops it, and resume finishes it.

The runs reach moto's S3 server only through a TCP proxy on 127.0.0.1 (`TcpProxy`) that
the tests cut and restore: the recorder's Parquet files, Ray's uploads of its experiment
state, and the trials' checkpoints (Ray hands each trial the driver's filesystem). The
ride-through run's trials do not checkpoint: a trial whose checkpoint upload fails errors
(Ray does not retry the upload), and is retried or not as `failure.max_failures` says.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from ray.tune import ExperimentAnalysis

from tests.support.object_store import ObjectStore
from tests.support.specs import spec_yaml
from tests.support.tcp_proxy import TcpProxy
from tunefleet.common.locations import LocationError, locate, translated
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.storage_outage import (
    BackgroundWrites,
    StorageOutage,
    run_outage,
)

REPO = Path(__file__).resolve().parents[2]
TUNEFLEET = str(Path(sys.executable).with_name("tunefleet"))
WHERE = "s3://bucket/exp"
ADVICE = f"continue it with: tunefleet resume {WHERE}"
UNREACHABLE = (
    "When uploading object with key 'exp/trials.parquet' to bucket 'bucket': AWS Error "
    "NETWORK_CONNECTION during PutObject operation: curlCode: 7, Couldn't connect to server"
)
DENIED = (
    "When uploading object with key 'exp/trials.parquet' to bucket 'bucket': AWS Error "
    "ACCESS_DENIED during PutObject operation: Access Denied"
)


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Failing:
    """A write that fails `times` times as pyarrow fails with `message`, each failure taking
    `takes_s` (pyarrow's own retries), then succeeds; `calls` counts the tries."""

    def __init__(self, message: str, clock: Clock, *, times: int, takes_s: float = 6.0) -> None:
        self.message, self.clock, self.times, self.takes_s = message, clock, times, takes_s
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.times:
            self.clock.now += self.takes_s
            with translated(f"{WHERE}/trials.parquet"):
                raise OSError(self.message)


def outage(clock: Clock, stream: io.StringIO, limit_s: float = 300) -> StorageOutage:
    return StorageOutage(where=WHERE, limit_s=limit_s, advice=ADVICE, stream=stream, clock=clock)


def ride(rider: StorageOutage, clock: Clock, write: Callable[[], None]) -> None:
    """Tries `write` until it succeeds, waiting as `rider` says."""
    while not rider.attempt(write):
        clock.now += rider.wait_s()


def test_a_blip_is_one_warning_retries_that_wait_longer_each_time_and_one_recovery() -> None:
    clock, stream = Clock(), io.StringIO()
    rider = outage(clock, stream)
    write = Failing(UNREACHABLE, clock, times=7)
    waits = []
    while not rider.attempt(write):
        assert rider.failing
        waits.append(rider.wait_s())
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 30, 30]  # capped: the files lag the store by <= 30 s
    assert not rider.failing and rider.wait_s() == 0
    assert stream.getvalue().splitlines() == [
        f"tunefleet: warning: cannot write results to {WHERE} (AWS Error NETWORK_CONNECTION "
        "during PutObject operation); retrying while the run goes on, for up to 300 s",
        f"tunefleet: results written again to {WHERE} after 133 s",
    ]
    # A later blip starts over: its own warning, and the first wait again.
    rider.attempt(Failing(UNREACHABLE, clock, times=1))
    assert len(stream.getvalue().splitlines()) == 3 and rider.wait_s() == 1


def test_an_outage_longer_than_the_limit_stops_the_run_naming_resume() -> None:
    clock, stream = Clock(), io.StringIO()
    rider = outage(clock, stream, limit_s=20)
    write = Failing(UNREACHABLE, clock, times=100)
    with pytest.raises(LocationError) as info:
        ride(rider, clock, write)
    message = str(info.value)
    assert re.fullmatch(
        rf"{WHERE}/trials\.parquet: cannot reach the object store .*; check the endpoint "
        r".* and the network; the results could not be written for 2\d s "
        rf"\(results\.storage_outage_s: 20\), so the run stopped; {ADVICE}",
        message,
    ), message
    assert info.value.exit_code == 1
    assert clock.now - 100 < 20 + 6 + 1  # the last try came at the limit, not a wait later
    # Once stopped, it stays stopped: the end of the run does not wait again.
    calls = write.calls
    with pytest.raises(LocationError, match=re.escape(message)):
        rider.attempt(write)
    assert write.calls == calls
    assert stream.getvalue().count("\n") == 1  # the warning; the error is the CLI's line


def test_an_error_that_waiting_does_not_cure_stops_the_run_at_once() -> None:
    clock, stream = Clock(), io.StringIO()
    rider = outage(clock, stream)
    with pytest.raises(
        LocationError,
        match=rf"refused access .*; the run stopped; once that is fixed, {re.escape(ADVICE)}$",
    ):
        rider.attempt(Failing(DENIED, clock, times=1))
    assert stream.getvalue() == ""


def test_an_error_that_is_not_the_stores_is_not_retried() -> None:
    clock, stream = Clock(), io.StringIO()
    rider = outage(clock, stream)

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        ride(rider, clock, full_disk)
    assert stream.getvalue() == "" and not rider.failing


def test_background_writes_run_the_newest_write_and_hand_a_stop_to_the_run() -> None:
    stream = io.StringIO()
    writes = BackgroundWrites(StorageOutage(where=WHERE, limit_s=60, advice=ADVICE, stream=stream))
    writing, gate, done = threading.Event(), threading.Event(), []

    def first() -> None:
        writing.set()
        gate.wait(timeout=30)
        done.append(1)

    writes.submit(first)
    assert writing.wait(timeout=30)
    writes.submit(lambda: done.append(2))  # replaced by the next, which holds more
    writes.submit(lambda: done.append(3))
    assert writes.pending
    gate.set()
    writes.wait()
    assert done == [1, 3] and not writes.pending

    clock = Clock()
    writes.submit(Failing(DENIED, clock, times=1))
    with pytest.raises(LocationError, match=r"refused access .*; the run stopped; once"):
        writes.wait()
    with pytest.raises(LocationError, match="refused access"):
        writes.check()  # the run's next step stops it
    with pytest.raises(LocationError, match="refused access"):
        writes.submit(lambda: done.append(4))
    assert done == [1, 3] and stream.getvalue() == ""


def test_background_writes_retry_a_transient_failure() -> None:
    stream = io.StringIO()
    writes = BackgroundWrites(StorageOutage(where=WHERE, limit_s=60, advice=ADVICE, stream=stream))
    write = Failing(UNREACHABLE, Clock(), times=1)
    writes.submit(write)
    writes.wait()  # the first retry comes a second later
    assert write.calls == 2 and not writes.pending
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1] == f"tunefleet: results written again to {WHERE} after 1 s"


def test_the_limit_comes_from_the_spec_and_a_baseline_says_run_again() -> None:
    spec = {"results": {"flush_every_s": 1, "storage_outage_s": 7.5}}
    assert run_outage(WHERE, {"spec": spec}).limit_s == 7.5
    assert run_outage(WHERE, {"spec": {"name": "x"}}).limit_s == 300
    assert run_outage(WHERE, {}).advice == ADVICE
    assert run_outage(f"{WHERE}/baseline", {"baseline": True}).advice == (
        "run the same command again"
    )


def test_a_local_folder_that_cannot_be_written_ends_the_run_as_before(tmp_path: Path) -> None:
    """A local folder that cannot be written is not an outage: the first error ends it."""
    from tunefleet.experiments.results.recorder import ResultsRecorder

    (tmp_path / "file").write_text("")
    recorder = ResultsRecorder(str(tmp_path / "file" / "exp"), metric="m", mode="max", info={})
    recorder.setup()
    with pytest.raises(OSError, match="Not a directory"):
        recorder.flush()
    assert recorder.needs_flush


# Runs against the store, through the proxy --------------------------------------------


def direct_s3(store: ObjectStore) -> Any:
    """A boto3 client of the server itself (not through the proxy)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=store.endpoint,
        region_name=store.env["AWS_DEFAULT_REGION"],
        aws_access_key_id=store.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=store.env["AWS_SECRET_ACCESS_KEY"],
    )


def read_direct(client: Any, uri: str) -> pq.ParquetFile | None:
    """The Parquet file at `uri`, read from the server itself; None if not there yet."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return pq.ParquetFile(io.BytesIO(data))


def wait_for(condition: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s  # a safety net: the condition is the event
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the run never got there")
        time.sleep(0.2)


@pytest.fixture()
def proxy(object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A proxy to the store, which this test's driver reaches only through it."""
    port = int(object_store.endpoint.rpartition(":")[2])
    with TcpProxy("127.0.0.1", port) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", running.endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.endpoint)
        yield running


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_a_run_rides_through_a_20_s_outage_and_loses_nothing(
    object_store: ObjectStore,
    proxy: TcpProxy,
    s3_storage: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = tmp_path / "release"
    spec = tmp_path / "blip.yaml"
    spec.write_text(
        spec_yaml(
            name="blip",
            trainable="tests.support.trainables:until_released",
            space={"x": {"uniform": [0.0, 1.0]}, "sleep": 0.1, "release": str(release)},
            search={"algorithm": "random", "num_samples": 3, "seed": 0},
            results={"flush_every_s": 1},
        )
    )
    exp = f"{s3_storage}/blip"
    client = direct_s3(object_store)
    problems: list[str] = []
    outage: list[float] = []  # when it started and ended

    def blip() -> None:
        try:
            wait_for(lambda: read_direct(client, f"{exp}/{TRIALS_FILE}") is not None)
            outage.append(time.time())
            proxy.cut()
            time.sleep(20)  # the outage itself
            proxy.restore()
            outage.append(restored := time.time())

            def written_again() -> bool:
                found = read_direct(client, f"{exp}/{TRIALS_FILE}")
                meta = found.schema_arrow.metadata if found is not None else None
                return bool(meta) and _written_at(meta) > restored

            wait_for(written_again)  # while the trials still run
        except Exception as exc:
            problems.append(repr(exc))
        finally:
            release.touch()

    thread = threading.Thread(target=blip, daemon=True)
    thread.start()
    started = time.monotonic()
    code = main(["run", str(spec), "--storage", s3_storage])
    took = time.monotonic() - started
    thread.join(timeout=60)
    out, err = capsys.readouterr()
    assert problems == [] and code == 0, (problems, err)
    lines = err.splitlines()
    warnings = [line for line in lines if line.startswith("tunefleet: warning: ")]
    recovered = [line for line in lines if line.startswith("tunefleet: results written again")]
    assert len(warnings) == 1 and re.fullmatch(
        rf"tunefleet: warning: cannot write results to {exp} \(AWS Error NETWORK_CONNECTION "
        r"during \w+ operation\); retrying while the run goes on, for up to 300 s",
        warnings[0],
    ), err
    assert len(recovered) == 1 and re.fullmatch(
        rf"tunefleet: results written again to {exp} after \d+ s", recovered[0]
    ), err
    # Timed from the first write that failed, which follows the cut by a save of Ray's state.
    assert int(recovered[0].split()[-2]) >= 15
    assert "tunefleet: error" not in err and "3 trials (3 terminated)" in out

    # Every trial, every iteration it reported, once.
    where = locate(exp)
    trials = pd.read_parquet(f"{where.path}/{TRIALS_FILE}", filesystem=where.filesystem)
    rows = pd.read_parquet(f"{where.path}/{ITERATIONS_FILE}", filesystem=where.filesystem)
    assert len(trials) == 3 and trials["trial_id"].is_unique
    assert (trials["status"] == "TERMINATED").all()
    assert not rows.duplicated(["trial_id", "training_iteration"]).any()
    for trial in trials.itertuples():
        steps = rows.loc[rows["trial_id"] == trial.trial_id, "step"].tolist()
        assert steps == list(range(1, trial.iterations + 1)), trial.trial_id
    assert (rows["step"] == rows["training_iteration"]).all()
    # Ray's own uploads of its experiment state failed during the outage (Ray logs them and
    # goes on) and caught up after it.
    assert finished_in_ray_state(exp) == set(trials["trial_id"])
    # The trials trained on through the outage (each reports every 0.1 s or so).
    during = rows[(rows["timestamp"] > outage[0] + 1) & (rows["timestamp"] < outage[1] - 1)]
    assert len(during) > 50, len(during)
    print(f"ridden through: run {took:.0f} s, {len(during)} results in the outage, {recovered[0]}")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")  # for the resumed run
def test_an_outage_past_the_limit_stops_the_run_and_resume_loses_no_trial(
    object_store: ObjectStore,
    proxy: TcpProxy,
    s3_storage: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The stopped run is a `tunefleet` process of its own, which ends as a user's would."""
    spec = tmp_path / "long.yaml"
    spec.write_text(
        spec_yaml(
            name="long",
            trainable="tests.support.trainables:slow_counter",
            space={"x": {"uniform": [0.0, 1.0]}, "steps": 8, "sleep": 0.5},
            search={"algorithm": "random", "num_samples": 6, "seed": 0},
            results={"flush_every_s": 1, "storage_outage_s": 5},
        )
    )
    exp = f"{s3_storage}/long"
    client = direct_s3(object_store)

    def two_finished() -> bool:
        """In the files and in Ray's uploaded state, which lags them by up to a second or so
        (a trial finished in the files only would rightly run its last steps again)."""
        found = read_direct(client, f"{exp}/{TRIALS_FILE}")
        if found is None or (found.read().to_pandas()["status"] == "TERMINATED").sum() < 2:
            return False
        return len(finished_in_ray_state(exp)) >= 2

    driver = subprocess.Popen(
        [TUNEFLEET, "run", str(spec), "--storage", s3_storage],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(two_finished)
        cut_at, cut = time.time(), time.monotonic()
        proxy.cut()
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    stopped_after = time.monotonic() - cut
    errors = [line for line in err.splitlines() if line.startswith("tunefleet: error: ")]
    assert driver.returncode == 1 and len(errors) == 1, err
    assert re.fullmatch(
        rf"tunefleet: error: {exp}/\w+\.parquet: cannot reach the object store .*; the results "
        r"could not be written for \d+ s \(results\.storage_outage_s: 5\), so the run "
        rf"stopped; continue it with: tunefleet resume {exp}",
        errors[0],
    ), err

    proxy.restore()
    before = read_direct(client, f"{exp}/{TRIALS_FILE}")
    assert before is not None
    first = before.read().to_pandas()
    assert (first["status"] == "TERMINATED").sum() >= 2  # and trials were left to run:
    assert len(first) < 6 or (first["status"] != "TERMINATED").any()
    finished = finished_in_ray_state(exp)  # what `resume` restores
    assert len(finished) >= 2

    resumed_at = time.monotonic()
    assert main(["resume", exp]) == 0, capsys.readouterr().err
    resume_took = time.monotonic() - resumed_at
    where = locate(exp)
    trials = pd.read_parquet(f"{where.path}/{TRIALS_FILE}", filesystem=where.filesystem)
    rows = pd.read_parquet(f"{where.path}/{ITERATIONS_FILE}", filesystem=where.filesystem)
    # No trial lost, none run twice: the first run's trials are there under their ids, those
    # the restored state knew finished untouched since the outage, and every trial has each
    # iteration once.
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(first["trial_id"]) <= set(trials["trial_id"])
    assert (trials["status"] == "TERMINATED").all() and (trials["iterations"] == 8).all()
    assert not rows.duplicated(["trial_id", "training_iteration"]).any() and len(rows) == 48
    assert (rows.loc[rows["trial_id"].isin(finished), "timestamp"] <= cut_at).all()
    assert (rows["step"] == rows["training_iteration"]).all()
    rerun = rows[rows["timestamp"] > cut_at].groupby("trial_id").size()
    print(
        f"run stopped {stopped_after:.0f} s into the outage; resume took {resume_took:.0f} s; "
        f"iterations run again or anew per trial: {rerun.to_dict()}"
    )


def finished_in_ray_state(exp: str) -> set[str]:
    """The trials finished in the experiment state Ray uploaded last (what `resume`
    restores), read through the proxy."""
    return {t.trial_id for t in ExperimentAnalysis(exp).trials if t.status == "TERMINATED"}


def _written_at(metadata: dict[bytes, bytes]) -> float:
    import json

    return float(json.loads(metadata[b"tunefleet"])["written_at"])
