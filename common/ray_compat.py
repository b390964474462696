"""The one module that touches Ray's private or undocumented state.

Everywhere else tunefleet uses Ray's public API only (`tests/test_architecture.py` checks
that). Each entry below says what it relies on, why no public API serves, and the Ray
versions it was checked on; `tests/common/test_ray_compat.py` checks every entry against
the installed Ray and fails naming the Ray version and what changed. Differences between
supported Ray versions belong here too.

Ray is imported at module level: every module that imports this one adapts Ray anyway.

Supported Ray versions: 2.55 to 2.60 (`SUPPORTED`; pyproject: `ray[tune]>=2.55,<2.61`). CI
runs the whole suite on the newest and the core tests (`pytest -m core`) on the oldest. Ray
requires the driver and the cluster to run the same minor version (`version_problem`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import Any

import ray
import ray._private.ray_constants as constants
import ray.train
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.search.variant_generator import generate_variants

__all__ = [
    "CHECKED_ON",
    "GCS_CONNECT_TRIES_VARIABLE",
    "PBT_LOG_FILE",
    "RAY_RESULT_FIELDS",
    "RAY_WORKER_LOGGER",
    "SIGTERM_WARNING",
    "SUPPORTED",
    "TRACKING_LIBRARIES",
    "PbtExploit",
    "SkipFinishedTrials",
    "VariantCap",
    "auto_address",
    "autoscaler_config",
    "best_value_seen",
    "cluster_ray_version",
    "freeze_finished_windows",
    "gcs_connect_tries",
    "installed_ray_version",
    "minor",
    "parse_pbt_log",
    "pbt_log_path",
    "quiet_sigterm_warning",
    "ray_version",
    "restored_run_config",
    "restored_search_alg",
    "sample_variant",
    "train_v2_problem",
    "trial_storage",
    "unused_tracking_hidden",
    "version_problem",
    "with_trial_mixins",
]

#: Ray versions (major.minor) every entry below was checked on.
CHECKED_ON = ("2.55", "2.60")

# The fields Ray adds to every result ------------------------------------------------------
# Why private: `ray.tune.result` is not in Ray's API docs, and no public API lists the fields
# Ray adds to a trial's reported metrics. Checked on: 2.60.

#: Result fields Ray fills in itself (timings, host, iteration counts, config, bookkeeping).
RAY_RESULT_FIELDS: frozenset[str] = frozenset(AUTO_RESULT_KEYS) | {
    "done",
    "trial_id",
    "experiment_tag",
    "should_checkpoint",
    "__duplicate__",
}


# Replacing the callbacks of a restored experiment ------------------------------------------
# Why private: `Tuner.restore` takes no `RunConfig`, and Ray offers no public way to replace
# the callbacks it pickled with the experiment; the restored `RunConfig` is reachable only
# through `Tuner._local_tuner`. Checked on: 2.60.


def restored_run_config(tuner: Any) -> Any | None:
    """The `RunConfig` a `Tuner.restore` will run with, to change its callbacks and verbosity.

    Args:
        tuner: A `ray.tune.Tuner` from `Tuner.restore(...)`.

    Returns:
        The `tune.RunConfig` the restored run uses (changes to it take effect at `fit()`),
        or None when the driver runs remotely (Ray Client), where it cannot be reached.
    """
    local = tuner._local_tuner
    return None if local is None else local.get_run_config()


def restored_search_alg(tuner: Any) -> Any | None:
    """The search algorithm a `Tuner.restore` will run with (the restored searcher chain,
    Ray's ConcurrencyLimiter outermost where tunefleet built one), so that the resumed run's
    trial slots can follow the cluster again. Same private path as `restored_run_config`.

    Returns:
        The `TuneConfig.search_alg` Ray restored, or None when it cannot be reached.
    """
    local = tuner._local_tuner
    config = None if local is None else getattr(local, "_tune_config", None)
    return None if config is None else config.search_alg


# A finished trial's last-n windows ---------------------------------------------------------
# Why private: Ray keeps, per trial, deques of the last 5 and 10 values of every numeric
# result field in `Trial.run_metadata.metric_n_steps` (run metadata is a private class) and
# caches their JSON form; no public API reaches or shrinks them. Checked on: 2.60.


def freeze_finished_windows(trial: Any) -> bool:
    """Turns a terminated trial's last-n value windows from deques into lists (same values).

    Returns:
        Whether the trial held the windows this was written for (False: left alone).
    """
    metadata = getattr(trial, "run_metadata", None)
    windows = getattr(metadata, "metric_n_steps", None)
    invalidate = getattr(metadata, "invalidate_cache", None)
    if not isinstance(windows, dict) or not callable(invalidate):
        return False
    for per_metric in windows.values():
        for n, values in per_metric.items():
            if isinstance(values, deque):
                per_metric[n] = list(values)
    invalidate()
    return True


# A trial's best value, from Ray's saved state ----------------------------------------------
# Why private: without the trial's `result.json`, the only record of its best value is Ray's
# running metric analysis (`Trial.metric_analysis`, an undocumented property over the private
# run metadata, saved with the experiment state). Checked on: 2.60.


def best_value_seen(trial: Any, metric: str, mode: str) -> float | None:
    """The best value of `metric` over the trial's history, as Ray's metric analysis kept it.

    Args:
        trial: A `Trial` (e.g. from `ExperimentAnalysis(path).trials`).
        metric: The metric.
        mode: `min` or `max`.

    Returns:
        The value, or None when Ray kept none or it is not a finite number.
    """
    analysis = getattr(trial, "metric_analysis", None) or {}
    value = (analysis.get(metric) or {}).get(mode)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# Population-based training's exploit log ---------------------------------------------------
# Why private: `PopulationBasedTraining` exposes its exploits only through the file it
# appends to in the experiment's local folder (`Trial.local_experiment_path`, undocumented);
# the row layout is stated in its docstring, but no API returns it. Checked on: 2.60.

#: The file Ray's PBT appends one JSON row per exploit to.
PBT_LOG_FILE = "pbt_global.txt"


@dataclass(frozen=True)
class PbtExploit:
    """One row of Ray's PBT log: a trial took over another's checkpoint and a new config.

    Attributes:
        target_tag: The exploiting trial's original experiment tag.
        cloned_tag: The copied trial's original experiment tag.
        target_iteration: The exploiting trial's iteration at the exploit.
        cloned_iteration: The copied trial's iteration (of the checkpoint taken).
        cloned_config: The copied trial's config.
        new_config: The exploiting trial's new config (the copy, perturbed).
    """

    target_tag: str
    cloned_tag: str
    target_iteration: int
    cloned_iteration: int
    cloned_config: Mapping[str, Any]
    new_config: Mapping[str, Any]


def pbt_log_path(trial: Any) -> Path:
    """Where Ray's PBT writes its exploit log for the experiment `trial` belongs to."""
    return Path(trial.local_experiment_path, PBT_LOG_FILE)


def parse_pbt_log(text: str) -> list[PbtExploit]:
    """The exploits in the text of Ray's PBT log (a line cut short by a crash is skipped)."""
    rows = []
    for line in text.splitlines():
        try:
            target, cloned, target_iter, cloned_iter, old_config, new_config = json.loads(line)
            rows.append(
                PbtExploit(
                    target_tag=str(target),
                    cloned_tag=str(cloned),
                    target_iteration=int(target_iter),
                    cloned_iteration=int(cloned_iter),
                    cloned_config=old_config,
                    new_config=new_config,
                )
            )
        except (ValueError, TypeError):
            continue
    return rows


# Ray's warning when it starts outside the main thread --------------------------------------
# Why private: `ray.init` from another thread logs "SIGTERM handler is not set ..." through
# the logger of its private module `ray._private.worker`; there is no public switch for it.
# Checked on: 2.60.

#: The logger of Ray's private worker module.
RAY_WORKER_LOGGER = "ray._private.worker"
#: The start of the warning `ray.init` logs when called outside the main thread.
SIGTERM_WARNING = "SIGTERM handler is not set"


class _NotMainThreadWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SIGTERM_WARNING)


