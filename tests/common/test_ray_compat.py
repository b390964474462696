"""Every use of Ray's private or undocumented state in `tunefleet.common.ray_compat`, checked
against the installed Ray: each test fails naming the Ray version and what changed.

Real Ray throughout: one small experiment (and one PBT experiment) runs on the session's
Ray, and the checks read what Ray really did."""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from ray import tune
from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
)
from ray.tune.search.basic_variant import BasicVariantGenerator

from tunefleet.common import ray_compat
from tunefleet.common.ray_compat import (
    CHECKED_ON,
    RAY_RESULT_FIELDS,
    SkipFinishedTrials,
    best_value_seen,
    freeze_finished_windows,
    parse_pbt_log,
    pbt_log_path,
    restored_run_config,
    sample_variant,
)

# Checked on the oldest supported Ray too (CI's second venv).
pytestmark = pytest.mark.core

RAY = ray.__version__


def changed(what: str) -> str:
    """The message of a failed check: which Ray, what changed, where to adapt."""
    return (
        f"Ray {RAY} changed {what}; tunefleet.common.ray_compat was checked on Ray "
        f"{', '.join(CHECKED_ON)} and must be adapted (see the entry's comment)."
    )


# What the experiments run ------------------------------------------------------------------

REPORTED = {"score", "step"}


def scores(config: dict[str, Any]) -> None:
    """Reports `score = a * [0.2, 0.9, 0.5][i]` and `step`, three times."""
    for step, value in enumerate([0.2, 0.9, 0.5], start=1):
        tune.report({"score": config["a"] * value, "step": step})


def pbt_trainable(config: dict[str, Any]) -> None:
    """Six iterations of `score = lr * iteration`, checkpointing each (PBT copies them).

    The two trials first wait for each other in the folder `config["meet"]` and then take
    0.1 s an iteration: PBT only exploits while both run, and a trial this short could
    otherwise finish before the other's worker started (seen on a loaded machine)."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads(Path(folder, "state.json").read_text())["iteration"]
    meet = Path(config["meet"])
    if start == 0:
        meet.mkdir(exist_ok=True)
        (meet / f"{os.getpid()}-{config['lr']}").touch()
        deadline = time.monotonic() + 60
        while len(list(meet.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    for iteration in range(start + 1, 7):
        time.sleep(0.1)
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "state.json").write_text(json.dumps({"iteration": iteration}))
            tune.report(
                {"score": config["lr"] * iteration},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


class Watch(tune.Callback):
    """Keeps every result, every trial and its original experiment tag (public hooks)."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.trials: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.setup_called = False
        self.ended_with: list[Any] | None = None

    def setup(self, **info: Any) -> None:
        self.setup_called = True

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.trials[trial.trial_id] = trial
        self.tags.setdefault(trial.trial_id, trial.experiment_tag)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.results.append(dict(result))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.ended_with = list(trials)


class CheckedFifo(SkipFinishedTrials, FIFOScheduler):
    """Our choice, compared at every call with `FIFOScheduler`'s on Ray's real controller."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.mismatches: list[str] = []
        self.controllers: set[str] = set()
        self.allowed: set[str] = set()

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        ours = super().choose_trial_to_run(tune_controller)
        rays = FIFOScheduler.choose_trial_to_run(self, tune_controller)
        self.calls += 1
        self.controllers.add(type(tune_controller).__name__)
        self.allowed |= set(getattr(tune_controller, "_runner_whitelist_attr", ()))
        if ours is not rays:
            self.mismatches.append(f"ours {ours}, Ray's {rays}")
        return ours


@pytest.fixture(scope="module")
def experiment(ray_instance: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three trials of `scores` (one after another: the scheduler chooses often)."""
    storage = tmp_path_factory.mktemp("compat")
    watch, scheduler = Watch(), CheckedFifo()
    tuner = tune.Tuner(
        scores,
        param_space={"a": tune.grid_search([1.0, 2.0, 3.0])},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", scheduler=scheduler, max_concurrent_trials=1
        ),
        run_config=tune.RunConfig(
            name="compat", storage_path=str(storage), callbacks=[watch], verbose=0
        ),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0 and len(grid) == 3
    return {"path": str(storage / "compat"), "watch": watch, "scheduler": scheduler}


