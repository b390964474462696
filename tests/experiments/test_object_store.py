"""Every command and API that takes an experiment folder takes an object-store URI too.

The store is moto's S3 server on 127.0.0.1 (`object_store` in tests/conftest.py), reached
only through the standard AWS variables, as MinIO or any S3-compatible store would be.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs
import pytest

from tests.support.local_cluster import free_ports
from tests.support.object_store import ObjectStore
from tunefleet.common.locations import LocationError, locate
from tunefleet.common.ray_compat import installed_ray_version
from tunefleet.experiments.analysis import AnalysisError, load, load_all, read_metadata
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.files import FINAL_FILE, ITERATIONS_FILE, TRIALS_FILE

pytestmark = pytest.mark.core


SPEC = """
name: digits
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-2]}
  hidden: {choice: [16, 32]}
  epochs: 2
search: {algorithm: optuna, num_samples: 3, seed: 5, n_initial_points: 2}
scheduler: {name: asha, grace_period: 1}
stop: {training_iteration: 2}
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_every_command_works_on_an_experiment_in_the_bucket(
    write_spec: Any,
    s3_storage: str,
    object_store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec(SPEC)
    exp = f"{s3_storage}/digits"
    assert main(["validate", str(spec), "--storage", s3_storage]) == 0
    assert f"{exp}\n" in capsys.readouterr().out  # the plan names the bucket's folder

    assert main(["run", str(spec), "--storage", s3_storage]) == 0
    out = capsys.readouterr().out
    assert "digits: 3 trials (3 terminated)" in out
    assert f"results: {exp}/{TRIALS_FILE}" in out
    # Nothing was written locally: the folder and Ray's state are in the bucket.
    bucket = locate(exp)
    names = {i.base_name for i in bucket.filesystem.get_file_info(pafs.FileSelector(bucket.path))}
    assert {"spec.yaml", TRIALS_FILE, ITERATIONS_FILE} <= names
    assert any(n.startswith("experiment_state") for n in names)

    # pandas and pyarrow with nothing but the standard environment.
    trials = pd.read_parquet(f"{exp}/{TRIALS_FILE}")
    assert len(trials) == 3 and (trials["status"] == "TERMINATED").all()
    assert len(pd.read_parquet(f"{exp}/{ITERATIONS_FILE}")) == trials["iterations"].sum()

    # The analysis API.
    loaded = load(exp)
    assert loaded.path == exp and loaded.name == "digits"
    assert loaded.best()["trial_id"] in set(trials["trial_id"])
    assert load(f"{exp}/{TRIALS_FILE}").path == exp
    metadata = read_metadata(f"{exp}/{TRIALS_FILE}")
    assert metadata["experiment"] == "digits"
    assert metadata["versions"]["ray"] == installed_ray_version()  # the Ray the run used
    assert list(load_all(s3_storage)["experiment"]) == ["digits"] * 3

    # evaluate writes final.parquet into the bucket; show prints it; report is written here.
    assert main(["evaluate", exp, "--top", "2", "--seeds", "1"]) == 0
    assert len(pd.read_parquet(f"{exp}/{FINAL_FILE}")) == 2
    capsys.readouterr()
    assert main(["show", exp]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("digits: 3 trials (3 terminated); best val_accuracy = ")
    assert "final evaluation on the held-out test split (1 seed per config" in shown
    monkeypatch.chdir(tmp_path)
    assert main(["report", exp]) == 0
    assert capsys.readouterr().out == f"report: {tmp_path}/report-digits/report.html\n"
    assert (tmp_path / "report-digits" / "learning_curves.png").stat().st_size > 0
    assert main(["report", exp, "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.html").is_file()
    capsys.readouterr()
    assert main(["export", exp, "--overwrite"]) == 0
    assert capsys.readouterr().out.startswith(f"exported 3 trials, 3 iteration rows: {exp}/")
    assert len(pd.read_parquet(f"{exp}/{TRIALS_FILE}")) == 3  # rebuilt from Ray's state

    # More trials, whose searcher knows the earlier ones.
    assert main(["resume", exp, "--extend", "2"]) == 0
    trials = pd.read_parquet(f"{exp}/{TRIALS_FILE}")
    assert len(trials) == 5 and trials["trial_id"].is_unique
    assert object_store.env["AWS_SECRET_ACCESS_KEY"] not in capsys.readouterr().out


COMMANDS = {
    "show": ["show", "{exp}"],
    "report": ["report", "{exp}", "--out", "{tmp}/report"],
    "export": ["export", "{exp}"],
    "resume": ["resume", "{exp}"],
    "evaluate": ["evaluate", "{exp}"],
    "run": ["run", "{spec}", "--storage", "{root}"],
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cause", "commands", "message", "code"),
    [
        (
            "missing bucket",
            list(COMMANDS),
            r"the bucket 'no-such-bucket' does not exist",
            2,
        ),
        (
            "wrong credentials",
            list(COMMANDS),
            r"s3://\S+: the object store refused access \(AWS Error ACCESS_DENIED during "
            r"\w+ operation\); check the credentials in the environment",
            1,
        ),
        (
            "unreachable endpoint",
            ["show", "run"],  # each waits for pyarrow's retries (about 6 s)
            r"s3://\S+: cannot reach the object store at http://127\.0\.0\.1:\d+ \(AWS Error "
            r"NETWORK_CONNECTION during \w+ operation\); check the endpoint",
            1,
        ),
    ],
)
@pytest.mark.usefixtures("ray_instance")  # `run` would otherwise start a Ray of its own
def test_a_store_that_cannot_be_used_is_one_line_naming_the_uri_and_the_cause(
    object_store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cause: str,
    commands: list[str],
    message: str,
    code: int,
) -> None:
    bucket = object_store.bucket
    secret = object_store.env["AWS_SECRET_ACCESS_KEY"]
    if cause == "missing bucket":
        bucket = "no-such-bucket"
    elif cause == "wrong credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-of-this-key")
    else:
        endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    values = {"exp": f"s3://{bucket}/root/digits", "root": f"s3://{bucket}/root"}
    values |= {"spec": str(spec), "tmp": str(tmp_path)}
    for command in commands:
        assert main([a.format(**values) for a in COMMANDS[command]]) == code, command
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and out == "", (command, err)
        assert re.match(r"tunefleet: error: .*s3://", err), (command, err)
        assert re.search(message, err), (command, err)
        assert secret not in err and os.environ["AWS_SECRET_ACCESS_KEY"] not in err
    assert not (tmp_path / "report").exists()


def test_locations_name_the_uri_and_the_cause(object_store: ObjectStore) -> None:
    with pytest.raises(LocationError, match=r"^s3x://b/x: pyarrow cannot open s3x:// URIs"):
        locate("s3x://b/x")
    with pytest.raises(LocationError, match=r"^the URI holds credentials") as info:
        locate("s3://AKIAKEY:s3cr3t@bucket/results")
    assert "s3cr3t" not in str(info.value)
    assert locate(f"s3://{object_store.bucket}/a/b/").uri == f"s3://{object_store.bucket}/a/b"
    assert locate("s3://no-such-bucket/x").missing() == "the bucket 'no-such-bucket' does not exist"
    assert locate(object_store.uri("nothing-here")).missing() == "not found"
    with pytest.raises(AnalysisError, match=r"the bucket 'no-such-bucket' does not exist"):
        load("s3://no-such-bucket/results/x")
    with pytest.raises(AnalysisError, match=r"holds no experiment folders"):
        load_all(object_store.uri("nothing-here"))


def test_local_paths_still_work_as_before(tmp_path: Path) -> None:
    here = locate(str(tmp_path / "a" / ".." / "b"))
    assert here.uri == str(tmp_path / "b") and not here.remote and not here.exists()
    assert locate(f"file://{tmp_path}").local_path == tmp_path


def test_readers_never_see_half_a_file_while_it_is_rewritten(s3_storage: str) -> None:
    """Each rewrite is one upload: a plain GET always gets a whole Parquet file. pyarrow's
    own reads (a HEAD, then ranged GETs) can straddle two versions; tunefleet's readers
    detect that and fetch again.

    The writer rewrites as soon as the reader has finished a read, so a write lands during
    almost every read, but at most one per read: as with a run's rewrites, which come
    seconds apart. (A writer that never pauses can tear every one of a read's tries.)"""
    import io
    import threading

    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tunefleet.experiments.results.parquet_io import read_frame, write_parquet_atomic

    target = locate(f"{s3_storage}/trials.parquet")
    bucket, key = target.path.split("/", 1)
    client = boto3.client("s3")
    done = threading.Event()
    read = threading.Event()  # set by the reader after each read
    failures: list[str] = []
    reads = {"plain GET": 0, "tunefleet": 0}

    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(60):
                if n:
                    assert read.wait(timeout=120), "the reader stopped reading"
                table = pa.table({"x": list(range(200 + 50 * n)), "n": [n] * (200 + 50 * n)})
                write_parquet_atomic(table, target.uri, {"n": n})
                read.clear()  # the next write waits for a read that ends after this one
        except BaseException as exc:  # handed to the test: it fails instead of hanging
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        try:
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            continue
        try:
            pq.read_table(io.BytesIO(data))
            reads["plain GET"] += 1
        except Exception as exc:
            failures.append(f"plain GET: {exc}")
        try:
            frame = read_frame(target)
            n = int(frame["n"].iloc[0])
            assert list(frame["x"]) == list(range(200 + 50 * n)), "rows of two versions"
            reads["tunefleet"] += 1
        except Exception as exc:
            failures.append(f"tunefleet: {exc}")
        read.set()
    thread.join()
    assert errors == []
    assert failures == []
    assert min(reads.values()) >= 5, reads


@pytest.mark.parametrize(
    "error", [OSError("No space left on device"), KeyboardInterrupt()], ids=["oserror", "interrupt"]
)
def test_a_write_failing_mid_way_leaves_the_previous_object(
    s3_storage: str, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """A write that fails once pyarrow has begun the file publishes nothing: pyarrow closes
    the stream it writes to when it fails, and closing a stream to the store uploads what
    it holds, so the file is built whole before the upload starts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tunefleet.experiments.results.parquet_io import write_parquet_atomic

    target = locate(f"{s3_storage}/trials.parquet")
    write_parquet_atomic(pa.table({"x": list(range(500))}), target.uri, {"n": 1})
    before = target.read_bytes()

    def fail(self: pq.ParquetWriter, *args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(pq.ParquetWriter, "write_table", fail)
    with pytest.raises((type(error), LocationError)):
        write_parquet_atomic(pa.table({"x": [1, 2, 3]}), target.uri, {"n": 2})
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert read_metadata(target.uri)["n"] == 1


def test_a_read_that_straddles_two_versions_is_fetched_again(s3_storage: str) -> None:
    """The retry path itself: a read whose bytes mix the old version's head and the new
    one's tail (as pyarrow's HEAD then ranged GETs can give) is not parsed but fetched
    again, and the whole new version comes back."""
    import dataclasses

    import pyarrow as pa

    from tunefleet.common.locations import Location
    from tunefleet.experiments.results.parquet_io import read_frame, write_parquet_atomic

    target = locate(f"{s3_storage}/trials.parquet")
    write_parquet_atomic(pa.table({"x": list(range(500))}), target.uri, {})
    old = target.read_bytes()
    write_parquet_atomic(pa.table({"x": list(range(900))}), target.uri, {})
    new = target.read_bytes()
    torn = old[: len(old) // 2] + new[len(new) // 2 :]

    @dataclasses.dataclass(frozen=True)
    class RacedOnce(Location):
        reads: list[bytes] = dataclasses.field(default_factory=list)

        def read_bytes(self) -> bytes:
            data = torn if not self.reads else super().read_bytes()
            self.reads.append(data)
            return data

    raced = RacedOnce(target.uri, target.filesystem, target.path)
    frame = read_frame(raced)
    assert len(raced.reads) == 2 and raced.reads[0] == torn
    assert list(frame["x"]) == list(range(900))