def quiet_sigterm_warning() -> None:
    """Drops Ray's "SIGTERM handler is not set" warning (tunefleet starts Ray in a thread
    on purpose and sets the handler itself)."""
    log = logging.getLogger(RAY_WORKER_LOGGER)
    if not any(isinstance(f, _NotMainThreadWarning) for f in log.filters):
        log.addFilter(_NotMainThreadWarning())


# Choosing the next trial without rescanning finished ones ----------------------------------
# Why private: a scheduler's `choose_trial_to_run(tune_controller)` is Ray's DeveloperAPI,
# but what it is passed (`TrialRunnerWrapper` around `TuneController`, `ray.tune.execution`)
# is not public; this calls its `get_trials()` (every trial, in creation order; one of the
# calls the wrapper lets schedulers make) and must choose exactly what
# `FIFOScheduler.choose_trial_to_run` would. Checked on: 2.60.


class SkipFinishedTrials:
    """Mixin for a FIFO-based scheduler: `FIFOScheduler.choose_trial_to_run`'s choice (the
    first PENDING trial in creation order, else the first PAUSED one), starting after the
    leading run of TERMINATED trials, which never run again in the same run.

    Ray's own method walks the whole trial list, finished trials first, on every step of the
    controller; put this first among the bases (`class X(SkipFinishedTrials, ASHA)`).
    """

    _finished_prefix = 0  # trials [0, _finished_prefix) were TERMINATED when last looked at

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        trials = tune_controller.get_trials()
        start = self._finished_prefix if self._finished_prefix <= len(trials) else 0
        while start < len(trials) and trials[start].status == Trial.TERMINATED:
            start += 1
        self._finished_prefix = start
        for wanted in (Trial.PENDING, Trial.PAUSED):
            for trial in islice(trials, start, None):
                if trial.status == wanted:
                    return trial
        return None


