"""`LeanFinishedTrials`: a terminated trial's last-n windows become plain lists."""

from __future__ import annotations

from collections import deque

from ray.tune.experiment import Trial
from ray.tune.trainable.metadata import _TrainingRunMetadata

from tunefleet.experiments.run.finished_trials import LeanFinishedTrials


def test_finished_trials_keep_their_values_as_lists_that_json_holds() -> None:
    trial = Trial("lean_test_trainable", config={}, stub=True)
    for step, value in enumerate([0.5, 0.25, 0.75, 1.0, 2.0, 3.0], start=1):
        trial.run_metadata.update_metric("score", value, step=step)
    before = trial.run_metadata.get_json_state()
    pickled = before.count("CLOUDPICKLE_FALLBACK")  # Ray pickles each deque into its state
    windows = trial.run_metadata.metric_n_steps["score"]
    assert isinstance(windows["5"], deque)

    LeanFinishedTrials().on_trial_complete(0, [trial], trial)

    windows = trial.run_metadata.metric_n_steps["score"]
    assert windows == {"5": [0.25, 0.75, 1.0, 2.0, 3.0], "10": [0.5, 0.25, 0.75, 1.0, 2.0, 3.0]}
    after = trial.run_metadata.get_json_state()
    assert after.count("CLOUDPICKLE_FALLBACK") == pickled - 2  # the two windows
    assert len(after) < len(before)
    restored = _TrainingRunMetadata.from_json_state(after)  # what a resumed run reads
    assert restored.metric_n_steps == {"score": windows}
    assert restored.metric_analysis == trial.run_metadata.metric_analysis