def test_the_installed_ray_is_one_the_boundary_was_checked_on() -> None:
    assert ray_compat.ray_version() in CHECKED_ON, (
        f"Ray {RAY} is not among the versions tunefleet.common.ray_compat was checked on "
        f"({', '.join(CHECKED_ON)}): run tests/common/test_ray_compat.py against it and add "
        "it to CHECKED_ON once every check passes."
    )


@pytest.mark.slow
def test_ray_result_fields_cover_every_field_ray_adds(experiment: dict[str, Any]) -> None:
    results = experiment["watch"].results
    assert len(results) == 9
    added = set().union(*(set(r) for r in results)) - REPORTED
    assert added <= RAY_RESULT_FIELDS, changed(
        f"the fields it adds to results: {sorted(added - RAY_RESULT_FIELDS)} are new "
        "(ray.tune.result.AUTO_RESULT_KEYS and the extras in RAY_RESULT_FIELDS)"
    )
    # The ones tunefleet's tables rely on are still there.
    for field in ("training_iteration", "time_total_s", "timestamp", "trial_id", "config"):
        assert field in added, changed(f"its result fields: {field!r} is no longer added")


@pytest.mark.slow
def test_skip_finished_trials_chooses_what_rays_fifo_chooses(experiment: dict[str, Any]) -> None:
    scheduler = experiment["scheduler"]
    assert scheduler.calls >= 3, changed("how often a scheduler's choose_trial_to_run is called")
    assert scheduler.controllers == {"TrialRunnerWrapper"}, changed(
        f"what a scheduler's choose_trial_to_run is passed: {scheduler.controllers}"
    )
    assert "get_trials" in scheduler.allowed, changed(
        f"the calls a scheduler may make on the trial runner: {sorted(scheduler.allowed)}"
    )
    assert not scheduler.mismatches, changed(
        f"FIFOScheduler.choose_trial_to_run's choice: {scheduler.mismatches[:3]}"
    )
    assert scheduler._finished_prefix > 0, changed("the order of TuneController.get_trials()")


@pytest.mark.parametrize("scheduler", [AsyncHyperBandScheduler, MedianStoppingRule])
def test_rays_fifo_based_schedulers_keep_fifos_choice(scheduler: type) -> None:
    # tunefleet's ASHA and median stopping replace the choice they inherit from FIFOScheduler.
    assert scheduler.choose_trial_to_run is FIFOScheduler.choose_trial_to_run, changed(
        f"{scheduler.__name__}: it now chooses trials its own way, not FIFOScheduler's"
    )


@pytest.mark.slow
def test_best_value_seen_is_the_best_reported_value(experiment: dict[str, Any]) -> None:
    analysis = tune.ExperimentAnalysis(experiment["path"])
    best = {t.config["a"]: best_value_seen(t, "score", "max") for t in analysis.trials}
    low = {t.config["a"]: best_value_seen(t, "score", "min") for t in analysis.trials}
    assert best == pytest.approx({1.0: 0.9, 2.0: 1.8, 3.0: 2.7}), changed(
        f"Trial.metric_analysis (the best value per trial it saves): got {best}"
    )
    assert low == pytest.approx({1.0: 0.2, 2.0: 0.4, 3.0: 0.6}), changed(
        f"Trial.metric_analysis: got {low} for min"
    )
    assert best_value_seen(analysis.trials[0], "no_such_metric", "max") is None


@pytest.mark.slow
def test_freeze_finished_windows_keeps_the_values_and_what_ray_saves(
    experiment: dict[str, Any],
) -> None:
    trial = tune.ExperimentAnalysis(experiment["path"]).trials[0]
    metadata = trial.run_metadata
    windows = metadata.metric_n_steps.get("score")
    assert isinstance(windows, dict) and isinstance(windows.get("5"), deque), changed(
        "Trial.run_metadata.metric_n_steps (deques of the last 5 and 10 values per field): "
        f"found {type(windows.get('5') if isinstance(windows, dict) else windows).__name__}"
    )
    values = {n: list(v) for n, v in windows.items()}
    before = metadata.get_json_state()

    assert freeze_finished_windows(trial), changed("Trial.run_metadata or its invalidate_cache")

    assert metadata.metric_n_steps["score"] == values
    after = metadata.get_json_state()
    assert len(after) < len(before), changed("how run metadata is saved: lists save no smaller")
    restored = type(metadata).from_json_state(after)  # what a resumed run reads
    assert restored.metric_n_steps["score"] == values
    assert restored.metric_analysis == metadata.metric_analysis