# Drawing a config as Tune's random search does ---------------------------------------------
# Why private: `ray.tune.search.variant_generator.generate_variants` is a DeveloperAPI left
# out of Ray's API docs; it is the generator Tune's random and grid search use, and the only
# way to draw a config from a param space without running trials. Checked on: 2.60.


def sample_variant(param_space: Mapping[str, Any], random_state: Any) -> dict[str, Any]:
    """One config drawn from a Ray Tune param space, as Tune's random search draws it.

    Args:
        param_space: A Ray Tune param space (nested dicts of `tune.uniform(...)` etc.).
        random_state: A `numpy.random.RandomState` (or seed) to draw with.
    """
    _, config = next(iter(generate_variants(dict(param_space), random_state=random_state)))
    return dict(config)


# Moving the cap of Tune's random and grid search ---------------------------------------------
# Why private: `BasicVariantGenerator(max_concurrent=...)` is public, but Ray offers no way to
# change it later (a `ConcurrencyLimiter`'s `set_max_concurrency` takes only a `Searcher`);
# the generator reads its `max_concurrent` attribute on every `next_trial`. Needed for
# data-parallel trials only: they reserve nothing themselves (their gangs do, through Ray
# Train), so Tune's resources do not hold queued trials back. Checked on: 2.55, 2.60.


class VariantCap:
    """The cap of Ray's `BasicVariantGenerator`, moved as a `ConcurrencyLimiter`'s is."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    @property
    def max_concurrent(self) -> int:
        """Trials the generator lets run at once (0: no cap)."""
        return int(self.generator.max_concurrent)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Caps the trials the generator lets run at once from its next trial on."""
        self.generator.max_concurrent = max_concurrent
        return True


def ray_version() -> str:
    """The installed Ray's major.minor version, as `CHECKED_ON` lists them."""
    return ".".join(ray.__version__.split(".")[:2])


