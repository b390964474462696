"""PBT/PB2 rules that need more than the space: concurrency caps and keys a trainable fixes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.specs import spec_dict
from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.plan import make_plan
from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.combinations import SearchConfigError, check_mutations, check_search
from tunefleet.trainables import TrainableError

NUMERIC = {"lr": {"loguniform": [1e-4, 1e-1]}, "wd": {"uniform": [0.0, 0.1]}}


@pytest.mark.parametrize("algorithm", ["pbt", "pb2"])
def test_a_population_capped_below_its_size_is_refused(algorithm: str) -> None:
    search = SearchSettings(algorithm=algorithm, num_samples=4, max_concurrent=2)
    with pytest.raises(
        SearchConfigError,
        match=rf"^search\.max_concurrent: {algorithm} compares and copies trials that train "
        r"side by side, but max_concurrent=2 < num_samples=4 runs the population in waves "
        r"that never exploit each other; remove max_concurrent \(trials beyond the free CPUs "
        r"wait paused\) or lower num_samples to 2\.$",
    ):
        check_search(search, FifoSettings(), parse_space(NUMERIC), {})


@pytest.mark.parametrize("cap", [None, 4, 8])
def test_a_cap_that_holds_the_whole_population_is_accepted(cap: int | None) -> None:
    search = SearchSettings(algorithm="pbt", num_samples=4, max_concurrent=cap)
    check_search(search, FifoSettings(), parse_space(NUMERIC), {})


OPTIMIZER_CHOICE = {**NUMERIC, "optimizer": {"choice": ["sgd", "adam"]}}


@pytest.mark.parametrize("key", ["optimizer", "lr_schedule"])
def test_pbt_may_not_mutate_a_key_the_trainable_fixes(key: str) -> None:
    space = parse_space({**NUMERIC, key: {"choice": ["a", "b"]}})
    with pytest.raises(
        SearchConfigError,
        match=rf"^space\.{key}: pbt changes searched parameters in the middle of a trial, but "
        rf"'m:t' cannot change `{key}` there \(a trial would load saved state of another "
        r"kind\); set it to one value, or compare its values with algorithm random, "
        r"hyperopt or optuna\.$",
    ):
        check_mutations(
            SearchSettings(algorithm="pbt"), space, ("optimizer", "lr_schedule"), trainable="m:t"
        )


@pytest.mark.parametrize(
    ("algorithm", "space"),
    [
        ("pbt", {**NUMERIC, "optimizer": "sgd"}),  # a constant is never mutated
        ("random", OPTIMIZER_CHOICE),  # trials never switch config mid-run
        ("optuna", OPTIMIZER_CHOICE),
    ],
)
def test_fixed_keys_are_fine_when_nothing_mutates_them(algorithm: str, space: Any) -> None:
    check_mutations(
        SearchSettings(algorithm=algorithm), parse_space(space), ("optimizer",), trainable="m:t"
    )


def _spec(algorithm: str, space: dict[str, Any]) -> ExperimentSpec:
    raw = spec_dict(
        name="pbt-rule",
        trainable="tunefleet.trainables.examples.digits:mlp_trainable",
        metric="val_accuracy",
        space=space,
        search={"algorithm": algorithm, "num_samples": 4},
    )
    return validate_spec(raw)


def test_the_pytorch_wrapper_declares_its_optimizer_keys_to_the_plan() -> None:
    with pytest.raises(
        TrainableError,
        match=r"^space\.optimizer: pbt changes searched parameters in the middle of a trial, "
        r"but 'tunefleet\.trainables\.examples\.digits:mlp_trainable' cannot change "
        r"`optimizer` there",
    ):
        make_plan(_spec("pbt", OPTIMIZER_CHOICE), raw={})
    plan = make_plan(_spec("random", OPTIMIZER_CHOICE), raw={})
    assert "optimizer" in plan.spec.space.searched
