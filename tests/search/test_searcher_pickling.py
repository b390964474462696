"""Contract: every search algorithm tunefleet builds from a spec survives Ray's pickling.

Ray pickles the whole search algorithm and scheduler when it builds a `Tuner`
(`ray.cloudpickle`), and saves the searcher with its experiment state (`save_to_dir` /
`restore_from_dir`, which call each searcher's `save` / `restore`). A library release that
makes a searcher unpicklable (Optuna 5.1's NSGA-II took a `threading.Lock`) breaks every
run of it before the first trial. These checks take seconds and start no Ray, so the
next such release fails here, naming the searcher and the library versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from ray import cloudpickle
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator
from ray.tune.search.basic_variant import BasicVariantGenerator

from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import build_search
from tunefleet.search.combinations import SearchConfigError, check_objectives, check_search
from tunefleet.search.settings import OPTUNA_SAMPLERS

SPACES: dict[str, dict[str, Any]] = {
    "flat": {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "width": {"randint": [8, 64]},
        "x": {"uniform": [-1.0, 1.0]},
        # A choice of lists: the model-based searchers get indices (typed_choices).
        "layers": {"choice": [[8, 8], [16]]},
        "epochs": 3,
    },
    "numeric": {"width": {"randint": [8, 64]}, "x": {"uniform": [-1.0, 1.0]}},
    "grid": {"lr": {"grid": [0.1, 0.01]}, "width": {"grid": [8, 16]}, "epochs": 3},
    "conditional": {
        "opt": {
            "choice": {
                "sgd": {"lr": {"loguniform": [1e-4, 1e-1]}},
                "adam": {"lr": {"loguniform": [1e-4, 1e-1]}, "beta": {"uniform": [0.8, 0.99]}},
            }
        },
        "x": {"uniform": [-1.0, 1.0]},
    },
    "constants": {"lr": 0.1, "epochs": 3},
}
SEARCHES: dict[str, dict[str, Any]] = {
    "random": {"algorithm": "random"},
    "grid": {"algorithm": "grid"},
    "hyperopt": {"algorithm": "hyperopt", "n_initial_points": 2},
    **{
        f"optuna-{name}": {"algorithm": "optuna", "sampler": name}
        for name in OPTUNA_SAMPLERS
        if name != "nsga2"
    },
    "optuna-nsga2": {"algorithm": "optuna", "sampler": {"name": "nsga2", "population_size": 2}},
    "pbt": {"algorithm": "pbt"},
    "pb2": {"algorithm": "pb2"},
}
OBJECTIVES = {"single": ("loss", "min"), "multi": (["loss", "size"], ["min", "max"])}


@dataclass(frozen=True)
class Case:
    """One searcher as a spec can ask for it."""

    search: str
    space: str
    objective: str
    repeat: int

    @property
    def id(self) -> str:
        repeat = f"-repeat{self.repeat}" if self.repeat > 1 else ""
        return f"{self.search}-{self.space}-{self.objective}{repeat}"

    def settings(self) -> SearchSettings:
        return SearchSettings(**SEARCHES[self.search], repeat=self.repeat, seed=0)

    def allowed(self) -> bool:
        """Whether tunefleet's own rules accept the combination (what a spec can build)."""
        metric, mode = OBJECTIVES[self.objective]
        try:
            settings = self.settings()
            check_search(settings, FifoSettings(), parse_space(SPACES[self.space]), stop={})
            check_objectives(settings, FifoSettings(), metric, mode)
        except (SearchConfigError, ValueError):
            return False
        return True


CASES = [
    case
    for search in SEARCHES
    for space in SPACES
    for objective in OBJECTIVES
    for repeat in (1, 2)
    if (case := Case(search, space, objective, repeat)).allowed()
]


def _versions() -> str:
    names = ("ray", "optuna", "hyperopt", "scikit-learn", "cmaes")
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def _build(case: Case) -> Any:
    metric, mode = OBJECTIVES[case.objective]
    return build_search(
        case.settings(),
        FifoSettings(),
        space=parse_space(SPACES[case.space]),
        stop={},
        metric=metric,
        mode=mode,
        parallel=2,
    )


