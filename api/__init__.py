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

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.common.errors import TunefleetError as TunefleetError
    from tunefleet.experiments.analysis.experiment import Experiment as Experiment
    from tunefleet.experiments.analysis.experiment import load as load
    from tunefleet.running import ExperimentRun as ExperimentRun
    from tunefleet.running import Interrupted as Interrupted
    from tunefleet.running import resume as resume
    from tunefleet.running import run as run
    from tunefleet.running import shutdown as shutdown
    from tunefleet.running import validate as validate

    __version__: str

_exported, __dir__ = lazy_exports(__name__)


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
