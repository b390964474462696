"""`tunefleet.run`, `resume`, `validate` and `shutdown`: the command's rules, from Python.

A spec is a YAML file, a mapping written like one, or an `ExperimentSpec`; the trainable is
the spec's `trainable:` import path, or the object itself (a function, a class, a
`TorchTrainable` or `SklearnTrainable`), which Ray ships to its workers by value when it
was defined in `__main__` (a script, a notebook). The spec is checked as `tunefleet run`
checks it, before Ray starts; a wrong one raises the command's one line as a
`TunefleetError`. Ray, once started, stays up for the next run in the same process until
`shutdown()` or the interpreter's exit.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from tunefleet.cluster import check_address, keep_connected
from tunefleet.cluster import shutdown as shutdown_ray
from tunefleet.common.locations import locate
from tunefleet.experiments.analysis.experiment import Experiment, load
from tunefleet.experiments.results.files import SPEC_FILE
from tunefleet.experiments.run.experiment_folder import ExperimentFolder
from tunefleet.experiments.run.runner import (
    RunError,
    RunOptions,
    RunSummary,
    experiment_dir,
    run_plan,
)
from tunefleet.experiments.spec.advice import advise
from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.loading import (
    SpecError,
    apply_overrides,
    read_spec_file,
    validate_spec,
)
from tunefleet.experiments.spec.plan import Plan, make_plan
from tunefleet.search.space_writer import space_to_raw
from tunefleet.trainables.resolve import import_path_of

__all__ = ["ExperimentRun", "Interrupted", "resume", "run", "shutdown", "validate"]

#: The import path recorded for a trainable object that no name reaches (a lambda, say).
UNNAMED = "__main__:trainable"

SpecLike = str | Path | Mapping[str, Any] | ExperimentSpec
Overrides = Mapping[str, Any] | Sequence[str]


@dataclasses.dataclass(frozen=True, eq=False)
class ExperimentRun(Experiment):
    """The results of a run, as `tunefleet.load` reads them, with the run's summary.

    Attributes:
        summary: What the run did: trial counts by status, the best trial, its value and
            config, the wall time.
    """

    summary: RunSummary | None = None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or the notebook's interrupt) stopped a run; Ray Tune saved its state first.

    Attributes:
        location: The experiment folder to give `tunefleet.resume`.
    """

    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location


def validate(
    spec: SpecLike,
    *,
    trainable: Any = None,
    overrides: Overrides | None = None,
    name: str | None = None,
) -> Plan:
    """Checks a spec as `tunefleet validate` does, without starting Ray.

    Args:
        spec: A spec file's path (local or a URI), a mapping written like the YAML, or an
            `ExperimentSpec`.
        trainable: The trainable object (function, class or wrapper), in place of the
            spec's `trainable:` import path; None to import that path.
        overrides: `{"search.num_samples": 8}` or `["search.num_samples=8"]`, as `--set`.
        name: The experiment's name, in place of the spec's `name:`.

    Returns:
        The plan; `print(plan.describe())` shows what would run.

    Raises:
        TunefleetError: The command's one-line reason the spec cannot run (a `SpecError`,
            a `TrainableError`, ...).
    """
    raw = _raw_spec(spec, overrides, name)
    given = trainable is not None
    path, reimportable = import_path_of(trainable) if given else (None, True)
    if given:
        named = path or raw.get("trainable") or UNNAMED
        # Where a spec file would say it: after the name.
        raw = {"name": raw.get("name"), "trainable": named, **raw} if "name" in raw else raw
        raw["trainable"] = named
    plan = make_plan(
        validate_spec(raw), raw, trainable=trainable, given_as_object=given and not reimportable
    )
    for line in advise(plan.spec, plan.trainable):
        print(f"warning: {line}", file=sys.stderr)
    return plan


