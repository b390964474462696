"""Bad input, fuzzed: every malformed spec, override or file ends with exit code 2 and one
line on stderr that names the problem; never a traceback, never a started Ray.

Each property starts from a valid spec and breaks it in one way (one family of breakage per
strategy), writes it to a file and runs `tunefleet validate` (and `tunefleet run` for a
sample) through `main()` in this process.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import re
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunefleet.experiments import cli
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
from tunefleet.trainables.resolve import IMPORT_PATH_PATTERN

FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID: dict[str, Any] = {
    "name": "fuzz",
    "trainable": "tests.support.trainables:linear",
    "metric": "score",
    "mode": "max",
    "space": {"x": {"uniform": [0.0, 1.0]}, "steps": 2},
    "search": {"num_samples": 2, "seed": 0},
    "resources": {"cpu": 1},
    "stop": {"training_iteration": 2},
}
# The same with an early-stopping scheduler, to break the scheduler's own keys.
SCHEDULED: dict[str, Any] = {**VALID, "scheduler": {"name": "asha", "max_t": 9}}


# ----------------------------------------------------------------------------- helpers


def _cli(*argv: str) -> tuple[int, str, str]:
    """Runs `tunefleet ARGV` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse, or anything else that exits
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, out: str, err: str) -> None:
    """Exit code 2, nothing on stdout, exactly one `tunefleet: error: ...` line on stderr."""
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert "Traceback" not in out + err, err
    assert out == "", out
    assert err.startswith("tunefleet: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1 and "\r" not in err, repr(err)
    assert len(err.rstrip("\n").splitlines()) == 1, repr(err)
    assert len(err.strip()) > len("tunefleet: error: "), err


def _dump(raw: Any) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def _write(path: Path, content: Any) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else _dump(content), "utf-8")
    return path


def _validate(workdir: Path, content: Any, *extra: str) -> None:
    spec = _write(workdir / "spec.yaml", content)
    assert_refused(*_cli("validate", str(spec), "--storage", str(workdir / "store"), *extra))


def _with(path: str, value: Any, base: dict[str, Any] = VALID) -> dict[str, Any]:
    """A copy of `base` with the dotted key `path` set to `value`."""
    raw = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def _keep_sys_path() -> Iterator[None]:
    """`main()` puts the current folder on sys.path, as `python -m` does; undo it."""
    saved = list(sys.path)
    yield
    sys.path[:] = saved


# ---------------------------------------------------------------------------- strategies


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Strings pydantic would not read as a number or a bool (`"3"`, `"inf"`, `"on"` it would).
_LAX_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "t", "f"}


