"""The rows of `iterations.parquet`, kept as Arrow tables between writes.

A result costs the driver two list appends when it arrives; results are turned into Arrow
columns in bulk (every `COMPACT_EVERY` results and before each write), so that recording a
million results costs about what pyarrow needs to build the same table, and memory holds
compact columns rather than a million dicts.

Per-trial figures are grouped with numpy over `pyarrow.compute` codes, not with
`Table.group_by`: that loads Arrow's query engine (`pyarrow.acero`, with `pyarrow.dataset`
and substrait), 0.2 s of CPU measured here, a quarter of what a short run's driver spends
beyond a plain Ray Tune script's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunefleet.experiments.results.parquet_io import RAY_FIELDS, flatten

__all__ = ["COMPACT_EVERY", "FIXED", "TIMING", "IterationLog"]

TIMING = ("time_this_iter_s", "time_total_s", "timestamp")
FIXED = ("trial_id", "training_iteration", *TIMING, "node_id")
COMPACT_EVERY = 20_000
_NOT_METRICS = frozenset(RAY_FIELDS) | set(FIXED)


class IterationLog:
    """Results in arrival order; a re-reported `(trial, training_iteration)` replaces the
    earlier row (a trial restored from an older checkpoint repeats iterations).

    Args:
        population_based: Also keep each result's config as `config/<param>` columns.
    """

    def __init__(self, *, metric: str, mode: str, population_based: bool = False) -> None:
        self.metric = metric
        self.mode = mode
        self.population_based = population_based
        self._tables: list[pa.Table] = []
        # Results not yet compacted, in arrival order; each carries its `trial_id` (Ray's
        # controller puts it in every result before the callbacks see it).
        self.incoming: list[Mapping[str, Any]] = []
        self._last_iteration: dict[str, Any] = {}
        self._repeated = False

    def add(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        """Records a result as Ray passed it; True when it is time to `compact`.

        Ray puts the trial's id in every result (`trial_id`); a result without it gets a
        copy that has it.
        """
        if result.get("trial_id") != trial_id:
            result = {**result, "trial_id": trial_id}
        self.incoming.append(result)
        return len(self.incoming) >= COMPACT_EVERY

    def compact(self) -> dict[str, dict[str, Any]]:
        """Turns the pending results into Arrow columns.

        Returns:
            Per trial that reported: its last value of every column (nulls skipped), its
            `node_ip`, and under `_best` its best finite value of the target metric among
            these results (None if none).
        """
        if not self.incoming:
            return {}
        pending = self.incoming
        self.incoming = []
        table = _to_table(pending, self.population_based)
        self._tables.append(table)
        stats = _trial_stats(table, self.metric, self.mode)
        summaries: dict[str, dict[str, Any]] = {}
        rows = stats["_row_max"]
        best = stats.get("_best", [None] * len(rows))
        for tid, row, summary, value in zip(
            stats["trial_id"], rows, table.take(rows).to_pylist(), best, strict=True
        ):
            summary["node_ip"] = pending[row].get("node_ip")
            summary["_best"] = value
            summaries[tid] = summary
        if "training_iteration_min" in stats:
            self._note_iterations(stats)
        keys, codes = stats["trial_id"], _groups(table["trial_id"])[1]
        for name in table.column_names:  # a column some results lack: its last value
            column = table[name]
            if name == "trial_id" or not column.null_count or pa.types.is_null(column.type):
                continue
            valid = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
            found, at = _last_rows(codes[valid])
            values = column.take(pa.array(valid[at])).to_pylist()
            for code, value in zip(found.tolist(), values, strict=True):
                summaries[keys[code]][name] = value
        return summaries

    def _note_iterations(self, stats: dict[str, list[Any]]) -> None:
        """Ray numbers a trial's results 1, 2, ...: a number seen before means the trial
        was restored from an older checkpoint and repeats iterations (the later row wins)."""
        for tid, low, high, count in zip(
            stats["trial_id"],
            stats["training_iteration_min"],
            stats["training_iteration_max"],
            stats["training_iteration_count"],
            strict=True,
        ):
            if low is None:
                continue
            previous = self._last_iteration.get(tid)
            if (previous is not None and low <= previous) or count > high - low + 1:
                self._repeated = True
            self._last_iteration[tid] = high if previous is None else max(previous, high)

    def load(self, table: pa.Table) -> None:
        """Starts from the rows of an earlier run's file."""
        self._tables = [table] if table.num_rows else []
        self._last_iteration = {}
        steps = table["training_iteration"] if "training_iteration" in table.column_names else None
        if table.num_rows and steps is not None and pa.types.is_integer(steps.type):
            keys, codes = _groups(table["trial_id"])
            _, high, _ = _int_range(steps, codes, len(keys))
            self._last_iteration = dict(zip(keys, high, strict=True))

    def drop_trials(self, trial_ids: Iterable[str]) -> None:
        """Forgets every row of these trials (call `compact` first)."""
        lost = pa.array(list(trial_ids), pa.string())
        self._tables = [t.filter(pc.invert(pc.is_in(t["trial_id"], lost))) for t in self._tables]
        for tid in lost.to_pylist():
            self._last_iteration.pop(tid, None)

    def table(self) -> pa.Table:
        """Every row: the fixed columns first, then metrics in the order they appeared
        (call `compact` first: results not yet compacted are left out)."""
        if not self._tables:
            return pa.table({name: pa.array([], pa.null()) for name in FIXED})
        table = _concat(self._tables)
        if self._repeated:
            table = _keep_last(table)
            self._tables, self._repeated = [table], False
        return table


