"""Strategies that break a valid spec: wrong types, missing and unknown keys, bad ranges,
empty choices, and searchers, schedulers and spaces that do not go together."""

from __future__ import annotations

import copy
import math
import re
import string
from typing import Any

from hypothesis import strategies as st

from tests.experiments.fuzz.support import (
    SCHEDULED,
    VALID,
    Case,
    Keys,
    _not_one_of,
    _with,
    non_bool,
    non_finite,
    non_int,
    non_mapping,
    non_number,
    non_text,
    scalars,
    words,
)
from tunefleet.experiments.spec.experiment import (
    NAME_PATTERN,
    ExperimentSpec,
    FailureSettings,
    ResourcesSettings,
    ResultsSettings,
)
from tunefleet.search import (
    OPTUNA_SAMPLERS,
    SCHEDULERS,
    SEARCHERS,
    AshaSettings,
    PBTSettings,
    SearchSettings,
)
from tunefleet.search.space import DISTRIBUTIONS

# Family: a key holding a value of the wrong type or out of its range.
WRONG_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(
        non_text,
        st.text(max_size=120).filter(lambda s: len(s) > 100 or not re.fullmatch(NAME_PATTERN, s)),
    ),
    "trainable": st.one_of(non_text, st.none()),
    "metric": st.one_of(non_text, st.none(), st.just("")),
    "mode": st.one_of(_not_one_of(("min", "max")), st.none()),
    "description": non_text,
    "space": non_mapping,
    "search": st.one_of(non_mapping, st.none()),
    "scheduler": st.one_of(non_mapping, st.none()),
    "resources": st.one_of(non_mapping, st.none()),
    "failure": st.one_of(non_mapping, st.none()),
    "results": st.one_of(non_mapping, st.none()),
    "stop": st.one_of(non_mapping, st.none()),
    "search.algorithm": _not_one_of(SEARCHERS),
    "search.num_samples": st.one_of(non_int, st.integers(max_value=0), non_finite),
    "search.seed": non_int,
    "search.max_concurrent": st.one_of(non_int, st.integers(max_value=0)),
    "search.repeat": st.one_of(non_int, st.integers(max_value=0)),
    "search.time_budget_s": st.one_of(non_number, st.floats(max_value=0)),
    "search.points_to_evaluate": st.one_of(
        words, st.integers(), st.lists(st.integers(), min_size=1, max_size=3)
    ),
    "search.sampler": st.one_of(_not_one_of(OPTUNA_SAMPLERS), st.just({"seed": 1})),
    "resources.cpu": st.one_of(non_number, st.floats(max_value=0), non_finite),
    "resources.gpu": st.one_of(non_number, st.floats(max_value=0, exclude_max=True), non_finite),
    "failure.max_failures": st.one_of(non_int, st.integers(max_value=-1)),
    "failure.fail_fast": non_bool,
    "failure.keep_checkpoints": st.one_of(non_int, st.integers(max_value=0)),
    "results.flush_every_s": st.one_of(non_number, st.floats(max_value=0), non_finite),
    "results.storage_outage_s": st.one_of(non_number, st.floats(max_value=0), non_finite),
    "stop.training_iteration": st.one_of(non_number, non_finite),
    "scheduler.name": _not_one_of(SCHEDULERS),
}
SCHEDULER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "scheduler.max_t": st.one_of(non_int, st.integers(max_value=0), non_finite),
    "scheduler.grace_period": st.one_of(non_int, st.integers(max_value=0), st.integers(10, 99)),
    "scheduler.reduction_factor": st.one_of(non_number, st.floats(max_value=1), st.just(math.nan)),
    "scheduler.brackets": st.one_of(non_int, st.integers(max_value=0)),
    "scheduler.time_attr": _not_one_of(("training_iteration", "time_total_s")),
}
wrong_types: st.SearchStrategy[Case] = st.one_of(
    *(v.map(lambda value, k=k: (_with(k, value), (k,))) for k, v in WRONG_VALUES.items()),
    *(
        v.map(lambda value, k=k: (_with(k, value, SCHEDULED), (k,)))
        for k, v in SCHEDULER_VALUES.items()
    ),
)