def run(
    spec: SpecLike,
    *,
    trainable: Any = None,
    storage: str | Path | None = None,
    name: str | None = None,
    address: str | None = None,
    overrides: Overrides | None = None,
    overwrite: bool = False,
    dashboard: bool = False,
    verbose: bool = False,
) -> ExperimentRun:
    """Runs an experiment as `tunefleet run` does, and reads its results back.

    Args:
        spec: A spec file's path (local or a URI), a mapping written like the YAML, or an
            `ExperimentSpec`.
        trainable: The trainable object (function, class, `TorchTrainable`,
            `SklearnTrainable`), in place of the spec's `trainable:` import path. One
            defined in `__main__` (a script, a notebook) is shipped to Ray's workers by
            value, and a later `resume` must be given it again.
        storage: The results root: a local folder or a URI (`s3://bucket/path`); default
            `results`.
        name: The experiment's folder under `storage`, in place of the spec's `name:`.
        address: None for an embedded local Ray (started once, kept for later runs until
            `shutdown()`); `auto` or `HOST:PORT` for a running cluster.
        overrides: `{"search.num_samples": 8}` or `["search.num_samples=8"]`, as `--set`.
        overwrite: Replace an experiment already in the folder.
        dashboard: Serve optuna-dashboard over the results while the run lasts.
        verbose: Show Ray's own tables and its workers' logs.

    Returns:
        The results as `tunefleet.load` gives them, with `summary`.

    Raises:
        TunefleetError: The command's one-line reason the spec, the folder or the cluster
            does not do (before Ray starts, where it can be told then).
        Interrupted: Ctrl-C stopped the run; the message says how to resume it.
    """
    plan = validate(spec, trainable=trainable, overrides=overrides)
    options = RunOptions(
        storage=str(storage) if storage is not None else RunOptions.storage,
        name=name,
        address=address,
        verbose=verbose,
        overwrite=overwrite,
        notebook=in_notebook(),
    )
    exp_dir = experiment_dir(plan, options)
    ExperimentFolder(exp_dir, overwrite=overwrite)  # a taken folder fails before Ray starts
    if dashboard:
        # The dashboard's packages (an optional extra) load only when asked for.
        from tunefleet.experiments.analysis.dashboard import require_dashboard

        require_dashboard()  # before Ray starts
    _connect(address, verbose)
    with (
        _dashboard_beside(dashboard, exp_dir),
        _interrupts(exp_dir, given=plan.given_as_object),
    ):
        summary = run_plan(plan, options)
    return _finished(summary, plan)


def resume(
    location: str | Path,
    *,
    trainable: Any = None,
    extend: int | None = None,
    address: str | None = None,
    verbose: bool = False,
) -> ExperimentRun:
    """Finishes an interrupted experiment, or adds trials to one, as `tunefleet resume`.

    Args:
        location: The experiment folder (`<storage>/<name>`) `run` wrote.
        trainable: The trainable object; needed when `run` was given one that its import
            path does not reach (one defined in `__main__`).
        extend: Run this many new trials after the finished ones, the searcher told every
            earlier result; None to finish the unfinished trials.
        address: None for the embedded local Ray; `auto` or `HOST:PORT` for a cluster.
        verbose: Show Ray's own tables and its workers' logs.

    Returns:
        The results (earlier trials included) with the resumed run's `summary`.

    Raises:
        TunefleetError: The one-line reason it cannot be resumed (among them, a trainable
            given as an object to `run` and not given here).
        Interrupted: Ctrl-C stopped it again.
    """
    # Loaded on use: `import tunefleet` stays cheap, and resume restores Ray's state.
    from tunefleet.experiments.run.resume import resume_experiment

    if extend is not None and extend < 1:
        raise RunError(f"extend: give a positive number of trials, got {extend}.")
    exp_dir = str(location)
    options = RunOptions(address=address, verbose=verbose, notebook=in_notebook())
    _connect(address, verbose)
    with _interrupts(exp_dir, given=trainable is not None):
        plan, summary = resume_experiment(exp_dir, options, extend=extend, trainable=trainable)
    return _finished(summary, plan)


