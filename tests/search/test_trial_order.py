"""tunefleet's FIFO-based schedulers choose the trial Ray's would, without rescanning the
finished trials on every step."""

from __future__ import annotations

import random

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from tunefleet.search.schedulers import AshaSettings, FifoSettings, MedianSettings, build_scheduler
from tunefleet.search.trial_order import AshaScheduler, FifoScheduler, MedianStopping


class _Controller:
    """What `choose_trial_to_run` reads of Ray's TuneController: its trials, in order."""

    def __init__(self, trials: list[Trial]) -> None:
        self.trials = trials

    def get_trials(self) -> list[Trial]:
        return self.trials


def _trial(status: str) -> Trial:
    trial = Trial("fifo_test_trainable", config={}, stub=True)
    trial.status = status
    return trial


def test_same_choice_as_rays_fifo_as_an_experiment_goes_on() -> None:
    rng = random.Random(0)
    ours, rays = FifoScheduler(), FIFOScheduler()
    trials: list[Trial] = []
    controller = _Controller(trials)
    chosen = 0
    for _ in range(400):
        # New trials arrive pending; running ones finish; some pause and come back.
        if rng.random() < 0.5:
            trials.append(_trial(Trial.PENDING))
        for trial in trials:
            if trial.status == Trial.RUNNING and rng.random() < 0.3:
                trial.status = rng.choice([Trial.TERMINATED, Trial.TERMINATED, Trial.PAUSED])
            elif trial.status == Trial.PAUSED and rng.random() < 0.2:
                trial.status = Trial.PENDING
            elif trial.status == Trial.ERROR and rng.random() < 0.1:
                trial.status = Trial.PENDING  # a retry after a failure
        expected = rays.choose_trial_to_run(controller)  # type: ignore[arg-type]
        assert ours.choose_trial_to_run(controller) is expected  # type: ignore[arg-type]
        if expected is not None:
            chosen += 1
            expected.status = rng.choice([Trial.RUNNING] * 5 + [Trial.ERROR])
    assert chosen > 100
    assert sum(t.status == Trial.TERMINATED for t in trials) > 50
    assert ours._finished_prefix > 0  # it did skip finished trials


def test_nothing_to_run() -> None:
    trials = [_trial(Trial.TERMINATED), _trial(Trial.RUNNING), _trial(Trial.ERROR)]
    assert FifoScheduler().choose_trial_to_run(_Controller(trials)) is None  # type: ignore[arg-type]


def test_specs_build_the_fast_schedulers_with_their_settings() -> None:
    stop = {"training_iteration": 27}
    assert isinstance(build_scheduler(FifoSettings(), stop=stop), FifoScheduler)
    asha = build_scheduler(AshaSettings(name="asha", grace_period=3), stop=stop)
    assert isinstance(asha, AshaScheduler)
    assert asha._max_t == 27 and asha._brackets[0]._rungs[-1][0] == 3
    median = build_scheduler(MedianSettings(name="median", grace_period=2), stop=stop)
    assert isinstance(median, MedianStopping) and median._grace_period == 2