_ARROW_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


def _to_table(results: list[Mapping[str, Any]], population_based: bool) -> pa.Table:
    metrics = [k for k in _keys(results) if k not in _NOT_METRICS and k != "node_ip"]
    wanted = [*FIXED, *metrics]
    # Fast path: pyarrow converts the plain values of all results at once, with the types
    # of the first result's values; any value that does not fit sends the whole batch down
    # the per-column path below, which gives the same columns.
    first = results[0]
    typed = {k: _ARROW_TYPES[type(first[k])] for k in wanted if type(first.get(k)) in _ARROW_TYPES}
    converted: dict[str, pa.Array] = {}
    if typed:
        try:
            struct = pa.array(results, type=pa.struct(list(typed.items())))
            converted = dict(zip(typed, struct.flatten(), strict=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
            converted = {}
    columns: dict[str, pa.Array] = {}
    for name in wanted:
        if name in converted:
            columns.setdefault(name, converted[name])
        elif name in metrics:
            _add(columns, name, results)
        else:
            columns[name] = _array([r.get(name) for r in results])
    if population_based:
        for name, array in _flat_columns([r.get("config") or {} for r in results]).items():
            columns[f"config/{name}"] = array
    return pa.table(columns)


def _keys(results: list[Mapping[str, Any]]) -> list[str]:
    """The keys of all results, in the order they first appear."""
    first = list(results[0])
    if len(set().union(*results)) == len(first):
        return first
    seen = dict.fromkeys(first)
    for result in results:  # a metric that appeared mid-run (rare): find where
        seen.update(dict.fromkeys(result))
    return list(seen)


def _primitive(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    )


def _add(columns: dict[str, pa.Array], name: str, results: list[Mapping[str, Any]]) -> None:
    """Adds a metric's column; nested mappings become `name/key` columns, other
    non-scalar values (lists, arrays, objects) are left out."""
    values = [r.get(name) for r in results]
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        array = None
    if array is not None and _primitive(array.type):
        columns[name] = array
        return
    rows = [{name: r[name]} if name in r else {} for r in results]
    for key, column in _flat_columns(rows).items():
        columns.setdefault(key, column)


def _flat_columns(rows: list[Any]) -> dict[str, pa.Array]:
    """Columns of scalar values from nested mappings, flattened with `/` (per value: slow,
    for the rare columns that need it)."""
    flat = [
        {k: v for k, v in flatten(r).items() if _is_scalar(v)} if isinstance(r, Mapping) else {}
        for r in rows
    ]
    names = dict.fromkeys(k for r in flat for k in r)
    return {n: _array([r.get(n) for r in flat]) for n in names}


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _array(values: list[Any]) -> pa.Array:
    """A typed column; JSON text when the values have no common Arrow type."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        return _json(values)
    return array if _primitive(array.type) else _json(values)


def _json(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else json.dumps(v, default=str) for v in values])


def _concat(tables: list[pa.Table]) -> pa.Table:
    """The tables one after another; a column whose types cannot be unified becomes JSON."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for field in table.schema:
            if not pa.types.is_null(field.type):
                types.setdefault(field.name, set()).add(field.type)
    mixed = {n for n, kinds in types.items() if len(kinds) > 1}
    fixed = []
    for table in tables:
        for name in mixed & set(table.column_names):
            column = table[name]
            if not (pa.types.is_string(column.type) or pa.types.is_null(column.type)):
                i = table.column_names.index(name)
                table = table.set_column(i, name, _json(column.to_pylist()))
        fixed.append(table)
    return pa.concat_tables(fixed, promote_options="permissive")


def _keep_last(table: pa.Table) -> pa.Table:
    """Keeps the last row of each (trial_id, training_iteration), in row order."""
    _, trials = _groups(table["trial_id"])
    distinct, steps = _groups(table["training_iteration"])
    pairs = trials * max(len(distinct), 1) + steps
    _, rows = _last_rows(pairs)
    return table.take(pa.array(np.sort(rows)))


def _groups(column: pa.ChunkedArray | pa.Array) -> tuple[list[Any], np.ndarray]:
    """The distinct values of `column` (null one of them) in order of first appearance,
    and each row's index into them."""
    keys = pc.unique(column)
    codes = pc.index_in(column, value_set=keys, skip_nulls=False)
    return keys.to_pylist(), np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)


def _last_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups present in `codes` and, for each, the index of its last row."""
    found, from_end = np.unique(codes[::-1], return_index=True)
    return found, len(codes) - 1 - from_end


def _int_range(
    column: pa.ChunkedArray, codes: np.ndarray, groups: int
) -> tuple[list[int | None], list[int | None], list[int]]:
    """Per group: the lowest and highest non-null value of an integer column, and the count
    of non-null values (None for a group with none)."""
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    low = np.full(groups, np.iinfo(np.int64).max)
    high = np.full(groups, np.iinfo(np.int64).min)
    np.minimum.at(low, codes[valid], values[valid])
    np.maximum.at(high, codes[valid], values[valid])
    count = np.bincount(codes[valid], minlength=groups)
    seen = count > 0
    return (
        [int(v) if ok else None for v, ok in zip(low, seen, strict=True)],
        [int(v) if ok else None for v, ok in zip(high, seen, strict=True)],
        count.tolist(),
    )


def _best(values: pa.ChunkedArray, codes: np.ndarray, groups: int, mode: str) -> list[Any]:
    """Per group: the best finite value of a numeric column (None for a group with none),
    in the column's own type."""
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(values.type):
        valid &= np.isfinite(values.fill_null(0.0).to_numpy(zero_copy_only=False))
    rows = np.flatnonzero(valid)
    best: list[Any] = [None] * groups
    if not len(rows):
        return best
    numbers = values.take(pa.array(rows)).to_numpy(zero_copy_only=False)
    order = np.lexsort((numbers, codes[rows]))  # by group, then by value, ascending
    ordered = codes[rows][order]
    if mode == "max":
        found, at = _last_rows(ordered)
    else:
        found, at = np.unique(ordered, return_index=True)
    winners = values.take(pa.array(rows[order][at])).to_pylist()
    for code, value in zip(found.tolist(), winners, strict=True):
        best[code] = value
    return best


def _trial_stats(table: pa.Table, metric: str, mode: str) -> dict[str, list[Any]]:
    """Per trial (in order of first appearance): its last row (`_row_max`), the range and
    count of its iterations, its best value (`_best`)."""
    keys, codes = _groups(table["trial_id"])
    groups = len(keys)
    _, last = _last_rows(codes)
    stats: dict[str, list[Any]] = {"trial_id": keys, "_row_max": last.tolist()}
    steps = table["training_iteration"]
    if pa.types.is_integer(steps.type):
        low, high, count = _int_range(steps, codes, groups)
        stats["training_iteration_min"] = low
        stats["training_iteration_max"] = high
        stats["training_iteration_count"] = count
    if metric in table.column_names and _numeric(table[metric].type):
        stats["_best"] = _best(table[metric], codes, groups, mode)
    return stats


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))
