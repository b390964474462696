"""tunefleet: hyperparameter tuning experiments as one YAML spec, Ray Tune underneath, Parquet
results on top; from the `tunefleet` command, or from Python:

    import tunefleet

    exp = tunefleet.run("quickstart.yaml", trainable=train)  # a function, class or wrapper
    exp.top(5)                                                # the leaderboard (pandas)
    tunefleet.resume(exp.path, trainable=train)               # after Ctrl-C
    tunefleet.load("results/quickstart")                      # later, anywhere

The names load their modules on first use (`tunefleet.common.lazy`): `import tunefleet`
imports neither Ray nor torch nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:
    from tunefleet.common.errors import TunefleetError
    from tunefleet.experiments.analysis.experiment import Experiment, load
    from tunefleet.running import (
        ExperimentRun,
        Interrupted,
        resume,
        run,
        shutdown,
        validate,
    )

if TYPE_CHECKING:
    __version__: str

__all__ = [
    "Experiment",
    "ExperimentRun",
    "Interrupted",
    "TunefleetError",
    "__version__",
    "load",
    "resume",
    "run",
    "shutdown",
    "validate",
]

_exported, __dir__ = lazy_exports(
    __name__,
    {
        "TunefleetError": "tunefleet.common.errors",
        "Experiment": "tunefleet.experiments.analysis.experiment",
        "load": "tunefleet.experiments.analysis.experiment",
        "ExperimentRun": "tunefleet.running",
        "Interrupted": "tunefleet.running",
        "resume": "tunefleet.running",
        "run": "tunefleet.running",
        "shutdown": "tunefleet.running",
        "validate": "tunefleet.running",
    },
)


def __getattr__(name: str) -> Any:
    if name != "__version__":
        return _exported(name)
    # Read on first use: importlib.metadata takes longer to import than tunefleet itself.
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("tunefleet")
    except PackageNotFoundError:  # a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