# Family: required keys missing.
REQUIRED = [name for name, field in ExperimentSpec.model_fields.items() if field.is_required()]
missing_keys: st.SearchStrategy[Case] = st.sets(st.sampled_from(REQUIRED), min_size=1).map(
    lambda gone: ({k: v for k, v in VALID.items() if k not in gone}, tuple(sorted(gone)))
)

# Family: keys the spec does not know, at the top or inside a section.
SECTIONS: dict[str, list[str]] = {
    "": list(ExperimentSpec.model_fields),
    "search": list(SearchSettings.model_fields),
    "scheduler": list(AshaSettings.model_fields),
    "resources": list(ResourcesSettings.model_fields),
    "failure": list(FailureSettings.model_fields),
    "results": list(ResultsSettings.model_fields),
    "search.pbt": list(PBTSettings.model_fields),
}
any_key = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)  # no lone surrogates


@st.composite
def unknown_keys(draw: st.DrawFn) -> Case:
    section = draw(st.sampled_from(sorted(SECTIONS)))
    key = draw(st.one_of(words, any_key).filter(lambda k: k not in SECTIONS[section]))
    value = draw(scalars)
    raw = copy.deepcopy(SCHEDULED)
    if section == "search.pbt":
        raw["search"] = {"algorithm": "pbt", "pbt": {}}
        raw["trainable"] = "tests.support.trainables:Counter"
        raw["space"] = {"rate": {"uniform": [0.0, 1.0]}, "start": 0}
        del raw["scheduler"]
    node = raw
    for part in section.split(".") if section else []:
        node = node.setdefault(part, {})
    node[key] = value  # the key as it is, dots and all
    return raw, (f"{section}.{key}" if section else key,)


# Family: bad ranges and malformed distributions in the space.
finite = st.floats(-1e6, 1e6, allow_nan=False)
FLOATS = ["uniform", "loguniform"]
INTS = ["randint", "lograndint"]


def _param(keyword: str, args: Any) -> dict[str, Any]:
    return _with("space.x", {keyword: args})


space_ranges = st.one_of(
    # low >= high
    st.builds(
        lambda k, a, b: _param(k, [max(a, b), min(a, b)]), st.sampled_from(FLOATS), finite, finite
    ),
    st.builds(
        lambda k, a, b: _param(k, [max(a, b), min(a, b)]),
        st.sampled_from(INTS),
        st.integers(-1000, 1000),
        st.integers(-1000, 1000),
    ),
    # a log scale through zero
    st.builds(lambda lo, hi: _param("loguniform", [lo, hi]), st.floats(-1e6, 0), st.floats(1, 1e6)),
    st.builds(
        lambda lo, hi: _param("lograndint", [lo, hi]), st.integers(-1000, 0), st.integers(2, 1000)
    ),
    # non-finite or non-numeric bounds
    st.builds(
        lambda k, bad, i: _param(k, [bad, 1.0] if i else [0.0, bad]),
        st.sampled_from(FLOATS + INTS),
        st.one_of(non_finite, words, st.lists(st.integers(), max_size=2)),
        st.booleans(),
    ),
    # non-integer bounds for an integer parameter
    st.builds(
        lambda lo: _param("randint", [lo, lo + 10]),
        st.floats(-1e3, 1e3).filter(lambda f: not f.is_integer()),
    ),
    # the wrong number of bounds
    st.builds(
        _param,
        st.sampled_from(FLOATS + INTS),
        st.one_of(
            st.lists(st.integers(1, 9), max_size=5).filter(lambda a: len(a) != 2),
            st.integers(),
            words,
        ),
    ),
    st.builds(
        _param,
        st.sampled_from(["quniform", "qrandint", "qloguniform"]),
        st.lists(st.integers(1, 9), max_size=5).filter(lambda a: len(a) != 3),
    ),
    # a step that is not positive, or that the bounds are not multiples of
    st.builds(
        lambda k, q: _param(k, [0, 12, q]),
        st.sampled_from(["quniform", "qrandint"]),
        st.integers(-5, 0),
    ),
    st.builds(
        lambda q, k: _param("qrandint", [q * k + 1, q * (k + 5), q]),
        st.integers(2, 9),
        st.integers(0, 9),
    ),
    # bounds as a mapping with a wrong or a missing key
    st.builds(
        lambda bounds: _param("uniform", bounds),
        st.sampled_from([{"low": 0}, {"high": 1}, {"low": 0, "high": 1, "step": 1}, {}]),
    ),
)