@pytest.mark.slow
def test_restored_run_config_replaces_the_callbacks_ray_runs(
    experiment: dict[str, Any],
) -> None:
    tuner = tune.Tuner.restore(experiment["path"], trainable=scores)
    run_config = restored_run_config(tuner)
    assert isinstance(run_config, tune.RunConfig), changed(
        f"Tuner._local_tuner.get_run_config(): got {type(run_config).__name__}"
    )
    assert any(type(c).__name__ == "Watch" for c in run_config.callbacks or []), changed(
        "the restored RunConfig: it no longer holds the callbacks pickled with the experiment"
    )
    fresh = Watch()
    run_config.callbacks = [fresh]
    run_config.verbose = 0
    tuner.fit()
    assert fresh.setup_called and fresh.ended_with is not None, changed(
        "Tuner.restore: a callback set on the restored RunConfig is not the one Ray runs"
    )
    assert len(fresh.ended_with) == 3


@pytest.mark.slow
def test_pbt_log_rows_name_trials_by_their_first_tag(ray_instance: None, tmp_path: Path) -> None:
    watch = Watch()
    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=2,
        hyperparam_mutations={"lr": tune.uniform(0.1, 1.0)},
        quantile_fraction=0.5,
    )
    tune.Tuner(
        pbt_trainable,
        param_space={"lr": tune.grid_search([0.1, 1.0]), "meet": str(tmp_path / "meet")},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=pbt, reuse_actors=True),
        run_config=tune.RunConfig(
            name="pbt", storage_path=str(tmp_path), callbacks=[watch], verbose=0
        ),
    ).fit()
    trial = next(iter(watch.trials.values()))
    path = pbt_log_path(trial)
    assert path.is_file(), changed(f"where PBT logs its exploits: no {path}")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    exploits = parse_pbt_log(path.read_text())
    assert lines and len(exploits) == len(lines), changed(
        f"the row layout of PBT's {path.name}: {len(lines) - len(exploits)} of {len(lines)} "
        f"rows unreadable, e.g. {lines[0][:200] if lines else 'no rows'}"
    )
    tags = set(watch.tags.values())
    for exploit in exploits:
        assert {exploit.target_tag, exploit.cloned_tag} <= tags, changed(
            f"how PBT's log names trials: {exploit.target_tag!r}, {exploit.cloned_tag!r} "
            f"are not experiment tags at the trials' start ({sorted(tags)})"
        )
        assert exploit.target_tag != exploit.cloned_tag
        assert 1 <= exploit.cloned_iteration <= 6 and 1 <= exploit.target_iteration <= 6
        old, new = exploit.cloned_config["lr"], exploit.new_config["lr"]
        # Perturbed (x0.8 or x1.2) or resampled from the mutation's range.
        assert (
            new == pytest.approx(old * 0.8)
            or new == pytest.approx(old * 1.2)
            or (0.1 <= new <= 1.0)
        ), changed(f"PBT's log: new config {exploit.new_config} from {exploit.cloned_config}")


def test_rays_worker_logger_is_the_one_that_warns_about_the_sigterm_handler() -> None:
    import ray._private.worker as worker

    assert worker.logger.name == ray_compat.RAY_WORKER_LOGGER, changed(
        f"the logger of ray._private.worker: now {worker.logger.name!r}"
    )
    assert ray_compat.SIGTERM_WARNING in inspect.getsource(worker), changed(
        f"the warning ray.init logs outside the main thread: no {ray_compat.SIGTERM_WARNING!r}"
    )
    ray_compat.quiet_sigterm_warning()
    record = logging.LogRecord(
        ray_compat.RAY_WORKER_LOGGER, logging.WARNING, __file__, 1,
        "SIGTERM handler is not set because current thread is not the main thread.", None, None,
    )  # fmt: skip
    assert not logging.getLogger(ray_compat.RAY_WORKER_LOGGER).filter(record)


