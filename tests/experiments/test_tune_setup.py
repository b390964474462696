"""What the slot watch moves: the cap that holds a run's trials back (no Ray started)."""

from __future__ import annotations

from typing import Any

import pytest
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from tests.support.specs import spec_dict
from tunefleet.common.ray_compat import VariantCap
from tunefleet.experiments.run.tune_setup import moved_cap
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.plan import Plan, make_plan


def _plan(**resources: Any) -> Plan:
    return make_plan(validate_spec(spec_dict(resources=resources)), {})


def test_a_searchers_limiter_is_moved_whatever_the_trials_reserve() -> None:
    limiter = ConcurrencyLimiter(OptunaSearch(), max_concurrent=2)
    assert moved_cap(limiter, _plan(cpu=1)) is limiter
    assert moved_cap(limiter, _plan(workers=2, cpu=0.5)) is limiter


@pytest.mark.parametrize("resources", [{"cpu": 1}, {"cpu": 1, "gpu": 0.5}])
def test_rays_resources_cap_one_worker_trials_of_the_variant_generator(
    resources: dict[str, float],
) -> None:
    assert moved_cap(BasicVariantGenerator(), _plan(**resources)) is None


def test_the_variant_generator_carries_the_cap_of_data_parallel_trials() -> None:
    generator = BasicVariantGenerator()
    cap = moved_cap(generator, _plan(workers=2, cpu=0.5))
    assert isinstance(cap, VariantCap)
    cap.set_max_concurrency(3)
    assert generator.max_concurrent == 3 == cap.max_concurrent
