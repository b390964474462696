"""`IterationLog`: results as Ray hands them to a callback, turned into typed Arrow columns."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from tunefleet.experiments.results.iteration_log import IterationLog


def result(trial: str, step: int, **metrics: Any) -> dict[str, Any]:
    """A result shaped like Ray's (its own fields included; they are not metrics)."""
    return {
        **metrics,
        "trial_id": trial,
        "training_iteration": step,
        "time_this_iter_s": 0.5,
        "time_total_s": 0.5 * step,
        "timestamp": 1_700_000_000 + step,
        "done": False,
        "pid": 1,
        "hostname": "h",
        "node_ip": "192.0.2.2",
        "date": "2026-11-23",
        "config": {"x": 1},
        "experiment_tag": "0",
    }


def feed(log: IterationLog, results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summaries: dict[str, dict[str, Any]] = {}
    for r in results:
        log.add(r["trial_id"], r)
    summaries.update(log.compact())
    return summaries


def test_columns_keep_their_types_and_late_metrics_get_a_column() -> None:
    log = IterationLog(metric="score", mode="max")
    feed(log, [result("a", 1, score=1, n=1), result("a", 2, score=2, n=2)])
    feed(log, [result("a", 3, score=2.5, n=3, val={"acc": 0.9}, hist=[1, 2])])
    table = log.table()
    assert table.column_names[:6] == [
        "trial_id",
        "training_iteration",
        "time_this_iter_s",
        "time_total_s",
        "timestamp",
        "node_id",
    ]
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()  # 1, 2 then 2.5
    assert table["score"].to_pylist() == [1.0, 2.0, 2.5]
    assert table["val/acc"].to_pylist() == [None, None, 0.9]  # earlier rows kept
    assert "hist" not in table.column_names  # lists are not scalar metrics
    assert {"pid", "hostname", "date", "config", "node_ip"}.isdisjoint(table.column_names)


def test_values_without_a_common_type_become_json() -> None:
    log = IterationLog(metric="score", mode="max")
    feed(log, [result("a", 1, tag=1), result("a", 2, tag="two")])
    assert log.table()["tag"].to_pylist() == ["1", '"two"']
    feed(log, [result("b", 1, tag=3)])  # a later batch: still one column
    assert log.table()["tag"].to_pylist() == ["1", '"two"', "3"]


def test_a_repeated_iteration_replaces_the_earlier_row() -> None:
    log = IterationLog(metric="score", mode="max")
    feed(log, [result("a", 1, score=1.0), result("a", 2, score=2.0), result("b", 1, score=5.0)])
    # Restored from the checkpoint of iteration 1: iteration 2 runs again.
    feed(log, [result("a", 2, score=2.5), result("a", 3, score=3.0)])
    table = log.table()
    assert list(zip(table["trial_id"].to_pylist(), table["score"].to_pylist(), strict=True)) == [
        ("a", 1.0),
        ("b", 5.0),
        ("a", 2.5),
        ("a", 3.0),
    ]


def test_summaries_hold_last_values_and_the_best_finite_target() -> None:
    log = IterationLog(metric="score", mode="min")
    summaries = feed(
        log,
        [
            result("a", 1, score=3.0, extra=1),
            result("a", 2, score=-math.inf),
            result("a", 3, score=math.nan),
            result("a", 4, score=2.0),
        ],
    )
    a = summaries["a"]
    assert a["_best"] == 2.0  # NaN and -inf are not values to pick
    assert a["score"] == 2.0 and a["extra"] == 1  # a metric missing later keeps its value
    assert (a["training_iteration"], a["node_ip"]) == (4, "192.0.2.2")


def test_dropping_trials_forgets_their_rows() -> None:
    log = IterationLog(metric="score", mode="max")
    feed(log, [result("a", 1, score=1.0), result("b", 1, score=2.0)])
    log.drop_trials(["a"])
    assert log.table()["trial_id"].to_pylist() == ["b"]