def _as_ray_runs_it(search: Any, case: Case) -> Any:
    """The search algorithm as `tune.Tuner` wraps it: a `Searcher` under Ray's
    ConcurrencyLimiter and SearchGenerator, told the metric and the space."""
    alg = search.search_alg
    if not isinstance(alg, Searcher):
        return alg
    metric, mode = OBJECTIVES[case.objective]
    limited = ConcurrencyLimiter(alg, max_concurrent=2)
    if case.objective == "single":
        limited.set_search_properties(metric, mode, search.param_space)
    else:
        limited.set_search_properties(None, None, search.param_space)
    return SearchGenerator(limited)


def _innermost(alg: Any) -> Any:
    while hasattr(alg, "searcher"):
        alg = alg.searcher
    return alg


def _drive(alg: Any, prefix: str, trials: int) -> list[dict[str, Any]]:
    """Suggests and completes `trials` trials on a searcher (so its model has state)."""
    searcher = alg.searcher if isinstance(alg, SearchGenerator) else alg
    configs = []
    for i in range(trials):
        trial_id = f"{prefix}-{i}"
        config = searcher.suggest(trial_id)
        assert config is not None, f"{prefix}: no suggestion for trial {i}"
        configs.append(config)
        x = float(_find(config, "x", 0.5))
        searcher.on_trial_complete(trial_id, {"loss": x * x, "size": i, **config})
    return configs


def _find(config: Any, key: str, default: Any) -> Any:
    if isinstance(config, dict):
        if key in config and not isinstance(config[key], dict):
            return config[key]
        for value in config.values():
            found = _find(value, key, None)
            if found is not None:
                return found
    return default


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_search_round_trips_through_ray_cloudpickle(case: Case) -> None:
    search = _build(case)
    try:
        copy = cloudpickle.loads(cloudpickle.dumps((search.search_alg, search.scheduler)))
    except Exception as exc:
        pytest.fail(f"{case.id}: ray.cloudpickle failed: {exc!r} ({_versions()})")
    assert type(copy[0]) is type(search.search_alg)
    assert type(_innermost(copy[0])) is type(_innermost(search.search_alg))
    assert type(copy[1]) is type(search.scheduler)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_used_search_saves_and_restores_as_ray_does(case: Case, tmp_path: Path) -> None:
    """Ray's experiment-state save of a search that has suggested trials, restored into a
    new one (as `tunefleet resume` does): a searcher knows the finished trials and goes on
    suggesting; the variant generator (random, grid, PBT, PB2) keeps its counts."""
    alg = _as_ray_runs_it(_build(case), case)
    searcher = isinstance(alg, SearchGenerator)
    if searcher:
        _drive(alg, "before", trials=4)
    try:
        alg.save_to_dir(str(tmp_path), session_str="contract")
        restored = _as_ray_runs_it(_build(case), case)
        restored.restore_from_dir(str(tmp_path))
        # Pickled again after use, as Ray's Tuner does on `resume` (the restored state).
        cloudpickle.loads(cloudpickle.dumps(restored))
    except Exception as exc:
        pytest.fail(f"{case.id}: Ray's search save/restore failed: {exc!r} ({_versions()})")
    if not searcher:
        assert isinstance(alg, BasicVariantGenerator)
        # Everything but the random generator object, which compares by identity.
        state = {k: v for k, v in alg.get_state().items() if k != "_random_state"}
        assert {k: v for k, v in restored.get_state().items() if k != "_random_state"} == state
        return
    inner, before = _innermost(restored), _innermost(alg)
    assert type(inner) is type(before)
    if hasattr(before, "_ot_study"):  # Optuna: the finished trials came back
        done = [t.number for t in before._ot_study.trials if t.state.is_finished()]
        assert [t.number for t in inner._ot_study.trials if t.state.is_finished()] == done
        assert len(done) == 4 // case.repeat  # Ray's Repeater completes a config per copies
    _drive(restored, "after", trials=2)


def test_the_cases_cover_every_searcher_sampler_space_and_objective() -> None:
    """The contract above is no check if the filter left a searcher out."""
    searched = {c.search for c in CASES}
    assert searched == set(SEARCHES)
    assert {c.search for c in CASES if c.space == "conditional"} >= {
        "random",
        "hyperopt",
        *(f"optuna-{n}" for n in ("tpe", "nsga2", "random")),
    }
    assert {c.search for c in CASES if c.objective == "multi"} == {"optuna-tpe", "optuna-nsga2"}
    assert any(c.repeat > 1 for c in CASES if c.search == "hyperopt")