def _is_word(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.lower() not in _LAX_WORDS
    return False


words = st.text(string.ascii_letters, min_size=1, max_size=8).filter(_is_word)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
containers = st.one_of(
    st.lists(scalars, max_size=3), st.dictionaries(words, scalars, min_size=1, max_size=3)
)
# Not a string (None is left out: it is the default of optional keys).
non_text = st.one_of(containers, st.integers(), st.floats(), st.booleans())
# Not a number (pydantic reads bools and numeric strings as numbers, so neither is here).
non_number = st.one_of(containers, words)
non_int = st.one_of(
    non_number,
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
)
non_bool = st.one_of(containers, words, st.integers().filter(lambda i: i not in (0, 1)))
non_finite = st.sampled_from([math.inf, -math.inf, math.nan])
non_mapping = st.one_of(
    st.lists(scalars, max_size=3), st.integers(), st.floats(), st.booleans(), words
)


def _not_one_of(options: Any) -> st.SearchStrategy[Any]:
    return st.one_of(non_text, words.filter(lambda w: w not in options))


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
wrong_types = st.one_of(
    *(st.builds(_with, st.just(k), v) for k, v in WRONG_VALUES.items()),
    *(st.builds(_with, st.just(k), v, st.just(SCHEDULED)) for k, v in SCHEDULER_VALUES.items()),
)

# Family: required keys missing.
REQUIRED = [name for name, field in ExperimentSpec.model_fields.items() if field.is_required()]
missing_keys = st.sets(st.sampled_from(REQUIRED), min_size=1).map(
    lambda gone: {k: v for k, v in VALID.items() if k not in gone}
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
def unknown_keys(draw: st.DrawFn) -> dict[str, Any]:
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
    return raw


# Family: bad ranges and malformed distributions in the space.
finite = st.floats(-1e6, 1e6, allow_nan=False)
FLOATS = ["uniform", "loguniform"]
INTS = ["randint", "lograndint"]


def _param(keyword: str, args: Any) -> dict[str, Any]:
    return _with("space.x", {keyword: args})


bad_ranges = st.one_of(
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
    # an early-stopping scheduler with a grace period past its budget
    st.builds(
        lambda t, extra: _with(
            "scheduler", {"name": "asha", "max_t": t, "grace_period": t + extra}
        ),
        st.integers(1, 50),
        st.integers(1, 50),
    ),
    st.builds(
        lambda stop: _with(
            "stop.training_iteration",
            stop,
            {**VALID, "scheduler": {"name": "asha", "grace_period": 3}},
        ),
        st.floats(0, 2.99),
    ),
)

# Family: `choice` and `grid` without values, and names a space cannot hold.
empty_choices = st.one_of(
    st.builds(
        _param,
        st.sampled_from(["choice", "grid"]),
        st.one_of(
            st.just([]),
            st.none(),
            words,
            st.integers(),
            st.dictionaries(words, st.integers(), min_size=1, max_size=2),
        ),
    ),
    st.just(_with("space.x", {})),
    st.builds(
        lambda name: _with("space", {**VALID["space"], name: {"uniform": [0, 1]}}),
        st.text(string.ascii_letters + "./", min_size=1, max_size=6).filter(
            lambda s: "." in s or "/" in s
        ),
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
bad_combinations = st.one_of(
    st.builds(
        lambda alg, sch: _patch(
            trainable=PBT, space=PBT_SPACE, search={"algorithm": alg}, scheduler=sch
        ),
        st.sampled_from(["pbt", "pb2"]),
        EARLY,
    ),
    st.builds(
        lambda alg: _patch(space=GRID_SPACE, search={"algorithm": alg}),
        st.sampled_from([a for a in SEARCHERS if a not in ("random", "grid")]),
    ),
    st.just(_patch(search={"algorithm": "grid"})),
    st.just(_patch(space={**GRID_SPACE, "y": {"uniform": [0, 1]}}, search={"algorithm": "grid"})),
    st.builds(
        lambda n: _patch(space=GRID_SPACE, search={"algorithm": "grid", "repeat": n}),
        st.integers(2, 9),
    ),
    st.builds(
        lambda alg, sampler: _patch(search={"algorithm": alg, "sampler": sampler}),
        st.sampled_from([a for a in SEARCHERS if a != "optuna"]),
        st.sampled_from(OPTUNA_SAMPLERS),
    ),
    st.builds(
        lambda search: _patch(search={**search, "n_initial_points": 3}),
        st.sampled_from(
            [{"algorithm": a} for a in ("random", "pbt", "pb2")]
            + [{"algorithm": "optuna", "sampler": s} for s in ("nsga2", "qmc", "random")]
        ),
    ),
    st.builds(
        lambda alg: _patch(search={"algorithm": alg, "pbt": {"perturbation_interval": 2}}),
        st.sampled_from([a for a in SEARCHERS if a not in ("pbt", "pb2")]),
    ),
    st.builds(
        lambda alg, extra: _patch(
            trainable=PBT, space=PBT_SPACE, search={"algorithm": alg, **extra}
        ),
        st.sampled_from(["pbt", "pb2"]),
        st.sampled_from([{"points_to_evaluate": [{"rate": 0.5}]}, {"repeat": 2}]),
    ),
    st.builds(
        lambda param: _patch(
            trainable=PBT, space={**PBT_SPACE, "p": param}, search={"algorithm": "pb2"}
        ),
        st.sampled_from([{"choice": [1, 2]}, {"loguniform": [0.001, 1]}, {"lograndint": [1, 64]}]),
    ),
    st.just(_patch(search={"algorithm": "pbt"})),  # `linear` never saves a checkpoint
    st.just(
        _patch(
            space={"x": {"choice": [1, 2]}, "y": {"uniform": [0, 1]}},
            search={"algorithm": "optuna", "sampler": "cmaes"},
        )
    ),
    st.just(_patch(search={"algorithm": "optuna", "sampler": "cmaes"})),
    st.builds(
        lambda name: _patch(scheduler={"name": name}, stop={}),
        st.sampled_from(["asha", "hyperband"]),
    ),
    st.builds(lambda sch, n: _patch(scheduler=sch, search={"repeat": n}), EARLY, st.integers(2, 5)),
    st.builds(
        lambda key: _patch(search={"points_to_evaluate": [{key: 1}]}),
        words.filter(lambda w: w not in VALID["space"]),
    ),
    st.builds(lambda n: _patch(failure={"fail_fast": True, "max_failures": n}), st.integers(1, 9)),
)

# Family: a trainable that does not import, is not there, or cannot be called as one.
USER_MODULES = {
    "tf_fuzz_raises": 'raise ValueError("broken\\nmodule")\n',
    "tf_fuzz_syntax": "def train(config:\n",
    "tf_fuzz_missing_dep": "import tf_fuzz_no_such_dependency\n",
    "tf_fuzz_shapes": (
        "class NotTrainable:\n    pass\n\n"
        "class SetupOnly:\n    def setup(self, config):\n        pass\n\n"
        "def no_args():\n    pass\n\n"
        "def three(config, a, b):\n    pass\n\n"
        "def keyword_only(*, config):\n    pass\n\n"
        "VALUES = [1, 2]\nNUMBER = 3\n"
    ),
}
BROKEN_TRAINABLES = [
    "tf_fuzz_raises:train",
    "tf_fuzz_syntax:train",
    "tf_fuzz_missing_dep:train",
    "tf_fuzz_shapes:NotTrainable",
    "tf_fuzz_shapes:SetupOnly",
    "tf_fuzz_shapes:no_args",
    "tf_fuzz_shapes:three",
    "tf_fuzz_shapes:keyword_only",
    "tf_fuzz_shapes:VALUES",
    "tf_fuzz_shapes:NUMBER",
    "tf_fuzz_shapes:missing",
    "tf_fuzz_shapes:three.missing",
    "tests.support.trainables:two_args",
    "tests.support.trainables:Counter.setup",
    "tests.support.trainables:linear.nothing",
    "tests.experiments.test_spec:BASE",
    "os:sep",
    "os:getcwd",
    "math:pi",
    "collections:OrderedDict",
]
identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
trainable_paths = st.one_of(
    st.sampled_from(BROKEN_TRAINABLES),
    # not an import path: spaces, extra or missing colons, empty parts, digits first
    st.text(max_size=30).filter(lambda s: not re.fullmatch(IMPORT_PATH_PATTERN, s)),
    st.builds(
        lambda a, b, sep: f"{a}{sep}{b}",
        identifier,
        identifier,
        st.sampled_from([" ", "::", ":", ". ", ":.", "/", "-", "", ": "]),
    ).filter(lambda s: not re.fullmatch(IMPORT_PATH_PATTERN, s)),
    # a module that is not there
    st.builds(lambda m, a: f"tf_fuzz_nowhere_{m}.{m}:{a}", identifier, identifier),
    # an attribute that is not there
    st.builds(lambda a: f"tests.support.trainables:zz_{a}", identifier),
)


@pytest.fixture(scope="module")
def user_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Broken user modules on sys.path for the length of this file's tests."""
    folder = tmp_path_factory.mktemp("user_modules")
    for name, source in {**USER_MODULES, **RESOLVE_MODULES}.items():
        (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [*USER_MODULES, *RESOLVE_MODULES]:
        sys.modules.pop(name, None)


# Family: malformed `--set` overrides.
TOP = list(ExperimentSpec.model_fields)
BAD_YAML = [
    "[", "{", "[1,", "{a: 1", "]", "[1]]", "*undefined", "a: b: c", "'unclosed", '"unclosed',
    "\t- x", "- a\nb: c", "%", "@x", "`x", "{a: 1, a: 2}", "!!python/object/apply:os.system ['true']",
    "!!int abc", "!!float x", "!!bool maybe", "!!timestamp soon", "2020-13-45", "!!map x", "!!int",
    "---\n---", "? [a]\n: 1", "[" * 200 + "]" * 200,
]  # fmt: skip
bad_overrides = st.one_of(
    # no `=`
    st.text(max_size=20).filter(lambda s: "=" not in s),
    # an empty key or an empty part of one
    st.builds(
        lambda key, value: f"{key}={value}",
        st.sampled_from(["", " ", ".", "a.", ".a", "a..b", "search.", " . "]),
        st.integers(),
    ),
    # a key the spec does not know
    st.builds(
        lambda key, value: f"{key}={value}",
        st.one_of(words, any_key.filter(lambda k: "=" not in k)).filter(
            lambda k: k.strip() and k.strip().split(".")[0] not in TOP
        ),
        st.integers(),
    ),
    st.builds(
        lambda section, key: f"{section}.{key}=1",
        st.sampled_from(["search", "resources", "failure", "results", "scheduler"]),
        words.filter(lambda w: w not in SECTIONS["search"] + SECTIONS["resources"] + ["name"]),
    ),
    # a path through a value that is not a mapping
    st.builds(
        lambda path, key: f"{path}.{key}=1",
        st.sampled_from(
            ["name", "mode", "trainable", "space.x.uniform", "search.num_samples", "space.steps"]
        ),
        words,
    ),
    # a value that is not YAML
    st.builds(
        lambda key, value: f"{key}={value}",
        st.sampled_from(["search.num_samples", "name", "space.x", "stop"]),
        st.sampled_from(BAD_YAML),
    ),
    # a value of the wrong type
    st.builds(lambda value: f"search.num_samples={value}", words),
    st.builds(lambda value: f"mode={value}", words.filter(lambda w: w not in ("min", "max"))),
    st.builds(lambda value: f"space={value}", st.integers()),
    st.builds(lambda value: f"space.x.uniform=[1, {value}]", st.integers(max_value=1)),
)
good_overrides = st.lists(
    st.sampled_from(["search.seed=1", "description=fuzzed", "resources.gpu=0"]),
    max_size=2,
)


# ----------------------------------------------------------------------------- properties


def test_the_valid_starting_points_are_valid(workdir: Path) -> None:
    for raw in (VALID, SCHEDULED):
        code, out, err = _cli("validate", str(_write(workdir / "ok.yaml", raw)))
        assert code == 0, err
        assert out.rstrip().endswith("spec is valid.")


@FUZZ
@given(raw=wrong_types)
def test_wrong_types_and_values(workdir: Path, raw: dict[str, Any]) -> None:
    _validate(workdir, raw)


@FUZZ
@given(raw=missing_keys)
def test_missing_required_keys(workdir: Path, raw: dict[str, Any]) -> None:
    _validate(workdir, raw)


@FUZZ
@given(raw=unknown_keys())
def test_unknown_keys(workdir: Path, raw: dict[str, Any]) -> None:
    _validate(workdir, raw)


@FUZZ
@given(raw=bad_ranges)
def test_bad_ranges(workdir: Path, raw: dict[str, Any]) -> None:
    _validate(workdir, raw)


@FUZZ
@given(raw=empty_choices)
def test_empty_choices_and_bad_parameter_names(workdir: Path, raw: dict[str, Any]) -> None:
    _validate(workdir, raw)


@FUZZ
@given(raw=bad_combinations)
def test_searcher_scheduler_and_space_that_do_not_go_together(
    workdir: Path, raw: dict[str, Any]
) -> None:
    _validate(workdir, raw)


@FUZZ
@given(path=trainable_paths)
def test_trainables_that_cannot_run(workdir: Path, user_modules: Path, path: str) -> None:
    _validate(workdir, _with("trainable", path))


@FUZZ
@given(bad=bad_overrides, before=good_overrides, after=good_overrides)
def test_malformed_overrides(workdir: Path, bad: str, before: list[str], after: list[str]) -> None:
    _validate(workdir, VALID, *(f"--set={item}" for item in [*before, bad, *after]))


@FUZZ
@given(
    content=st.one_of(
        # not UTF-8: stray bytes after a valid spec, or a file of random bytes
        st.binary(min_size=1, max_size=16).map(lambda b: _dump(VALID).encode() + b"\xff" + b),
        st.binary(min_size=1, max_size=64).filter(lambda b: not _is_utf8(b)),
        # YAML that is not a mapping
        st.lists(scalars, max_size=4).map(_dump),
        scalars.map(_dump),
        st.sampled_from(["", "\n", "# nothing\n", "---\n", "~\n", "null\n", "[]\n", "''\n"]),
        # a key written twice
        st.sampled_from(sorted(VALID)).map(lambda k: _dump(VALID) + _dump({k: VALID[k]})),
    )
)
def test_files_that_are_not_a_spec(workdir: Path, content: bytes | str) -> None:
    _validate(workdir, content)


@FUZZ
@given(
    case=st.one_of(
        st.tuples(wrong_types, st.just(())),
        st.tuples(missing_keys, st.just(())),
        st.tuples(unknown_keys(), st.just(())),
        st.tuples(bad_combinations, st.just(())),
        st.tuples(trainable_paths.map(lambda p: _with("trainable", p)), st.just(())),
        st.tuples(st.just(VALID), bad_overrides.map(lambda o: (f"--set={o}",))),
        st.tuples(
            st.just(VALID),
            st.text(max_size=12)
            .filter(lambda s: not re.fullmatch(NAME_PATTERN, s))
            .map(lambda n: (f"--name={n}",)),
        ),
    )
)
def test_run_refuses_before_ray_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user_modules: Path,
    case: tuple[dict[str, Any], tuple[str, ...]],
) -> None:
    import ray

    ray_was_up = ray.is_initialized()  # the session's Ray may be up already
    import ray

    raw, extra = case
    started: list[Any] = []
    monkeypatch.setattr(cli, "run_plan", lambda plan, options: started.append(plan))
    monkeypatch.chdir(tmp_path)
    spec = _write(tmp_path / "spec.yaml", raw)
    assert_refused(*_cli("run", str(spec), "--storage", str(tmp_path / "store"), *extra))
    assert not started, "run_plan was called: Ray would have started"
    assert ray.is_initialized() == ray_was_up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no results, no store


# -------------------------------------------------------------------- files and paths


def _nested(depth: int) -> str:
    return _dump(VALID) + "deep: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe" + "name: x".encode("utf-16-le"), r"not UTF-8 text \(bad byte at offset 0\)"),
        ("name: café\n".encode("latin-1"), r"not UTF-8 text"),
        (b"\x00\x01\x02", r"not valid YAML"),
        (b"- name: x\n- mode: max\n", r"a spec must be a mapping .*, got a YAML list\.$"),
        (b"just some words\n", r"got a YAML str\.$"),
        (b"3.5\n", r"got a YAML float\.$"),
        (b"", r"got an empty file\.$"),
        (b"# only a comment\n", r"got an empty file\.$"),
        (b"name: [1\n", r"spec\.yaml:\d+: not valid YAML"),
        (b"name: fuzz\n  trainable: x\n", r"spec\.yaml:2: not valid YAML"),
        (b"\tname: fuzz\n", r"spec\.yaml:1: not valid YAML \(found character '\\t'"),
        (
            _dump(VALID).encode() + b"mode: min\n",
            r"spec\.yaml:\d+: not valid YAML \(duplicate key 'mode'\)\.$",
        ),
        (
            _dump({k: v for k, v in VALID.items() if k != "space"}).encode()
            + b"space:\n  x: {uniform: [0, 1]}\n  x: {uniform: [0, 2]}\n",
            r"duplicate key 'x'",
        ),
        (_dump(VALID).encode() + b"? [a, b]\n: 1\n", r"not valid YAML \(found unhashable key\)"),
        (_dump(VALID).encode() + b"? {a: 1}\n: 1\n", r"not valid YAML \(found unhashable key\)"),
        (_nested(60).encode(), r"nested more than 50 levels deep"),
        (_nested(5000).encode(), r"nested more than 50 levels deep"),
        (_dump(VALID).encode() + b"loop: &a [*a]\n", r"nested more than 50 levels deep"),
        (b"space: &a {x: *a}\n", r"not valid YAML \(found unconstructable recursive node\)"),
        (
            _dump(VALID).encode()
            + b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n".encode()
                for i in range(8)
            ),
            r"holds over 1000000 values once its YAML aliases are expanded",
        ),
        (
            b"x: !!python/object/apply:os.system ['true']\n",
            r"not valid YAML \(could not determine a constructor",
        ),
        (
            _dump(VALID).encode() + b"description: !!int abc\n",
            r"not valid YAML \(a value cannot be read: invalid literal",
        ),
        (
            _dump(VALID).encode() + b"description: 2020-13-45\n",
            r"not valid YAML \(a value cannot be read: month must be in 1\.\.12\)",
        ),
        (_dump(VALID).encode() + b'"bad\\nkey": 1\n', r"^tunefleet: error: bad\\nkey: unknown key"),
        (
            _dump(
                {**VALID, "stop": {"training_iteration": math.inf}, "scheduler": {"name": "asha"}}
            ).encode(),
            r"stop\.training_iteration: input should be a finite number, got inf\.$",
        ),
        (
            _dump({**VALID, "resources": {"cpu": 1e-320}}).encode(),
            r"resources\.cpu: Ray counts resources in steps of 0\.0001",
        ),
        (
            _dump({**VALID, "resources": {"cpu": math.inf}}).encode(),
            r"resources\.cpu: input should be a finite number, got inf\.$",
        ),
    ],
)
def test_unreadable_files(workdir: Path, content: bytes, message: str) -> None:
    spec = _write(workdir / "spec.yaml", content)
    code, out, err = _cli("validate", str(spec))
    assert_refused(code, out, err)
    assert re.search(message, err.rstrip("\n")), err