def shutdown() -> None:
    """Stops the Ray that `run` or `resume` started (or disconnects from a cluster); the
    next run starts a new one. Does nothing when none is up."""
    shutdown_ray()


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where the progress shows as an output
    updated in place)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    ip = get() if get is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _raw_spec(spec: SpecLike, overrides: Overrides | None, name: str | None) -> dict[str, Any]:
    if isinstance(spec, ExperimentSpec):
        raw = _spec_to_raw(spec)
    elif isinstance(spec, Mapping):
        try:  # a copy, holding only what YAML could (the results keep it as spec.yaml)
            raw = json.loads(json.dumps(dict(spec)))
        except (TypeError, ValueError) as exc:
            raise SpecError(f"spec: holds a value YAML cannot: {exc}.") from None
    elif isinstance(spec, str | Path):
        raw = read_spec_file(spec)
    else:
        raise SpecError(
            f"spec: a {type(spec).__name__} is not a spec; give a file's path, a dict written "
            "like the YAML, or an ExperimentSpec."
        )
    if isinstance(overrides, Mapping):
        overrides = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    elif isinstance(overrides, str):
        overrides = [overrides]
    raw = apply_overrides(raw, overrides or ())
    if name is not None:
        raw["name"] = name
    return raw


def _spec_to_raw(spec: ExperimentSpec) -> dict[str, Any]:
    """The mapping a spec file would hold for `spec` (the results keep it, for resume)."""
    raw = spec.model_dump(mode="json", exclude_unset=True, exclude={"space"})
    raw["space"] = space_to_raw(spec.space)
    if validate_spec(raw) != spec:  # a model changed in ways no spec file could say
        raise SpecError(
            "spec: this ExperimentSpec does not read back from its own YAML; give the spec as "
            "a dict written like the YAML."
        )
    return raw


def _connect(address: str | None, verbose: bool) -> None:
    if address is not None:
        check_address(address)  # milliseconds, before seconds go into Ray
    keep_connected(address, verbose=verbose)


def _dashboard_beside(dashboard: bool, location: str) -> AbstractContextManager[object]:
    if not dashboard:
        return nullcontext()
    # The dashboard's packages (an optional extra) load only when asked for.
    from tunefleet.experiments.analysis.dashboard import beside

    return beside(location)


@contextmanager
def _interrupts(exp_dir: str, *, given: bool) -> Iterator[None]:
    """Turns a KeyboardInterrupt that Ray Tune did not turn into a stop (one raised before
    or after its fit) into `Interrupted`, whose message says how to resume."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        # A run stopped before its first trial leaves no experiment (`ExperimentFolder`).
        if not (locate(exp_dir) / SPEC_FILE).is_file():
            message = "interrupted before the first trial; nothing to resume."
        else:
            message = _resume_hint(exp_dir, 0, given)
        raise Interrupted(message, exp_dir) from None


def _resume_hint(exp_dir: str, unfinished: int, given: bool) -> str:
    """`interrupted with 3 trials unfinished; continue with: tunefleet.resume(...)`."""
    what = f"interrupted with {unfinished} trials unfinished" if unfinished else "interrupted"
    call = f"tunefleet.resume({exp_dir!r}{', trainable=...' if given else ''})"
    return f"{what}; continue with: {call}"


def _finished(summary: RunSummary, plan: Plan) -> ExperimentRun:
    if summary.unfinished:
        hint = _resume_hint(summary.experiment_dir, summary.unfinished, plan.given_as_object)
        raise Interrupted(hint, summary.experiment_dir)
    exp = load(summary.experiment_dir)
    fields = {f.name: getattr(exp, f.name) for f in dataclasses.fields(Experiment)}
    return ExperimentRun(**fields, summary=summary)