bad_ranges: st.SearchStrategy[Case] = st.one_of(
    space_ranges.map(lambda raw: (raw, ("space.x",))),
    # an early-stopping scheduler with a grace period past its budget
    st.builds(
        lambda t, extra: (
            _with("scheduler", {"name": "asha", "max_t": t, "grace_period": t + extra}),
            ("scheduler.grace_period",),
        ),
        st.integers(1, 50),
        st.integers(1, 50),
    ),
    st.builds(
        lambda stop: (
            _with(
                "stop.training_iteration",
                stop,
                {**VALID, "scheduler": {"name": "asha", "grace_period": 3}},
            ),
            ("stop.training_iteration",),
        ),
        st.floats(0, 2.99),
    ),
)

# Family: `choice` and `grid` without values, and names a space cannot hold.
empty_choices: st.SearchStrategy[Case] = st.one_of(
    st.builds(
        lambda keyword, values: (_param(keyword, values), ("space.x",)),
        st.sampled_from(["choice", "grid"]),
        st.one_of(
            st.just([]),
            st.none(),
            words,
            st.integers(),
            st.dictionaries(words, st.integers(), min_size=1, max_size=2),
        ),
    ),
    st.just((_with("space.x", {}), ("space.x",))),
    st.builds(
        lambda name: (
            _with("space", {**VALID["space"], name: {"uniform": [0, 1]}}),
            (f"space.{name}",),
        ),
        st.text(string.ascii_letters + "./", min_size=1, max_size=6).filter(
            lambda s: "." in s or "/" in s
        ),
    ),
    # a one-key mapping holding a list, named like no distribution: never a constant
    st.builds(
        lambda name, values: (_param(name, values), ("space.x",)),
        words.filter(lambda w: w not in DISTRIBUTIONS),
        st.lists(scalars, max_size=3),
    ),
)


