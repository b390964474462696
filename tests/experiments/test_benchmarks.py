"""The benchmark cases run end to end at toy sizes and report well-formed figures.

Timings themselves are not asserted (they depend on the machine); the figures' shape and the
work done are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks import overhead, scale, search_quality, time_to_target, workloads


@pytest.mark.slow
def test_overhead_runs_every_case_and_compares_them(ray_instance: None) -> None:
    rows = overhead.overhead(trials=3, results=2, repeats=1)
    assert [r["case"] for r in rows] == [
        "tunefleet",
        "Ray Tune, defaults",
        "Ray Tune, reuse_actors=True",
    ]
    assert all(r["ms_per_trial"] > 0 and len(r["runs_s"]) == 1 for r in rows)
    assert min(r["vs_best_plain_ray"] for r in rows[1:]) == pytest.approx(1.0)
    assert "| random | tunefleet |" in overhead.markdown_overhead(rows)


@pytest.mark.slow
def test_overhead_runs_with_a_model_based_searcher(ray_instance: None) -> None:
    rows = overhead.overhead(trials=3, results=2, repeats=1, searcher="optuna")
    assert [(r["searcher"], r["case"]) for r in rows] == [
        ("optuna", "tunefleet"),
        ("optuna", "Ray Tune, reuse_actors=True, max_concurrent_trials=CPUs"),
    ]
    assert all(r["ms_per_trial"] > 0 and r["speedup_vs_defaults"] is None for r in rows)
    assert "| optuna | tunefleet |" in overhead.markdown_overhead(rows)


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["random", "optuna"])
def test_scheduling_efficiency_is_ideal_over_actual(ray_instance: None, searcher: str) -> None:
    rows = overhead.scheduling(trials=4, work_s=0.1, cpus=2, repeats=1, searcher=searcher)
    reuse = "Ray Tune, reuse_actors=True" + (
        ", max_concurrent_trials=CPUs" if searcher == "optuna" else ""
    )
    assert [r["case"] for r in rows] == ["tunefleet", reuse]
    assert {r["searcher"] for r in rows} == {searcher}
    for row in rows:
        assert row["ideal_s"] == pytest.approx(0.2)
        assert row["efficiency"] == pytest.approx(row["ideal_s"] / row["median_s"])
        assert 0 < row["efficiency"] <= 1 and row["driver_cpu_ms_per_trial"] > 0


@pytest.mark.slow
def test_scale_counts_every_trial_and_samples_memory(ray_instance: None) -> None:
    figures = scale.run(trials=12, cpus=2)
    assert figures["rows_in_trials_parquet"] == 12
    assert figures["statuses"] == {"TERMINATED": 12}
    assert figures["memory_samples"] and figures["driver_peak_rss_mib"] > 0
    assert "| 12 | 12 |" in scale.markdown(figures)


@pytest.mark.slow
def test_time_to_target_times_a_whole_process_until_the_target() -> None:
    # A target every trained epoch passes: the first epoch's record ends the measurement.
    result = time_to_target.measure("optuna", trials=2, seed=0, target=0.0, timeout_s=120)
    assert result["seconds"] is not None and 0 < result["seconds"] < 120
    assert result["epochs_seen"] >= 1


@pytest.mark.slow
def test_export_speed_feeds_every_result_and_compares_with_pyarrow() -> None:
    from benchmarks import export_speed

    figures = export_speed.run(trials=20, iterations=5)
    assert figures["rows"] == 100
    assert figures["recorder_s"] > 0 and figures["pyarrow_s"] > 0 and figures["rows_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["recorder_cpu_s"] / figures["pyarrow_cpu_s"])
    assert figures["rows_ratio"] > 0 and figures["recorder_peak_mib"] > 0
    assert "| tunefleet ResultsRecorder" in bench._export_markdown(figures)


@pytest.mark.slow
def test_plain_loop_learns_digits() -> None:
    config = {
        "lr": 3e-3,
        "batch_size": 64,
        "hidden": 64,
        "dropout": 0.0,
        "weight_decay": 1e-5,
        "optimizer": "adam",
    }
    accuracies = list(workloads.epochs(config))
    assert len(accuracies) == workloads.EPOCHS
    assert accuracies[-1] > 0.9


def test_unknown_case_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["overheads", "--json", str(tmp_path / "f.json")])
    assert exc.value.code == 2
    assert "unknown case 'overheads'" in capsys.readouterr().err


def test_command_writes_markdown_and_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The command around the cases, on its cheapest case (no Ray run): every case's
    figures go to the JSON file and its table to stdout."""
    from benchmarks import search_quality

    out = tmp_path / "figures.json"
    argv = ["search", "--search-trials", "5", "--search-seeds", "1", "--search-parallel", "2"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## search" in printed and "| function | searcher | trials at once |" in printed
    figures = json.loads(out.read_text())
    assert figures["machine"]["cpus"]
    rows = figures["search"]
    assert {r["searcher"] for r in rows} == set(search_quality.SEARCHERS)
    assert {r["parallel"] for r in rows} == {1, 2}


def test_search_quality_reports_sequential_and_parallel_regret() -> None:
    rows = search_quality.run(["random", "optuna-tpe"], ["branin"], 25, 1, parallel=(1, 3))
    assert [(r["searcher"], r["parallel"]) for r in rows] == [
        ("random", 1),
        ("random", 3),
        ("optuna-tpe", 1),
        ("optuna-tpe", 3),
    ]
    assert all(r["regret@25"] >= 0 for r in rows)
    # Random search's samples do not depend on how many run at once; TPE's suggestions do.
    assert rows[0]["regret@25"] == rows[1]["regret@25"]
    text = search_quality.markdown(rows, 1)
    assert "| function | searcher | trials at once |" in text
    assert "| branin | optuna-tpe | 3 |" in text


@pytest.mark.slow
def test_fixed_cost_runs_both_cases_as_whole_processes_and_times_each_step() -> None:
    from benchmarks import fixed_cost

    rows = fixed_cost.run(repeats=1, trials=2, results=2)
    assert [r["case"] for r in rows] == list(fixed_cost.CASES)
    for r in rows:
        steps = r["steps"]
        order = ["ray_up", "fit_started", "trial_started", "first_result", "fit_done"]
        assert all(steps[s] is not None for s in order), steps
        assert [steps[s] for s in order] == sorted(steps[s] for s in order)
        assert steps["fit_done"] < r["wall_s"]
        assert 0 < r["driver_cpu_s"] < r["cpu_s"]  # the workers' and Ray's CPU counted too
        (one,) = r["all_runs"]
        assert r["driver_peak_mib"] > 0 and one["cpu_by_process"]["driver"] == one["driver_cpu_s"]
    assert rows[0]["steps"]["results_written"] is not None  # tunefleet's Parquet files
    assert rows[1]["vs_plain"]["wall_s"] == pytest.approx(1.0)
    assert "| tunefleet |" in fixed_cost.markdown(rows)


@pytest.mark.slow
def test_warm_start_joins_a_running_head_and_stops_it() -> None:
    from benchmarks import warm_start

    rows = warm_start.run(repeats=1, cpus=2, trials=2, results=2)
    assert [r["case"] for r in rows] == list(warm_start.CASES)
    for r in rows:
        assert r["first_trial_s"] is not None and r["first_trial_s"] < r["wall_s"]
        assert r["worker_start_to_trial_s"] is not None
    assert "first trial started" in warm_start.markdown(rows)


@pytest.mark.slow
def test_the_cnn_workload_is_timed_for_optuna_and_tunefleet() -> None:
    for case in ("optuna", "tunefleet"):
        result = time_to_target.measure(
            case, trials=2, seed=0, target=0.0, timeout_s=300, workload="cnn"
        )
        assert result["seconds"] is not None and result["epochs_seen"] >= 1
        steps = result["steps"]
        assert steps["data_loaded"] is not None and steps["first_result"] is not None
        assert steps["data_loaded"] <= steps["first_result"] <= result["seconds"] + 1
    assert steps["ray_up"] is not None and steps["fit_started"] is not None  # tunefleet's


@pytest.mark.slow
def test_the_ray_floor_starts_ray_and_trains_in_two_tasks_without_tune_in_its_driver() -> None:
    import subprocess
    import sys

    # An accuracy no epoch reaches: the process runs to its end, both tasks' epochs recorded.
    result = time_to_target.measure("ray-floor", trials=1, seed=0, target=1.01, timeout_s=180)
    assert result["seconds"] is None
    assert result["epochs_seen"] == 2 * workloads.EPOCHS
    steps = result["steps"]
    assert steps["imports_done"] < steps["ray_up"] < steps["data_loaded"] < steps["first_result"]
    # The driver's module imports neither torch nor Ray Tune (the tasks import them).
    code = (
        "import sys, benchmarks.ray_floor; print(sorted({'torch', 'ray.tune'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_seed_policy_counts_epochs_until_the_target_for_each_policy() -> None:
    from benchmarks import seed_policy

    assert [seed_policy.training_seed("per-trial", n) for n in range(3)] == [0, 1, 2]
    assert [seed_policy.training_seed("shared-7", n) for n in range(3)] == [7, 7, 7]
    # Any first epoch passes 0.0: the study stops there. No epoch passes 1.01: the 2-trial
    # study ends without reaching it.
    assert seed_policy.epochs_to_target("shared-0", 0, trials=2, target=0.0) == 1
    assert seed_policy.epochs_to_target("per-trial", 0, trials=2, target=1.01) is None
    rows = seed_policy.run(("per-trial", "shared-3"), repeats=2, trials=2, target=0.0)
    assert [(r["policy"], r["reached"], r["epochs"]) for r in rows] == [
        ("per-trial", "2/2", [1, 1]),
        ("shared-3", "2/2", [1, 1]),
    ]
    assert "| shared-3 | 1 | 2/2 | 1, 1 |" in seed_policy.markdown(rows)


def test_the_before_case_runs_the_same_spec_one_trial_at_a_time(tmp_path: Path) -> None:
    import yaml

    specs = {}
    for case in ("tunefleet", "tunefleet-one-at-a-time"):
        folder = tmp_path / case
        folder.mkdir()
        command = time_to_target._command(case, trials=10, seed=1, workdir=folder)
        assert command[1:4] == ["-m", "tunefleet.experiments", "run"]
        specs[case] = yaml.safe_load((folder / "spec.yaml").read_text())
    before, after = specs["tunefleet-one-at-a-time"], specs["tunefleet"]
    assert before["search"].pop("max_concurrent") == 1
    assert after["search"].pop("max_concurrent") == 2
    assert before == after


def test_the_elastic_benchmark_counts_busy_slots_after_each_join() -> None:
    import pandas as pd

    from benchmarks import elastic

    # Node a joins at 0 and runs trials from 2 s; b joins at 5 and gets one at 9; c joins at
    # 6 and idles until 20: 10 s after each join, 1/1, then 2/2, then 2/3 slots are busy.
    spans = pd.DataFrame(
        {
            "trial_id": ["t1", "t2", "t3", "t4"],
            "node_id": ["a", "a", "b", "c"],
            "began": [102.0, 108.0, 109.0, 120.0],
            "ended": [108.0, 130.0, 130.0, 130.0],
        }
    )
    row = elastic._figures(
        "default spec", spans, {"a": 100.0, "b": 105.0, "c": 106.0}, started=99.0, wall_s=31.0
    )
    assert row["pending_to_new_node_s"] == 3.0
    assert row["join_to_first_trial_s"] == {"a": 2.0, "b": 4.0, "c": 14.0}
    assert [(b["running"], b["slots"]) for b in row["busy_after_join"]] == [(1, 1), (2, 2), (2, 3)]
    assert row["busy_share"] == 5 / 6
    assert "| default spec | 31.0 | 3 / 3 | 3.0 | 2.0, 4.0, 14.0 | 83% (1/1 2/2 2/3) |" in (
        elastic.markdown([row])
    )
