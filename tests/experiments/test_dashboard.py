"""The dashboard's Optuna storage, filled from Parquet results written here: distributions
from the spec, states, values, curves, times and attributes; refills as files change; a
storage root on a real S3 server (moto); the command's one-line errors. The browser tests of
real runs are in test_dashboard_browser.py."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pyarrow as pa
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tunefleet.experiments.analysis.dashboard import (
    Dashboard,
    DashboardError,
    insecure_host_warning,
)
from tunefleet.experiments.analysis.dashboard_storage import (
    ReadOnlyError,
    ResultsStorage,
    ResultsWatcher,
)
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.parquet_io import write_parquet_atomic

pytest.importorskip("optuna_dashboard")

CONDITIONAL = {
    "model": {
        "optimizer": {
            "choice": {
                "sgd": {"lr": {"loguniform": [1e-4, 1e-1]}, "momentum": {"uniform": [0, 0.99]}},
                "adam": {
                    "lr": {"loguniform": [1e-4, 1e-2]},
                    "betas": {"choice": [[0.9, 0.99], [0.8, 0.9]]},
                },
            }
        },
        "depth": {"qrandint": [2, 8, 2]},
    },
    "units": {"randint": [1, 4]},
    "wd": {"quniform": [0.0, 0.1, 0.01]},
    "epochs": 5,
}


def write_experiment(
    folder: Path,
    trials: list[dict[str, Any]],
    iterations: list[dict[str, Any]],
    *,
    spec: dict[str, Any] | None,
    exploits: list[dict[str, Any]] | None = None,
    started_at: float = 1000.0,
    written_at: float = 2000.0,
) -> None:
    """Results files as a run writes them (atomically, with the tunefleet metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = spec or {"metric": "score", "mode": "max"}
    metric = target["metric"][0] if isinstance(target["metric"], list) else target["metric"]
    mode = target["mode"][0] if isinstance(target["mode"], list) else target["mode"]
    info = {"experiment": folder.name, "metric": metric, "mode": mode}
    info |= {"started_at": started_at, "written_at": written_at}
    if spec is not None:
        info["spec"] = spec
    files = {"trials": trials, "iterations": iterations, "exploits": exploits}
    for name, rows in files.items():
        if rows is not None:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
            write_parquet_atomic(table, str(folder / f"{name}.parquet"), info)


def trial(trial_id: str, status: str, **columns: Any) -> dict[str, Any]:
    row = {"trial_id": trial_id, "status": status, "best/score": None, "iterations": 0}
    row |= {"time_total_s": 1.0, "node_ip": "127.0.0.1", "node_id": "n1", "error": None}
    row |= {"invalid_metric": None}
    return row | columns


def result(trial_id: str, step: int, timestamp: int, total: float, **metrics: Any) -> dict:
    return {
        "trial_id": trial_id,
        "training_iteration": step,
        "time_this_iter_s": 1.0,
        "time_total_s": total,
        "timestamp": timestamp,
        "node_id": "n1",
        **metrics,
    }


def load_study(location: Path | str, name: str) -> tuple[optuna.Study, ResultsStorage]:
    storage = ResultsStorage()
    ResultsWatcher(str(location), storage).refresh()
    return optuna.load_study(study_name=name, storage=storage), storage


def test_a_conditional_experiment_becomes_a_study_with_the_specs_distributions(
    tmp_path: Path,
) -> None:
    sgd = {"config/model/optimizer": "sgd", "config/model/lr": 0.01, "config/model/momentum": 0.9}
    adam = {"config/model/optimizer": "adam", "config/model/lr": 0.001}
    common = {"config/model/depth": 4, "config/units": 4, "config/wd": 0.03, "config/epochs": 5}
    betas = {"config/model/betas": [0.9, 0.99]}
    trials = [
        trial("t0", "TERMINATED", **{"best/score": 0.8, "iterations": 2, "score": 0.75}, **sgd),
        trial("t1", "TERMINATED", **{"best/score": 0.6, "score": 0.6}, **adam, **betas),
        trial("t2", "ERROR", error="ValueError: boom", **sgd),
        trial("t3", "RUNNING", **adam),
        trial("t4", "PENDING", **adam),
        trial("t5", "TERMINATED", invalid_metric="NaN", **sgd),
    ]
    trials = [row | common for row in trials]
    iterations = [
        result("t0", 1, 1100, 5.0, score=0.5),
        result("t0", 2, 1110, 15.0, score=0.75),
        result("t1", 1, 1120, 2.0, score=0.6),
        result("t3", 1, 1130, 2.0, score=0.1),
    ]
    spec = {"metric": "score", "mode": "max", "space": CONDITIONAL}
    write_experiment(tmp_path / "cond", trials, iterations, spec=spec)

    study, _ = load_study(tmp_path, "cond")
    assert study.directions == [StudyDirection.MAXIMIZE] and study.metric_names == ["score"]
    t0, t1, t2, t3, t4, t5 = study.trials
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
        TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL,
    ]  # fmt: skip
    # The sgd branch's parameters, and the unconditional ones; the constant is no parameter.
    assert t0.params == {
        "model/optimizer": "sgd", "model/lr": 0.01, "model/momentum": 0.9,
        "model/depth": 4, "units": 4, "wd": 0.03,
    }  # fmt: skip
    assert t0.distributions["model/lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert t0.distributions["model/momentum"] == FloatDistribution(0.0, 0.99)
    assert t0.distributions["model/depth"] == IntDistribution(2, 8, step=2)
    assert t0.distributions["units"] == IntDistribution(1, 4)  # inclusive, like the spec
    assert t0.distributions["wd"] == FloatDistribution(0.0, 0.1, step=0.01)
    assert t0.distributions["model/optimizer"] == CategoricalDistribution(("sgd", "adam"))
    # The adam branch: its own lr range, and a choice of lists as JSON text.
    assert set(t1.params) == {
        "model/optimizer",
        "model/lr",
        "model/betas",
        "model/depth",
        "units",
        "wd",
    }
    assert t1.distributions["model/lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert t1.params["model/betas"] == "[0.9, 0.99]"
    assert t1.distributions["model/betas"] == CategoricalDistribution(("[0.9, 0.99]", "[0.8, 0.9]"))
    assert "model/betas" not in t3.params  # not drawn yet

    assert t0.value == 0.8 and t1.value == 0.6  # best/score, what `show` ranks by
    assert t0.intermediate_values == {1: 0.5, 2: 0.75}
    assert t0.datetime_start == datetime.fromtimestamp(1095)  # first result less its time
    assert t0.datetime_complete == datetime.fromtimestamp(1110)
    assert t0.user_attrs == {
        "trial_id": "t0", "status": "TERMINATED", "iterations": 2, "time_total_s": 1.0,
        "node_ip": "127.0.0.1", "node_id": "n1", "score": 0.75,
    }  # fmt: skip
    assert t2.values is None and t2.user_attrs["error"] == "ValueError: boom"
    assert t2.datetime_start == t2.datetime_complete == datetime.fromtimestamp(2000)
    assert t3.datetime_complete is None and t3.intermediate_values == {1: 0.1}
    assert t4.datetime_start is None
    assert t5.values is None and t5.user_attrs["invalid_metric"] == "NaN"
    assert study.best_trial.number == 0


def test_multi_objective_values_are_each_metrics_last_value(tmp_path: Path) -> None:
    spec = {
        "metric": ["accuracy", "cost"],
        "mode": ["max", "min"],
        "space": {"x": {"uniform": [0, 1]}},
    }
    trials = [
        trial("a", "TERMINATED", **{"best/accuracy": 0.9, "accuracy": 0.8, "cost": 3.0, "config/x": 0.5}),
        trial("b", "TERMINATED", **{"best/accuracy": 0.7, "accuracy": 0.7, "cost": None, "config/x": 0.2}),
    ]  # fmt: skip
    write_experiment(tmp_path / "mo", trials, [result("a", 1, 1100, 1.0, accuracy=0.8)], spec=spec)
    study, _ = load_study(tmp_path / "mo", "mo")
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.metric_names == ["accuracy", "cost"]
    assert study.trials[0].values == [0.8, 3.0]
    assert study.trials[1].state == TrialState.FAIL  # no cost: not a point of the front
    assert [t.number for t in study.best_trials] == [0]


def test_pbt_config_changes_are_attributes_and_perturbed_values_widen_the_range(
    tmp_path: Path,
) -> None:
    spec = {"metric": "score", "mode": "max", "space": {"lr": {"loguniform": [1e-4, 1e-1]}}}
    trials = [
        trial("p0", "TERMINATED", **{"best/score": 1.0, "config/lr": 0.12}),  # perturbed x1.2
        trial("p1", "PAUSED", **{"best/score": 2.0, "config/lr": 0.1}),
    ]
    exploits = [
        {"trial_id": "p0", "training_iteration": 4, "cloned_from": "p1", "cloned_iteration": 4,
         "changed": "lr: 0.1 -> 0.12", "config/lr": 0.12},
    ]  # fmt: skip
    write_experiment(tmp_path / "pbt", trials, [], spec=spec, exploits=exploits)
    study, _ = load_study(tmp_path / "pbt", "pbt")
    p0, p1 = study.trials
    assert p0.user_attrs["config_changes"] == [
        "iteration 4: copied p1 (iteration 4); lr: 0.1 -> 0.12"
    ]
    assert p0.params == {"lr": 0.12} and p1.params == {"lr": 0.1}
    assert (
        p0.distributions["lr"] == p1.distributions["lr"] == FloatDistribution(1e-4, 0.12, log=True)
    )
    assert p1.state == TrialState.RUNNING and "config_changes" not in p1.user_attrs


def test_a_range_that_widens_during_a_run_stays_in_the_pages_search_space(tmp_path: Path) -> None:
    """PBT takes a value past the spec's range while the page is open: the page's search
    space (which its server caches from the trials it has seen) follows the wider range."""
    spec = {"metric": "score", "mode": "max", "space": {"lr": {"loguniform": [1e-4, 1e-1]}}}
    done = trial("p0", "TERMINATED", **{"best/score": 1.0, "config/lr": 0.05})
    write_experiment(tmp_path, [done, trial("p1", "RUNNING", **{"config/lr": 0.1})], [], spec=spec)

    def search_space(base: str) -> list[tuple[str, float]]:
        detail = json.load(urllib.request.urlopen(f"{base}/api/studies/0", timeout=30))
        return [(p["name"], p["distribution"]["high"]) for p in detail["intersection_search_space"]]

    with Dashboard(str(tmp_path), port=0, every_s=0.1) as dashboard:
        base = dashboard.url.removesuffix("/dashboard")
        assert search_space(base) == [("lr", 0.1)]
        perturbed = trial("p1", "RUNNING", **{"config/lr": 0.12})
        write_experiment(tmp_path, [done, perturbed], [], spec=spec, written_at=2010.0)
        deadline = time.monotonic() + 60
        while search_space(base) == [("lr", 0.1)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert search_space(base) == [("lr", 0.12)]


def test_without_a_spec_the_distributions_span_the_values_seen(tmp_path: Path) -> None:
    trials = [
        trial("e0", "TERMINATED", **{"best/score": 1.0, "config/x": 0.5, "config/k": 2,
                                     "config/opt": "sgd", "config/c": 7}),
        trial("e1", "TERMINATED", **{"best/score": 2.0, "config/x": 1.5, "config/k": 5,
                                     "config/opt": "adam", "config/c": 7}),
    ]  # fmt: skip
    write_experiment(tmp_path / "plain", trials, [], spec=None)
    study, _ = load_study(tmp_path / "plain", "plain")
    assert study.trials[0].distributions == {
        "x": FloatDistribution(0.5, 1.5),
        "k": IntDistribution(2, 5),
        "opt": CategoricalDistribution(("sgd", "adam")),
    }
    assert study.trials[1].params == {"x": 1.5, "k": 5, "opt": "adam"}


def test_the_storage_follows_rewrites_keeps_ids_and_only_reads(tmp_path: Path) -> None:
    spec = {"metric": "score", "mode": "max", "space": {"x": {"uniform": [0, 1]}}}
    run_a = tmp_path / "a"
    write_experiment(run_a, [trial("a0", "RUNNING", **{"config/x": 0.1})], [], spec=spec)
    storage = ResultsStorage()
    watcher = ResultsWatcher(str(tmp_path), storage)
    assert watcher.refresh() == 1
    first = storage.get_all_trials(0)
    assert [t.state for t in first] == [TrialState.RUNNING]

    rows = [trial("a0", "TERMINATED", **{"config/x": 0.1, "best/score": 1.0}),
            trial("a1", "RUNNING", **{"config/x": 0.2})]  # fmt: skip
    write_experiment(run_a, rows, [], spec=spec, written_at=2010.0)
    write_experiment(tmp_path / "b", rows[:1], [], spec=spec)
    assert watcher.refresh() == 2
    assert [s.study_name for s in storage.get_all_studies()] == ["a", "b"]
    now = storage.get_all_trials(0)
    assert [t.state for t in now] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert now[0]._trial_id == first[0]._trial_id  # the page keys on ids: they stay
    assert storage.get_trial(now[1]._trial_id).user_attrs["trial_id"] == "a1"

    # Rerun under the same name (--overwrite): a new study; the old one is gone.
    write_experiment(run_a, rows[:1], [], spec=spec, started_at=3000.0)
    assert watcher.refresh() == 2
    assert [(s._study_id, s.study_name) for s in storage.get_all_studies()] == [(1, "b"), (2, "a")]
    with pytest.raises(KeyError, match="no study with id 0"):
        storage.get_all_trials(0)
    for path in (tmp_path / "b").iterdir():
        path.unlink()
    (tmp_path / "b").rmdir()
    assert watcher.refresh() == 1

    study = optuna.load_study(study_name="a", storage=storage)
    with pytest.raises(ReadOnlyError, match=r"^the tunefleet dashboard only reads"):
        study.set_user_attr("note", "x")
    with pytest.raises(ReadOnlyError, match=r"only reads the experiment's results"):
        optuna.create_study(study_name="new", storage=storage)


def test_a_storage_root_on_s3_is_served(tmp_path: Path, object_store, s3_storage: str) -> None:
    """The session's real S3 server (moto, tests/conftest.py): the root is listed and read
    through pyarrow, with only the standard AWS environment."""
    import boto3

    spec = {"metric": "score", "mode": "max", "space": {"x": {"uniform": [0, 1]}}}
    rows = [trial(f"s{i}", "TERMINATED", **{"config/x": i / 4, "best/score": i}) for i in range(3)]
    iterations = [result(f"s{i}", 1, 1100 + i, 1.0, score=i) for i in range(3)]
    write_experiment(tmp_path / "s3exp", rows, iterations, spec=spec)
    client = boto3.client("s3", endpoint_url=object_store.endpoint)
    prefix = s3_storage.removeprefix(f"s3://{object_store.bucket}/")
    for path in (tmp_path / "s3exp").iterdir():
        client.upload_file(str(path), object_store.bucket, f"{prefix}/s3exp/{path.name}")

    with Dashboard(s3_storage, port=0) as dashboard:
        assert dashboard.experiments == 1
        api = dashboard.url.removesuffix("/dashboard") + "/api/studies"
        (summary,) = json.load(urllib.request.urlopen(api, timeout=30))["study_summaries"]
        assert summary["study_name"] == "s3exp"
        detail = json.load(urllib.request.urlopen(f"{api}/{summary['study_id']}", timeout=30))
        assert [t["state"] for t in detail["trials"]] == ["Complete"] * 3
        assert {"key": "folder", "value": f"{s3_storage}/s3exp"} in summary["user_attrs"]


def test_an_ipv6_loopback_host_is_served(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    spec = {"metric": "score", "mode": "max", "space": {"x": {"uniform": [0, 1]}}}
    write_experiment(tmp_path / "six", [trial("v0", "RUNNING", **{"config/x": 0.5})], [], spec=spec)
    try:
        dashboard = Dashboard(str(tmp_path), host="::1", port=0).start()
    except DashboardError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert dashboard.url.startswith("http://[::1]:")
        api = dashboard.url.removesuffix("/dashboard") + "/api/studies"
        (summary,) = json.load(urllib.request.urlopen(api, timeout=30))["study_summaries"]
        assert summary["study_name"] == "six"
    finally:
        dashboard.stop()


def test_without_optuna_dashboard_the_commands_name_the_extra(
    tmp_path: Path, write_spec, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    message = (
        "tunefleet: error: the dashboard needs optuna-dashboard; install it with "
        "`pip install 'tunefleet[dashboard]'`.\n"
    )
    assert main(["dashboard", str(tmp_path)]) == 2
    assert capsys.readouterr().err == message
    spec = write_spec(
        "name: x\ntrainable: tests.support.trainables:linear\nmetric: score\nmode: max\n"
    )
    assert main(["run", str(spec), "--storage", str(tmp_path), "--dashboard"]) == 2
    assert capsys.readouterr().err == message  # before Ray starts
    with pytest.raises(DashboardError, match=r"^the dashboard needs optuna-dashboard; install"):
        Dashboard(str(tmp_path)).start()


def test_the_command_refuses_a_missing_folder_a_taken_port_and_warns_off_loopback(
    tmp_path: Path, capsys
) -> None:
    assert main(["dashboard", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (
        f"tunefleet: error: {tmp_path / 'nope'}: no such folder; give an experiment folder "
        "(<storage>/<name>) or a storage root such as ./results.\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # 0.0.0.0 would listen on every interface: the port taken on 127.0.0.1 stops it.
        assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0", "--port", str(port)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: the dashboard listens on 0.0.0.0:{port} and has no authentication: anyone "
        "who reaches that address reads the results; keep --host 127.0.0.1 and use an SSH "
        "tunnel to view it from another machine.",
        f"tunefleet: error: cannot listen on 0.0.0.0:{port} (Address already in use); choose "
        "another port with --port (or --dashboard-port).",
    ]
    assert main(["dashboard", str(tmp_path), "--port", "70000"]) == 2
    assert capsys.readouterr().err == (
        "tunefleet: error: port 70000 is not a port number; give one from 1 to 65535 "
        "(0: any free one).\n"
    )
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert insecure_host_warning(host, 8080) is None
    for host in ("0.0.0.0", "::", "192.0.2.7", "myhost.example"):
        assert "has no authentication" in (insecure_host_warning(host, 8080) or "")


def test_a_write_from_the_page_is_refused_with_a_reason_not_a_server_error(
    tmp_path: Path,
) -> None:
    spec = {"metric": "score", "mode": "max", "space": {"x": {"uniform": [0, 1]}}}
    write_experiment(tmp_path / "ro", [trial("r0", "RUNNING", **{"config/x": 0.5})], [], spec=spec)
    with Dashboard(str(tmp_path), port=0) as dashboard:
        api = dashboard.url.removesuffix("/dashboard") + "/api"
        (summary,) = json.load(urllib.request.urlopen(f"{api}/studies", timeout=30))[
            "study_summaries"
        ]
        study = summary["study_id"]
        writes = [
            ("PUT", f"{api}/studies/{study}/note", {"version": 1, "body": "hello"}),
            ("DELETE", f"{api}/studies/{study}", {}),
            # (Not the page's rename: optuna-dashboard 0.21 answers any error there with a 500.)
        ]
        for method, url, body in writes:
            request = urllib.request.Request(
                url,
                data=json.dumps(body).encode(),
                method=method,
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 403, (method, url, refused.value.read()[:300])
            assert "only reads" in json.load(refused.value)["reason"]
        # Nothing changed: the study is still there, under its name.
        (after,) = json.load(urllib.request.urlopen(f"{api}/studies", timeout=30))[
            "study_summaries"
        ]
        assert after["study_name"] == "ro"