def test_a_spec_file_that_does_not_exist_or_is_a_folder(workdir: Path) -> None:
    for path, message in [
        (workdir / "nope.yaml", "nope.yaml: no such file."),
        (workdir / "no" / "such" / "dir.yaml", "dir.yaml: no such file."),
        (workdir, "cannot read (Is a directory)."),
        (workdir / "line\nbreak.yaml", "line\\nbreak.yaml: no such file."),
    ]:
        code, out, err = _cli("validate", str(path))
        assert_refused(code, out, err)
        assert err.rstrip().endswith(message), err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_a_spec_file_that_cannot_be_read(workdir: Path) -> None:
    spec = _write(workdir / "secret.yaml", VALID)
    spec.chmod(0)
    try:
        assert_refused(*_cli("validate", str(spec)))
    finally:
        spec.chmod(0o644)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../elsewhere", "", "two words", "x\n"])
def test_run_refuses_a_name_that_is_not_a_folder_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """`--name ..` with `--overwrite` would delete the storage folder's parent."""
    monkeypatch.setattr(cli, "run_plan", lambda plan, options: pytest.fail("run_plan called"))
    spec = _write(tmp_path / "spec.yaml", VALID)
    code, out, err = _cli(
        "run", str(spec), "--storage", str(tmp_path / "store"), f"--name={name}", "--overwrite"
    )
    assert_refused(code, out, err)
    assert "--name: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