def test_sample_variant_draws_from_the_param_space_as_tune_does() -> None:
    space = {
        "a": tune.uniform(0.0, 1.0),
        "b": tune.choice(["x", "y"]),
        "group": {"c": tune.randint(1, 5), "fixed": 7},
    }
    draws = [sample_variant(space, np.random.RandomState(seed)) for seed in range(20)]
    for config in draws:
        assert set(config) == {"a", "b", "group"}, changed(f"generate_variants' output: {config}")
        assert 0.0 <= config["a"] <= 1.0 and config["b"] in ("x", "y")
        assert config["group"]["c"] in range(1, 5) and config["group"]["fixed"] == 7
    assert len({d["a"] for d in draws}) == 20
    again = sample_variant(space, np.random.RandomState(3))
    assert again == draws[3], changed("generate_variants: the same seed draws another config")


def test_variant_cap_moves_the_cap_the_variant_generator_reads(tmp_path: Path) -> None:
    generator = BasicVariantGenerator(max_concurrent=1)
    generator.add_configurations(
        [
            tune.Experiment(
                "cap",
                _noop_trainable,
                config={"x": tune.grid_search([1, 2, 3, 4])},
                storage_path=str(tmp_path),
            )
        ]
    )
    first = generator.next_trial()
    assert first is not None and generator.next_trial() is None, changed(
        "BasicVariantGenerator: max_concurrent does not cap next_trial"
    )
    cap = ray_compat.VariantCap(generator)
    assert cap.max_concurrent == 1
    cap.set_max_concurrency(3)
    more = [generator.next_trial(), generator.next_trial()]
    assert None not in more and generator.next_trial() is None, changed(
        "BasicVariantGenerator: a new max_concurrent is not read by next_trial"
    )
    cap.set_max_concurrency(1)
    generator.on_trial_complete(first.trial_id)
    generator.on_trial_complete(more[0].trial_id)
    assert generator.next_trial() is None  # 1 still running, cap 1
    generator.on_trial_complete(more[1].trial_id)
    assert generator.next_trial() is not None


def _noop_trainable(config: dict[str, Any]) -> None:
    pass


def test_rays_node_bounds_its_gcs_tries_where_gcs_connect_tries_sets_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray._private.node as node
    import ray._private.ray_constants as constants

    source = inspect.getsource(node)
    reads_variable = ray_compat.GCS_CONNECT_TRIES_VARIABLE in source
    reads_constant = "range(ray_constants.NUM_REDIS_GET_RETRIES)" in source or (
        "num_retries = ray_constants.NUM_REDIS_GET_RETRIES" in source
    )
    assert reads_variable or reads_constant, changed(
        "where ray._private.node reads its number of GCS tries (join would retry for 20 s)"
    )
    assert isinstance(constants.NUM_REDIS_GET_RETRIES, int), changed("NUM_REDIS_GET_RETRIES")
    monkeypatch.delenv(ray_compat.GCS_CONNECT_TRIES_VARIABLE, raising=False)
    monkeypatch.delenv("RAY_NUM_REDIS_GET_RETRIES", raising=False)
    before = constants.NUM_REDIS_GET_RETRIES
    with ray_compat.gcs_connect_tries(3):
        assert constants.NUM_REDIS_GET_RETRIES == 3
        assert os.environ[ray_compat.GCS_CONNECT_TRIES_VARIABLE] == "3"
    assert before == constants.NUM_REDIS_GET_RETRIES
    assert ray_compat.GCS_CONNECT_TRIES_VARIABLE not in os.environ
    monkeypatch.setenv(ray_compat.GCS_CONNECT_TRIES_VARIABLE, "40")
    with ray_compat.gcs_connect_tries(3):
        assert before == constants.NUM_REDIS_GET_RETRIES, "the user's own value wins"


@pytest.mark.parametrize("variable", ["RAY_TMPDIR", "TMPDIR"])
def test_auto_address_reads_the_file_ray_start_leaves_where_ray_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    import ray._private.utils as ray_utils

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_TMPDIR", raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.7:6379\n")
    found = ray_compat.auto_address()
    assert found is not None and found[0] == ray_utils.read_ray_address(), changed(
        "the file `ray start` records the cluster in"
    )
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert ray_compat.auto_address() == ("10.0.0.9:6379", "RAY_ADDRESS")