def _patch(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(VALID)
    raw.update(copy.deepcopy(changes))
    return raw


EARLY = st.sampled_from(
    [
        {"name": "asha", "max_t": 9},
        {"name": "hyperband", "max_t": 9},
        {"name": "median"},
    ]
)
GRID_SPACE = {"x": {"grid": [0.1, 0.2]}}
PBT_SPACE = {"rate": {"uniform": [0.0, 1.0]}, "start": 0}
PBT = "tests.support.trainables:Counter"


# Family: searcher, sampler, scheduler and space that do not go together.
def _keyed(keys: Keys | str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    """Pairs each spec `strategy` draws with the keys its message may name."""
    return strategy.map(lambda raw: (raw, (keys,) if isinstance(keys, str) else keys))


bad_combinations: st.SearchStrategy[Case] = st.one_of(
    _keyed(
        "scheduler.name",
        st.builds(
            lambda alg, sch: _patch(
                trainable=PBT, space=PBT_SPACE, search={"algorithm": alg}, scheduler=sch
            ),
            st.sampled_from(["pbt", "pb2"]),
            EARLY,
        ),
    ),
    _keyed(
        "space.x",
        st.builds(
            lambda alg: _patch(space=GRID_SPACE, search={"algorithm": alg}),
            st.sampled_from([a for a in SEARCHERS if a not in ("random", "grid")]),
        ),
    ),
    _keyed("search.algorithm", st.just(_patch(search={"algorithm": "grid"}))),
    _keyed(
        "space.y",
        st.just(
            _patch(space={**GRID_SPACE, "y": {"uniform": [0, 1]}}, search={"algorithm": "grid"})
        ),
    ),
    _keyed(
        "search.repeat",
        st.builds(
            lambda n: _patch(space=GRID_SPACE, search={"algorithm": "grid", "repeat": n}),
            st.integers(2, 9),
        ),
    ),
    _keyed(
        "search.sampler",
        st.builds(
            lambda alg, sampler: _patch(search={"algorithm": alg, "sampler": sampler}),
            st.sampled_from([a for a in SEARCHERS if a != "optuna"]),
            st.sampled_from(OPTUNA_SAMPLERS),
        ),
    ),
    _keyed(
        "search.n_initial_points",
        st.builds(
            lambda search: _patch(search={**search, "n_initial_points": 3}),
            st.sampled_from(
                [{"algorithm": a} for a in ("random", "pbt", "pb2")]
                + [{"algorithm": "optuna", "sampler": s} for s in ("nsga2", "qmc", "random")]
            ),
        ),
    ),
    _keyed(
        "search.pbt",
        st.builds(
            lambda alg: _patch(search={"algorithm": alg, "pbt": {"perturbation_interval": 2}}),
            st.sampled_from([a for a in SEARCHERS if a not in ("pbt", "pb2")]),
        ),
    ),
    st.builds(
        lambda alg, extra: (
            _patch(trainable=PBT, space=PBT_SPACE, search={"algorithm": alg, **extra}),
            tuple(f"search.{k}" for k in extra),
        ),
        st.sampled_from(["pbt", "pb2"]),
        st.sampled_from([{"points_to_evaluate": [{"rate": 0.5}]}, {"repeat": 2}]),
    ),
    _keyed(
        "space.p",
        st.builds(
            lambda param: _patch(
                trainable=PBT, space={**PBT_SPACE, "p": param}, search={"algorithm": "pb2"}
            ),
            st.sampled_from(
                [
                    {"choice": [1, 2]},
                    {"loguniform": [0.001, 1]},
                    {"lograndint": [1, 64]},
                    {"normal": [0.5, 0.1]},
                ]
            ),
        ),
    ),
    _keyed("trainable", st.just(_patch(search={"algorithm": "pbt"}))),  # `linear` never saves
    _keyed(
        "space.x",
        st.just(
            _patch(
                space={"x": {"choice": [1, 2]}, "y": {"uniform": [0, 1]}},
                search={"algorithm": "optuna", "sampler": "cmaes"},
            )
        ),
    ),
    _keyed("search.sampler", st.just(_patch(search={"algorithm": "optuna", "sampler": "cmaes"}))),
    _keyed(
        "scheduler.max_t",
        st.builds(
            lambda name: _patch(scheduler={"name": name}, stop={}),
            st.sampled_from(["asha", "hyperband"]),
        ),
    ),
    _keyed(
        "search.repeat",
        st.builds(
            lambda sch, n: _patch(scheduler=sch, search={"repeat": n}), EARLY, st.integers(2, 5)
        ),
    ),
    st.builds(
        lambda key: (
            _patch(search={"points_to_evaluate": [{key: 1}]}),
            (f"search.points_to_evaluate[0].{key}",),
        ),
        words.filter(lambda w: w not in VALID["space"]),
    ),
    _keyed(
        "failure.fail_fast",
        st.builds(
            lambda n: _patch(failure={"fail_fast": True, "max_failures": n}), st.integers(1, 9)
        ),
    ),
    # normal priors with a searcher that needs bounds
    _keyed(
        "space.x",
        st.builds(
            lambda keyword, search: _patch(space={"x": {keyword: [0.5, 0.1]}}, search=search),
            st.sampled_from(["normal", "lognormal"]),
            st.one_of(
                st.sampled_from(OPTUNA_SAMPLERS).map(
                    lambda s: {"algorithm": "optuna", "sampler": s}
                ),
                st.just({"algorithm": "random", "repeat": 2}),
            ),
        ),
    ),
    # constants only, with more than one trial or a searcher that samples
    _keyed(
        "space",
        st.builds(
            lambda search: _patch(space={"steps": 2}, search=search),
            st.one_of(
                st.integers(2, 100).map(lambda n: {"num_samples": n}),
                st.sampled_from(
                    [{"algorithm": "hyperopt"}, {"algorithm": "optuna", "num_samples": 1}]
                ),
            ),
        ),
    ),
)
