"""The rows of `iterations.parquet`, kept as Arrow tables between writes.

A result costs the driver two list appends when it arrives; results are turned into Arrow
columns in bulk (every `COMPACT_EVERY` results and before each write), so that recording a
million results costs about what pyarrow needs to build the same table, and memory holds
compact columns rather than a million dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunefleet.common.ray_compat import RAY_RESULT_FIELDS
from tunefleet.experiments.results.parquet_io import flatten, is_scalar, json_column

__all__ = ["COMPACT_EVERY", "FIXED", "TIMING", "IterationLog"]

TIMING = ("time_this_iter_s", "time_total_s", "timestamp")
FIXED = ("trial_id", "training_iteration", *TIMING, "node_id")
COMPACT_EVERY = 20_000
_NOT_METRICS = frozenset(RAY_RESULT_FIELDS) | set(FIXED)


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
        stats = _trial_stats(table, self.metric, self.mode).to_pydict()
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
        for name in table.column_names:  # a column some results lack: its last value
            column = table[name]
            if name == "trial_id" or not column.null_count or pa.types.is_null(column.type):
                continue
            last = table.select(["trial_id", name]).group_by("trial_id", use_threads=False)
            found = last.aggregate([(name, "last")])
            for tid, value in zip(
                found["trial_id"].to_pylist(), found[f"{name}_last"].to_pylist(), strict=True
            ):
                summaries[tid][name] = value
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
        if table.num_rows and "training_iteration" in table.column_names:
            last = table.group_by("trial_id", use_threads=False).aggregate(
                [("training_iteration", "max")]
            )
            self._last_iteration = dict(
                zip(
                    last["trial_id"].to_pylist(),
                    last["training_iteration_max"].to_pylist(),
                    strict=True,
                )
            )

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
        {k: v for k, v in flatten(r).items() if is_scalar(v)} if isinstance(r, Mapping) else {}
        for r in rows
    ]
    names = dict.fromkeys(k for r in flat for k in r)
    return {n: _array([r.get(n) for r in flat]) for n in names}


def _array(values: list[Any]) -> pa.Array:
    """A typed column; JSON text when the values have no common Arrow type."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        return json_column(values)
    return array if _primitive(array.type) else json_column(values)


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
                table = table.set_column(i, name, json_column(column.to_pylist()))
        fixed.append(table)
    return pa.concat_tables(fixed, promote_options="permissive")


def _keep_last(table: pa.Table) -> pa.Table:
    """Keeps the last row of each (trial_id, training_iteration), in row order."""
    indexed = table.select(["trial_id", "training_iteration"]).append_column(
        "_row", pa.array(np.arange(table.num_rows, dtype=np.int64))
    )
    last = indexed.group_by(["trial_id", "training_iteration"], use_threads=False).aggregate(
        [("_row", "max")]
    )
    rows = last["_row_max"]
    return table.take(pc.take(rows, pc.sort_indices(rows)))


def _trial_stats(table: pa.Table, metric: str, mode: str) -> pa.Table:
    """Per trial: its last row, the range and count of its iterations, its best value."""
    columns = {
        "trial_id": table["trial_id"],
        "_row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
    }
    aggregations: list[tuple[str, str]] = [("_row", "max")]
    steps = table["training_iteration"]
    if pa.types.is_integer(steps.type):
        columns["training_iteration"] = steps
        aggregations += [("training_iteration", h) for h in ("min", "max", "count")]
    if metric in table.column_names and _numeric(table[metric].type):
        values = table[metric]
        if pa.types.is_floating(values.type):
            values = pc.if_else(pc.is_finite(values), values, pa.scalar(None, values.type))
        columns["_best"] = values
        aggregations.append(("_best", "max" if mode == "max" else "min"))
    stats = pa.table(columns).group_by("trial_id", use_threads=False).aggregate(aggregations)
    if "_best_max" in stats.column_names or "_best_min" in stats.column_names:
        name = "_best_max" if mode == "max" else "_best_min"
        stats = stats.rename_columns(["_best" if c == name else c for c in stats.column_names])
    return stats


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))