@pytest.mark.slow
def test_restored_search_alg_is_the_search_algorithm_ray_runs(
    ray_instance: None, tmp_path: Path
) -> None:
    from ray.tune.search import ConcurrencyLimiter

    from tunefleet.search.searcher_wrappers import NoSearch

    limiter = ConcurrencyLimiter(NoSearch(), max_concurrent=1)
    tune.Tuner(
        scores,
        param_space={"a": 1.0},
        tune_config=tune.TuneConfig(metric="score", mode="max", search_alg=limiter, num_samples=2),
        run_config=tune.RunConfig(name="limited", storage_path=str(tmp_path), verbose=0),
    ).fit()
    tuner = tune.Tuner.restore(str(tmp_path / "limited"), trainable=scores)
    restored = ray_compat.restored_search_alg(tuner)
    assert isinstance(restored, ConcurrencyLimiter), changed(
        f"Tuner._local_tuner._tune_config.search_alg: got {type(restored).__name__}"
    )
    # The cap set on it is the one Ray's restored run uses (after Ray restores its state).
    restored.set_max_concurrency(2)
    tuner.fit()
    assert restored.max_concurrent in (1, 2)


@pytest.mark.slow
@pytest.mark.cluster
def test_the_autoscaler_config_is_read_where_ray_keeps_it(tmp_path: Path) -> None:
    """Autoscaler v2's limits in the GCS (the method Ray Data reads), and v1's in the file
    its monitor process was started with: read from a real head with Ray's autoscaler."""
    import subprocess
    import sys

    from ray._private.state import GlobalState

    from benchmarks.fake_autoscaler import start_autoscaling_cluster

    assert callable(getattr(GlobalState, "get_cluster_config", None)), changed(
        "ray._private.state.GlobalState.get_cluster_config (autoscaler v2's limits)"
    )
    probe = (
        "import json, sys, ray\n"
        "from tunefleet.common.ray_compat import autoscaler_config\n"
        "ray.init(address=sys.argv[1], log_to_driver=False)\n"
        "print(json.dumps(autoscaler_config(ray.get_runtime_context().gcs_address)))\n"
    )
    with start_autoscaling_cluster(max_workers=2, worker_cpus=2) as cluster:
        out = subprocess.run(
            [sys.executable, "-c", probe, cluster.gcs_address],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "max_workers": 2,
        "node_types": {"cpu_node": {"resources": {"CPU": 2.0}, "max_workers": 2}},
    }, changed("the v1 autoscaler's monitor command line (--gcs-address, --autoscaling-config)")
    # An embedded Ray has no autoscaler.
    assert ray_compat.autoscaler_config("127.0.0.1:1") is None


def _storage_of_trial(config: dict[str, Any]) -> None:
    filesystem, path = ray_compat.trial_storage()
    tune.report({"path": path, "filesystem": type(filesystem).__name__})


@pytest.mark.slow
def test_trial_storage_is_the_trials_folder_on_the_experiments_storage(
    ray_instance: None, tmp_path: Path
) -> None:
    grid = tune.Tuner(
        _storage_of_trial,
        run_config=tune.RunConfig(name="where", storage_path=str(tmp_path), verbose=0),
    ).fit()
    result = grid[0]
    assert result.error is None, result.error
    assert result.metrics["filesystem"] == "LocalFileSystem", changed(
        "tune.get_context().get_storage().storage_filesystem"
    )
    assert Path(result.metrics["path"]) == Path(result.path), changed(
        f"tune.get_context().get_storage().trial_fs_path: {result.metrics['path']}"
    )


def test_train_v2_is_what_ray_runs_and_its_switch_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ray_compat.train_v2_problem() is None, changed("Ray Train V2 is not the default")
    monkeypatch.setenv("RAY_TRAIN_V2_ENABLED", "0")
    assert ray_compat.train_v2_problem() == (
        "resources.workers: data-parallel trials need Ray Train V2, which "
        "RAY_TRAIN_V2_ENABLED=0 turns off; unset it."
    ), changed("ray.train.is_v2_enabled() no longer reads RAY_TRAIN_V2_ENABLED")
