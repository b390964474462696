"""Wrong types, missing and unknown keys, bad ranges and empty choices, bad combinations."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given

from tests.experiments.fuzz.broken_specs import (
    bad_combinations,
    bad_ranges,
    empty_choices,
    missing_keys,
    unknown_keys,
    wrong_types,
)
from tests.experiments.fuzz.support import (
    FUZZ,
    SCHEDULED,
    VALID,
    Case,
    _cli,
    _validate,
    _write,
)


def test_the_valid_starting_points_are_valid(workdir: Path) -> None:
    for raw in (VALID, SCHEDULED):
        code, out, err = _cli("validate", str(_write(workdir / "ok.yaml", raw)))
        assert code == 0, err
        assert out.rstrip().endswith("spec is valid.")


@FUZZ
@given(case=wrong_types)
def test_wrong_types_and_values(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@FUZZ
@given(case=missing_keys)
def test_missing_required_keys(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@FUZZ
@given(case=unknown_keys())
def test_unknown_keys(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@FUZZ
@given(case=bad_ranges)
def test_bad_ranges(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@FUZZ
@given(case=empty_choices)
def test_empty_choices_and_bad_parameter_names(workdir: Path, case: Case) -> None:
    _validate(workdir, case)


@FUZZ
@given(case=bad_combinations)
def test_searcher_scheduler_and_space_that_do_not_go_together(workdir: Path, case: Case) -> None:
    _validate(workdir, case)
