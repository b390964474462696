"""Optional spec sections for a trustworthy result: `final:` (held-out test evaluation),
`baseline:` (a reference config tried first) and `tracking:` (MLflow, TensorBoard).

    final: {top_k: 3, seeds: 3}
    baseline: defaults                   # or {config: {lr: 0.001}}
    tracking: {tensorboard: true, mlflow: {tracking_uri: "sqlite:///mlflow.db"}}
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from tunefleet.common.nesting import flatten
from tunefleet.common.sections import Section
from tunefleet.experiments.spec.errors import SpecError

__all__ = [
    "FINAL_SEED_OFFSET",
    "Baseline",
    "BaselineSettings",
    "FinalSettings",
    "MlflowSettings",
    "TrackingSettings",
    "check_baseline",
    "check_tracking",
]

FINAL_SEED_OFFSET = 10_000
"""Final-evaluation seeds are `seed + FINAL_SEED_OFFSET + i`: distinct from the search's
seeds (`seed`, and `seed + i` for `search.repeat` copy i) as long as `repeat` stays below it."""


class FinalSettings(Section):
    """The final evaluation of the best configs on the held-out test split.

    After the search (or with `tunefleet evaluate EXPERIMENT_DIR`) the `top_k` best configs
    are retrained with `seeds` new seeds each and scored on the validation and the test
    split (see `tunefleet.trainables.contract`); `final.parquet` holds every score.

    Attributes:
        top_k: How many of the best configs to evaluate.
        seeds: Retrains per config, each with its own seed.
        split: The held-out split scored (`test`).
        gap_threshold: A config whose mean validation score beats its mean test score by
            more than this (in the metric's units, sign-corrected for `mode`) is flagged as
            likely overfitting to validation.
    """

    top_k: int = Field(default=3, ge=1)
    seeds: int = Field(default=3, ge=1, lt=FINAL_SEED_OFFSET)
    split: Literal["test"] = "test"
    gap_threshold: float = Field(default=0.02, ge=0)


def _baseline_shorthand(value: Any) -> Any:
    """`baseline: defaults` is short for `baseline: {config: {}}`."""
    return {"config": {}} if value == "defaults" else value


class BaselineSettings(Section):
    """A reference config tried before the search: the first trial, marked `baseline`.

    Attributes:
        config: Values for searched parameters; those left out take the trainable's
            defaults (the wrapper's own, or the function's `config.get` fallbacks), so `{}`
            (`baseline: defaults`) is the library's default configuration.
    """

    config: dict[str, Any] = Field(default_factory=dict)


Baseline = Annotated[
    BaselineSettings,
    # The spec's JSON Schema takes the shorthand too.
    BeforeValidator(
        _baseline_shorthand, json_schema_input_type=Literal["defaults"] | BaselineSettings
    ),
]
"""The `baseline:` field's type: `defaults` or `{config: {...}}`."""


class MlflowSettings(Section):
    """Ray Tune's `MLflowLoggerCallback`: one MLflow run per trial.

    Attributes:
        tracking_uri: Where MLflow stores runs (`sqlite:///mlflow.db`, `http://host:5000`;
            MLflow 3 refuses its old `file://` store unless `MLFLOW_ALLOW_FILE_STORE=true`).
        experiment_name: The MLflow experiment (default: the spec's name).
    """

    tracking_uri: str | None = None
    experiment_name: str | None = None


class TrackingSettings(Section):
    """Trial logging to tools beside the Parquet files, through Ray Tune's own callbacks.

    Attributes:
        tensorboard: Ray Tune's `TBXLoggerCallback` (needs `tunefleet[tensorboard]`):
            event files in each trial's folder.
        mlflow: Ray Tune's `MLflowLoggerCallback` (needs `tunefleet[mlflow]`).
    """

    tensorboard: bool = False
    mlflow: MlflowSettings | None = None


def check_baseline(baseline: BaselineSettings | None, searched: Iterable[str]) -> None:
    """Raises ValueError if `baseline.config` names a key that is not a searched parameter.

    Args:
        baseline: The spec's `baseline:` section, if any.
        searched: The space's searched parameter paths (`model/depth`).
    """
    if baseline is None:
        return
    names = list(searched)
    for key in flatten(baseline.config):
        if key not in names:
            shown = ", ".join(k.replace("/", ".") for k in names) or "none"
            raise ValueError(
                f"baseline.config: {key.replace('/', '.')!r} is not a searched parameter of "
                f"space (searched: {shown}); remove it (constants apply to the baseline too)."
            )


_PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_tracking(settings: TrackingSettings) -> None:
    """Raises `SpecError` naming the extra to install if a switched-on tool is missing."""
    switched = (("tensorboard", settings.tensorboard), ("mlflow", settings.mlflow is not None))
    for key in [k for k, on in switched if on]:
        module, extra = _PACKAGES[key]
        if importlib.util.find_spec(module) is None:
            raise SpecError(
                f"tracking.{key}: needs the {module} package, which is not installed; "
                f"pip install 'tunefleet[{extra}]', or remove tracking.{key}."
            )
