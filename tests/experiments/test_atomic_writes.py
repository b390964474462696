"""Results cannot be corrupted: a writer killed or failing mid-write leaves the previous
complete Parquet file, and readers never see half of one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunefleet.common.locations import locate
from tunefleet.experiments.results import parquet_io as tables
from tunefleet.experiments.results.parquet_io import read_metadata, write_parquet_atomic

BIG_ROWS = 8_000_000  # about 130 MB in memory and 95 MB on disk: a write takes ~1 s
SMALL_ROWS = 10

# Writes the table of `rows` rows to PATH, once or over and over, numbering the writes
# in the file's metadata from FIRST; prints `ready` when the table is built.
WRITER = """
import sys
import numpy as np
import pyarrow as pa
from tunefleet.experiments.results.parquet_io import write_parquet_atomic

path, rows, first, loop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "loop"
index = np.arange(rows, dtype=np.int64)
table = pa.table({"i": index, "x": np.sin(index.astype(np.float64))})
print("ready", flush=True)
generation = first
while True:
    write_parquet_atomic(table, path, {"generation": generation})
    print(generation, flush=True)
    generation += 1
    if not loop:
        break
"""


def _writer(path: Path, rows: int, first: int, *, loop: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(path),
            str(rows),
            str(first),
            "loop" if loop else "once",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", "the writer died before writing"
    return proc


def _expected(rows: int) -> pd.DataFrame:
    index = np.arange(rows, dtype=np.int64)
    return pd.DataFrame({"i": index, "x": np.sin(index.astype(np.float64))})


def _generation(path: Path) -> int:
    """The generation of the file at `path`, read from its footer (fails on a partial file)."""
    return int(read_metadata(path)["generation"])


def _temporaries(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_writer_killed_mid_write_leaves_the_previous_complete_file(tmp_path: Path) -> None:
    path = tmp_path / "trials.parquet"
    first = _writer(path, SMALL_ROWS, 0, loop=False)
    assert first.wait(timeout=60) == 0
    small, big = _expected(SMALL_ROWS), _expected(BIG_ROWS)
    rng = random.Random(7)
    generation, mid_write, left = 0, 0, []
    for kill in range(5):
        base = (kill + 1) * 1000  # this writer's generations: base, base + 1, ...
        proc = _writer(path, BIG_ROWS, base, loop=True)
        if kill >= 3:
            # Let at least one write complete first, then kill during a later one.
            deadline = time.monotonic() + 120
            while _generation(path) < base:
                assert time.monotonic() < deadline, "the writer never completed a write"
                time.sleep(0.02)
        # Killed while it writes: once its temporary file exists (an event, not a guess at
        # how long a write takes on this machine), after a random number of polls.
        mine = path.parent / f".{path.name}.{proc.pid}.tmp"
        polls, deadline = rng.randint(0, 20), time.monotonic() + 120
        seen = [_generation(path)]
        while polls > 0 or not mine.exists():
            assert time.monotonic() < deadline, "the writer never started a write"
            seen.append(_generation(path))  # readers see a whole file at every moment
            polls -= 1
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.stdout is not None
        proc.stdout.close()
        temporaries = _temporaries(path)
        mid_write += bool(temporaries)
        # Those of earlier killed writers were removed by this one's first write.
        assert all(t.name == f".{path.name}.{proc.pid}.tmp" for t in temporaries), temporaries
        assert seen == sorted(seen), seen
        assert all(g == generation or g >= base for g in seen), seen

        # A kill before this writer's first write completed leaves the previous file.
        previous, generation = generation, _generation(path)
        frame = pd.read_parquet(path)
        if generation == 0:
            pd.testing.assert_frame_equal(frame, small)
        else:
            assert generation == previous or base <= generation, (generation, previous, base)
            pd.testing.assert_frame_equal(frame, big)
        del frame
        left.append(len(temporaries))
    assert mid_write >= 3, f"too few kills landed mid-write: temporaries left {left}"
    assert generation >= 4000, "the last writers completed no write"

    # The next complete write clears what the last killed writer left.
    final = _writer(path, SMALL_ROWS, 9999, loop=False)
    assert final.wait(timeout=60) == 0
    assert _temporaries(path) == []
    assert _generation(path) == 9999
    pd.testing.assert_frame_equal(pd.read_parquet(path), small)


# Rewrites PATH over and over, each generation a table of another size; prints `ready`
# once the first is written.
REWRITER = """
import sys
import pyarrow as pa
from tunefleet.experiments.results.parquet_io import write_parquet_atomic