# The supported Ray versions, and a cluster's --------------------------------------------

#: The oldest and the newest Ray minor version tunefleet supports, both included.
SUPPORTED = ((2, 55), (2, 60))


def installed_ray_version() -> str:
    """The installed Ray's full version (`2.60.0`), as pip names it."""
    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:  # a Ray run from a source tree
        return str(ray.__version__)


def minor(version: str) -> tuple[int, int] | None:
    """`(2, 60)` for `2.60.1` (or `2.60.0rc1`); None for text that is no version."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def version_problem(client: str, cluster: str | None) -> str | None:
    """One line saying what to install when this machine's Ray (`client`) and the cluster's
    cannot work together, or None when they can (or the cluster's is unknown).

    Ray needs the same minor version on the driver's machine and on the cluster; its own
    error comes late (after the upload, from the job's driver) and is hard to read.
    """
    if cluster is None or minor(client) == minor(cluster):
        return None
    (low_major, low), (high_major, high) = SUPPORTED
    cluster_minor = minor(cluster)
    if cluster_minor is not None and SUPPORTED[0] <= cluster_minor <= SUPPORTED[1]:
        return (
            f"the cluster runs Ray {cluster} and this machine Ray {client}; Ray needs the same "
            f"minor version on both: pip install 'ray[default,tune]=={cluster}' here."
        )
    return (
        f"the cluster runs Ray {cluster}, which tunefleet does not support (Ray "
        f"{low_major}.{low} to {high_major}.{high}); use a cluster image of the Ray this "
        f"machine has, rayproject/ray:{client}-py311-cpu, or install a supported Ray on both."
    )


# A cluster's Ray version, from Ray's job client ------------------------------------------
# Why private: `JobSubmissionClient` reads the cluster's Ray version from the job server's
# /api/version when it connects and keeps it in `_server_ray_version`; no public accessor
# returns it. Checked on: 2.55, 2.60.


def cluster_ray_version(client: Any) -> str | None:
    """The Ray version a cluster's job server reported to Ray's `JobSubmissionClient` when
    it connected, or None if the client does not keep it."""
    version = getattr(client, "_server_ray_version", None)
    return str(version) if version else None


# Ray Tune's callback telemetry ------------------------------------------------------------
# `Tuner.fit` records which callbacks a run uses (`ray.air._internal.usage.tag_callbacks`)
# whenever any are given, as tunefleet's recorder and progress printer are, and for that
# imports Ray's MLflow and Weights & Biases integrations, which import `mlflow` and `wandb`
# when installed: `mlflow` alone took 1.8 s and 70 MiB of the driver, in a run that logs
# nothing to MLflow. No public switch turns this off. Checked on: Ray 2.60.

#: Libraries Ray Tune's callback telemetry imports when installed, and the modules it imports
#: them from (Ray's integrations, which keep what they found).
TRACKING_LIBRARIES = {
    "mlflow": ("ray.air.integrations.mlflow", "ray.air._internal.mlflow"),
    "wandb": ("ray.air.integrations.wandb",),
}


@contextmanager
def unused_tracking_hidden(used: Iterable[str] = ()) -> Iterator[None]:
    """Makes `import mlflow` and `import wandb` fail for the block, except for the libraries in
    `used` and those already imported (wrap `Tuner.fit` in it).

    Ray's integration modules imported inside the block (with the library hidden) are
    forgotten at its end, so a later import of them finds the library again.

    Args:
        used: Libraries the run logs to (`mlflow` when the spec's `tracking:` asks for it).
    """
    hidden = [
        name
        for name in TRACKING_LIBRARIES
        if name not in used and name not in sys.modules
        and not any(m in sys.modules for m in TRACKING_LIBRARIES[name])
    ]  # fmt: skip
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not here"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
            for module in TRACKING_LIBRARIES[name]:
                sys.modules.pop(module, None)


# Joining a cluster ---------------------------------------------------------------------------

#: Read by `ray._private.node` (Ray 2.60) on each join as its number of tries to reach the GCS
#: (about a second apart; Ray's default 20). Ray 2.55 reads `ray_constants.NUM_REDIS_GET_RETRIES`
#: instead (set from `RAY_NUM_REDIS_GET_RETRIES` when Ray is imported, too late for a join):
#: `gcs_connect_tries` sets both. Private: no `ray.init` argument bounds the wait, and a
#: refused token otherwise keeps `ray.init` retrying for 20 s. Checked on: Ray 2.55, 2.60.
GCS_CONNECT_TRIES_VARIABLE = "RAY_gcs_server_port_wait_time_s"


@contextmanager
def gcs_connect_tries(tries: int) -> Iterator[None]:
    """Ray's tries to reach the GCS cut to `tries` for the block (see
    `GCS_CONNECT_TRIES_VARIABLE`); a value the user set in the environment wins."""
    if GCS_CONNECT_TRIES_VARIABLE in os.environ or "RAY_NUM_REDIS_GET_RETRIES" in os.environ:
        yield
        return
    before = constants.NUM_REDIS_GET_RETRIES
    os.environ[GCS_CONNECT_TRIES_VARIABLE] = str(tries)
    constants.NUM_REDIS_GET_RETRIES = tries
    try:
        yield
    finally:
        os.environ.pop(GCS_CONNECT_TRIES_VARIABLE, None)
        constants.NUM_REDIS_GET_RETRIES = before


def auto_address() -> tuple[str, str] | None:
    """What `auto` resolves to, as Ray resolves it, and where it came from; None when Ray
    would look for a local cluster itself.

    Private: `ray._private.services.get_ray_address_from_environment` reads `RAY_ADDRESS`,
    then the file the last `ray start` wrote (`<RAY_TMPDIR or TMPDIR or /tmp>/ray/
    ray_current_cluster`); no public API says which cluster `auto` means, and the one line
    `tunefleet run --address auto` prints on a failed join names it. Checked on: Ray 2.55, 2.60.
    """
    env = os.environ.get("RAY_ADDRESS", "")
    if env == "local":
        return None
    if env and env != "auto":
        return env, "RAY_ADDRESS"
    if "RAY_TMPDIR" in os.environ:
        tmp = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        tmp = os.environ["TMPDIR"]
    else:
        tmp = "/tmp"
    record = Path(tmp, "ray", "ray_current_cluster")
    try:
        recorded = record.read_text().strip()
    except OSError:
        return None
    return (recorded, f"{record}, left by `ray start`") if recorded else None


# How far an autoscaling cluster may grow ---------------------------------------------------
# Why private: Ray has no public API that tells a driver its cluster's autoscaling limits
# (node types, their resources and `max_workers`). Autoscaler v2 stores them in the GCS
# (`ray._private.state.state.get_cluster_config()`, which Ray Data reads for the same
# purpose); the v1 autoscaler (Ray 2.55-2.60's default for `ray up`) keeps them in the
# config file its monitor process was started with, which a driver on the head node can
# read. Checked on: 2.55, 2.60.

_MONITOR_SCRIPT = "autoscaler/_private/monitor.py"


def autoscaler_config(gcs_address: str) -> dict[str, Any] | None:
    """The autoscaling limits of the cluster at `gcs_address`, or None without an
    autoscaler (or where they cannot be read: a driver off the head node under v1).

    Returns:
        `{"max_workers": int | None, "node_types": {name: {"resources": {"CPU": .., "GPU":
        ..}, "max_workers": int}}}`; the head's type is left out.
    """
    from ray._private.state import state  # Ray's GCS state: only where a run asks

    try:
        config = state.get_cluster_config()
    except Exception:  # an older GCS without the key, or no connection: try the file
        config = None
    if config is not None and config.node_group_configs:
        groups = [g for g in config.node_group_configs if g.max_count != 0]
        return {
            "max_workers": None,
            "node_types": {
                g.name: {
                    "resources": {k: float(v) for k, v in g.resources.items()},
                    "max_workers": g.max_count if g.max_count >= 0 else None,
                }
                for g in groups
            },
        }
    path = _monitor_config_path(gcs_address)
    if path is None:
        return None
    import yaml  # only on a cluster with an autoscaler

    try:
        raw = yaml.safe_load(Path(path).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return None
    head = raw.get("head_node_type")
    types = raw.get("available_node_types") or {}
    return {
        "max_workers": raw.get("max_workers"),
        "node_types": {
            name: {
                "resources": {k: float(v) for k, v in (t.get("resources") or {}).items()},
                "max_workers": t.get("max_workers"),
            }
            for name, t in types.items()
            if name != head
        },
    }


def _monitor_config_path(gcs_address: str) -> str | None:
    """The `--autoscaling-config` of the v1 autoscaler's monitor process serving
    `gcs_address`, found among this machine's processes (Linux `/proc`)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args if a]
        if not any(w.endswith(_MONITOR_SCRIPT) for w in words):
            continue
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
        # By port: the monitor may name the head by another of its addresses.
        port = flags.get("gcs-address", "").rpartition(":")[2]
        if port == gcs_address.rpartition(":")[2] and flags.get("autoscaling-config"):
            return flags["autoscaling-config"]
    return None


# Where a trial's data-parallel workers write their checkpoints ------------------------------
# Why developer API: Ray Train needs a storage path every worker reaches, and the trial's own
# folder on the experiment's storage (a shared disk or an object store) is one; Tune shows
# it only through `tune.get_context().get_storage()`, a developer API returning Train's
# `StorageContext` (`storage_filesystem`, `trial_fs_path`). Checked on: 2.55, 2.60.


def trial_storage() -> tuple[Any, str]:
    """The running Tune trial's folder on the experiment's storage.

    Returns:
        `(pyarrow filesystem, path on it)`: the experiment's storage and the trial's folder
        there, which every node of the cluster reaches.
    """
    storage = tune.get_context().get_storage()
    return storage.storage_filesystem, storage.trial_fs_path


# Ray Train inside a Tune trial ---------------------------------------------------------------
# Ray 2.55 to 2.60 run Ray Train V2 by default (`RAY_TRAIN_V2_ENABLED`), where a trainer is
# started from inside a Tune function trial and `ray.train.UserCallback` sees every report;
# with V2 turned off (`RAY_TRAIN_V2_ENABLED=0`) neither holds, so tunefleet refuses. The
# switch is public (`ray.train.is_v2_enabled`); kept here as the one difference between the
# Train versions tunefleet meets. Checked on: 2.55, 2.60.


def train_v2_problem() -> str | None:
    """Why data-parallel trials cannot run with the installed Ray Train, or None."""
    if ray.train.is_v2_enabled():
        return None
    return (
        "resources.workers: data-parallel trials need Ray Train V2, which "
        "RAY_TRAIN_V2_ENABLED=0 turns off; unset it."
    )


# Cleaning up when Tune stops a function trial -----------------------------------------------
# Why undocumented: Tune builds a trial's class from a function (`wrap_function`, a developer
# API) and puts the classes in the function's `__mixins__` attribute in front of its own
# (Ray's integrations use it); no public hook runs when Tune stops a function trial early
# (ASHA), and a data-parallel trial must then release its gang's placement group before
# its process ends (Ray Train's own cleaner needs Ray's state API, which a Ray without its
# dashboard lacks). Checked on: 2.55, 2.60.


def with_trial_mixins(function: Any, *mixins: type) -> Any:
    """`function` as a Tune function trainable whose trial class also inherits `mixins`
    (first in the method order: their `cleanup` runs when Tune stops the trial, and must
    call `super().cleanup()`)."""
    function.__mixins__ = (*mixins, *getattr(function, "__mixins__", ()))
    return function
