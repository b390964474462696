"""Typed Parquet tables: flattening, typing per column, atomic writes, metadata."""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tunefleet.common.locations import Location, locate, translated
from tunefleet.common.nesting import flatten
from tunefleet.common.ray_compat import RAY_RESULT_FIELDS

__all__ = [
    "METADATA_KEY",
    "build_table",
    "flatten",
    "is_scalar",
    "join_path",
    "json_column",
    "path_exists",
    "read_frame",
    "read_metadata",
    "read_rows",
    "read_table",
    "user_metrics",
    "versions",
    "with_experiment",
    "write_parquet_atomic",
    "write_text_atomic",
]

T = TypeVar("T")

METADATA_KEY = b"tunefleet"


def versions() -> dict[str, str]:
    """Versions of the packages that shape an experiment's results."""
    out = {}
    for dist in ("tunefleet", "ray", "torch", "optuna", "hyperopt", "pyarrow"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def is_scalar(value: Any) -> bool:
    """Whether a reported value goes into a column as it is (None, bool, number, text)."""
    return value is None or isinstance(value, (bool, int, float, str))


def json_column(values: list[Any]) -> pa.Array:
    """Values of no common Arrow type as a column of their JSON text (None stays null)."""
    return pa.array([None if v is None else json.dumps(v, default=str) for v in values])


def user_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics the trainable reported (Ray's own fields left out), flattened."""
    reported = {k: v for k, v in result.items() if k not in RAY_RESULT_FIELDS}
    return {k: v for k, v in flatten(reported).items() if is_scalar(v)}


def build_table(rows: list[dict[str, Any]], fixed: Iterable[str]) -> pa.Table:
    """Builds a table from rows that may miss keys; typed per column, JSON as the fallback."""
    columns = list(dict.fromkeys([*fixed, *(k for row in rows for k in row)]))
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in rows]
        arrays[name] = _array(values)
    return pa.table(arrays) if arrays else pa.table({})


def _array(values: list[Any]) -> pa.Array:
    if all(v is None for v in values):
        return pa.array(values, type=pa.null()) if values else pa.array([], type=pa.null())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return json_column(values)


def write_text_atomic(path: str, text: str) -> None:
    """Writes a small text file whole (temporary file, then rename; object stores: one PUT)."""
    target = locate(path)
    if target.remote:
        with translated(target.uri), target.filesystem.open_output_stream(target.path) as out:
            out.write(text.encode())
        return
    local = Path(target.path)
    tmp = _temporary(local)
    try:
        tmp.write_text(text)
        os.replace(tmp, local)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, path: str | Location, info: Mapping[str, Any]) -> None:
    """Writes `table` to `path` so that readers see the old file or the new one, never half.

    Local paths are written to a temporary file in the same directory and renamed over the
    target; object stores (`s3://`, `gs://`, ...) publish an object whole on upload.

    Raises:
        LocationError: If an object store cannot be written (the message says why;
            `transient` when waiting may cure it).
    """
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(info, default=str).encode()
    table = table.replace_schema_metadata(meta)
    location = path if isinstance(path, Location) else locate(path)
    if location.remote:
        # Serialized whole before the store is touched: pq.write_table into the store's
        # stream closes it when the write fails midway (an error, Ctrl-C), and closing
        # publishes what it holds (a valid file of no rows) over the previous results.
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data = sink.getvalue()
        with translated(location.uri), location.filesystem.open_output_stream(location.path) as out:
            out.write(data)
        return
    target = Path(location.path)
    tmp = _temporary(target)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _temporary(target: Path) -> Path:
    """This process's temporary file for `target`, in the same folder (for an atomic
    rename); first removes those that writers killed mid-write left behind, which would
    otherwise pile up, one per kill."""
    target.parent.mkdir(parents=True, exist_ok=True)
    pattern = glob.escape(f".{target.name}.") + "*.tmp"
    for old in target.parent.glob(pattern):
        pid = old.name[len(target.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            old.unlink(missing_ok=True)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (assumed so where that cannot be told)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process
    return True


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The experiment metadata (spec, versions, metric, ...) stored in a results file.

    Args:
        path: A Parquet file: a local path or a URI (`s3://bucket/exp/trials.parquet`).

    Raises:
        FileNotFoundError: If there is no such file.
        LocationError: If the object store cannot be read (the message says why).
    """
    location = locate(path)
    if location.remote:
        meta = _parse_remote(location, pq.read_schema).metadata or {}
    else:
        meta = pq.read_schema(location.path).metadata or {}
    return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}


def with_experiment(table: pa.Table, name: str) -> pa.Table:
    """`table` with an `experiment` column (the experiment's name) last, as a hive-style
    partition column would be, so that the files of many experiments read as one dataset."""
    if "experiment" in table.column_names:
        table = table.drop_columns(["experiment"])
    return table.append_column("experiment", pa.repeat(pa.scalar(name, pa.string()), len(table)))


def join_path(base: str, name: str) -> str:
    """`base/name` for a local path or a URI."""
    return f"{base.rstrip('/')}/{name}"


def path_exists(path: str) -> bool:
    """Whether a local path or a pyarrow filesystem URI exists."""
    return locate(path).exists()


def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a Parquet file (local path or URI) as dicts."""
    return list(read_table(path).to_pylist())


def read_table(path: str) -> pa.Table:
    """A Parquet file (local path or pyarrow filesystem URI) as an Arrow table."""
    location = locate(path)
    if location.remote:
        return _parse_remote(location, pq.read_table)
    with _open_local(location) as file:
        return pq.read_table(file)


def read_frame(location: Location) -> pd.DataFrame:
    """A Parquet file on a local or object-store location, as pandas reads it.

    Raises:
        LocationError: If the object store cannot be read (the message says why).
    """
    if location.remote:
        return _parse_remote(location, pd.read_parquet)
    with _open_local(location) as file:
        return pd.read_parquet(file)


def _open_local(location: Location) -> pa.NativeFile:
    """The local file, opened once for the whole read.

    Given a path, pyarrow opens the file twice (its footer for the schema, then its pages)
    and can pair one version's footer with the pages of the next one that a writer renamed
    over it in between ("Page was smaller than expected"). An open file keeps the version
    it opened.
    """
    return pa.OSFile(location.path)


def _parse_remote(location: Location, parse: Callable[[pa.BufferReader], T]) -> T:
    """Parses a Parquet object's bytes, fetching them again when it was replaced mid-read.

    Each rewrite replaces the object whole (one upload), but pyarrow reads an object as a
    HEAD (its size) then ranged GETs: a reader that races a writer can get bytes of two
    versions. Those lack Parquet's closing magic or fail to parse, and are fetched again.
    """
    error: Exception | None = None
    for attempt in range(5):
        if attempt:
            time.sleep(0.05 * attempt)
        data = location.read_bytes()
        if not _is_whole_parquet(data):
            continue
        try:
            return parse(pa.BufferReader(data))
        except (pa.ArrowInvalid, OSError) as exc:
            error = exc
    if error is not None:
        raise error
    return parse(pa.BufferReader(data))  # never whole: pyarrow says what is wrong with it


def _is_whole_parquet(data: bytes) -> bool:
    """Starts and ends with `PAR1`, with room for the footer its trailer announces."""
    if len(data) < 12 or data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        return False
    return int.from_bytes(data[-8:-4], "little") + 12 <= len(data)