generation = 0
while True:
    rows = 10 + generation * 37 % 3000
    table = pa.table({"x": list(range(rows)), "n": [generation] * rows})
    write_parquet_atomic(table, sys.argv[1], {"generation": generation})
    if generation == 0:
        print("ready", flush=True)
    generation += 1
"""


def test_readers_never_see_half_a_file_while_it_is_rewritten(tmp_path: Path) -> None:
    """tunefleet's readers read one version whole while a writer renames new ones over it.
    (pyarrow given a path opens the file twice, for the footer and then for the pages, and
    pairs one version's footer with the next one's pages now and then.)"""
    path = tmp_path / "trials.parquet"
    proc = subprocess.Popen([sys.executable, "-c", REWRITER, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", "the writer died before writing"
        readers = {
            "read_table": lambda: tables.read_table(str(path)).to_pandas(),
            "read_frame": lambda: tables.read_frame(locate(str(path))),
        }
        seen: set[int] = set()
        reads = 0
        # Until the reads have spanned 200 rewrites (events, not a guess at how fast each is).
        while reads < 200 or max(seen) - min(seen) < 200:
            assert proc.poll() is None, "the writer died"
            for read in readers.values():
                frame = read()
                generation = int(frame["n"].iloc[0])
                assert list(frame["x"]) == list(range(10 + generation * 37 % 3000))
                assert (frame["n"] == generation).all()
                seen.add(generation)
                reads += 1
    finally:
        proc.kill()
        proc.wait(timeout=60)


def _write_small(path: Path, generation: int) -> bytes:
    write_parquet_atomic(
        pa.Table.from_pandas(_expected(SMALL_ROWS)), str(path), {"generation": generation}
    )
    return path.read_bytes()


@pytest.mark.parametrize(
    "error", [OSError("No space left on device"), KeyboardInterrupt()], ids=["oserror", "interrupt"]
)
def test_a_write_failing_mid_way_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    path = tmp_path / "iterations.parquet"
    before = _write_small(path, 1)
    real_write = pq.write_table

    def half_write(table: pa.Table, where: str | Path, **kwargs: object) -> None:
        real_write(table, where, **kwargs)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])  # half a file, then the failure
        raise error

    monkeypatch.setattr(tables.pq, "write_table", half_write)
    with pytest.raises(type(error)):
        write_parquet_atomic(pa.table({"i": [1, 2, 3]}), str(path), {"generation": 2})
    assert path.read_bytes() == before
    assert _generation(path) == 1
    assert _temporaries(path) == []


def test_a_table_parquet_cannot_hold_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trials.parquet"
    before = _write_small(path, 1)
    union = pa.UnionArray.from_sparse(
        pa.array([0, 1], type=pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])]
    )
    with pytest.raises(pa.ArrowNotImplementedError):
        write_parquet_atomic(pa.table({"u": union}), str(path), {"generation": 2})
    assert path.read_bytes() == before
    assert _temporaries(path) == []


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "trials.parquet"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".trials.parquet.{dead.pid}.tmp"
        running = tmp_path / f".trials.parquet.{live.pid}.tmp"
        other = tmp_path / f".iterations.parquet.{dead.pid}.tmp"
        for leftover in (stale, running, other):
            leftover.write_bytes(b"PAR1 half")
        _write_small(path, 1)
        assert not stale.exists(), "a dead writer's temporary file was kept"
        assert running.exists(), "a running writer's temporary file was removed"
        assert other.exists(), "another file's temporary was removed"
    finally:
        live.kill()
        live.wait(timeout=60)
