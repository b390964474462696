"""The `tracking:` section: MLflow and TensorBoard logging through Ray Tune's own callbacks.

    tracking:
      tensorboard: true                      # TBXLoggerCallback: event files per trial folder
      mlflow: {tracking_uri: "sqlite:///mlflow.db", experiment_name: digits}

`tensorboard` writes `events.out.tfevents.*` into each trial's folder under the experiment
(`tensorboard --logdir <storage>/<name>`); it needs `tensorboardX` (`pip install
'tunefleet[tensorboard]'`; Ray Tune's own dependency set usually brings it). `mlflow` logs
one MLflow run per trial (config as params, every result as metrics) with
`ray.air.integrations.mlflow.MLflowLoggerCallback`; it needs `pip install 'tunefleet[mlflow]'`.
Both packages load only when the section asks for them, and a missing one is a one-line
error before Ray starts.
"""

from __future__ import annotations

from typing import Any

from tunefleet.experiments.spec.optional_sections import TrackingSettings, check_tracking

__all__ = ["tracking_callbacks"]


def tracking_callbacks(settings: TrackingSettings, *, experiment: str) -> list[Any]:
    """Ray Tune's logger callbacks for the switched-on tools (`check_tracking` first).

    Args:
        settings: The spec's `tracking:` section.
        experiment: The MLflow experiment name when the section gives none.
    """
    check_tracking(settings)
    callbacks: list[Any] = []
    if settings.tensorboard:
        # Needs the optional tensorboardX: loaded only when the spec asks for it.
        from ray.tune.logger import TBXLoggerCallback

        callbacks.append(TBXLoggerCallback())
    if settings.mlflow is not None:
        # Needs the optional mlflow: loaded only when the spec asks for it.
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        callbacks.append(
            MLflowLoggerCallback(
                tracking_uri=settings.mlflow.tracking_uri,
                experiment_name=settings.mlflow.experiment_name or experiment,
            )
        )
    return callbacks