# ------------------------------ trainables that exit, lack __name__ or raise on lookup

RESOLVE_MODULES = {
    "tf_fuzz_exits": "import sys\nsys.exit(3)\n",
    "tf_fuzz_callables": (
        "import functools\n\n"
        "def _two(config, other):\n    pass\n\n"
        "partial_two = functools.partial(_two)\n\n"
        "class _Call:\n    def __call__(self, config, other):\n        pass\n\n"
        "instance_two = _Call()\n\n"
        "def __getattr__(name):\n    raise RuntimeError(f'no {name} here')\n"
    ),
}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tf_fuzz_exits:train", r"importing 'tf_fuzz_exits' raised SystemExit: 3; fix"),
        (
            "tf_fuzz_callables:partial_two",
            r"must take exactly one argument .* its signature is partial\(config, other\)",
        ),
        (
            "tf_fuzz_callables:instance_two",
            r"must take exactly one argument .* its signature is _Call\(config, other\)",
        ),
        (
            "tf_fuzz_callables:lazy",
            r"reading 'lazy' from 'tf_fuzz_callables' raised RuntimeError: no lazy here",
        ),
    ],
)
def test_trainables_that_exit_lack_a_name_or_raise_on_lookup_are_refused(
    workdir: Path, user_modules: Path, path: str, message: str
) -> None:
    spec = _write(workdir / "spec.yaml", _with("trainable", path))
    code, out, err = _cli("validate", str(spec), "--storage", str(workdir / "store"))
    assert_refused(code, out, err)
    assert re.search(message, err), err
