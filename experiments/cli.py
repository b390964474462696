"""The `tunefleet` command.

    tunefleet run SPEC.yaml [--address A] [--storage DIR] [--name N] [--set key=value]... [-v]
    tunefleet validate SPEC.yaml [--set key=value]...

Exit codes: 0 done; 1 the experiment ran but every trial failed, or an unexpected error;
2 the spec or the command line is wrong (one line on stderr, Ray never started);
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata as importlib_metadata

from tunefleet.cluster import ClusterError
from tunefleet.experiments.loading import SpecError, load_spec
from tunefleet.experiments.plan import Plan, make_plan
from tunefleet.experiments.progress import format_value
from tunefleet.experiments.results import ITERATIONS_FILE, TRIALS_FILE, flatten
from tunefleet.experiments.runner import RunError, RunOptions, RunSummary, experiment_dir, run_plan
from tunefleet.search import SpaceError
from tunefleet.trainables.resolve import TrainableError

__all__ = ["main"]

USER_ERRORS = (SpecError, SpaceError, TrainableError, RunError, ClusterError)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"tunefleet: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tunefleet", description="Hyperparameter tuning on Ray Tune from one YAML file."
    )
    parser.add_argument("--version", action="version", version=f"tunefleet {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def spec_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("spec", help="the experiment's YAML file")
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a spec value, e.g. --set search.num_samples=8 (repeatable)",
        )
        sub.add_argument(
            "--storage", default="results", help="results root: folder or URI (default: ./results)"
        )
        sub.add_argument("--name", help="experiment name (default: the spec's `name`)")
        sub.add_argument(
            "-v", "--verbose", action="store_true", help="Ray's own tables, worker logs, tracebacks"
        )
        return sub

    run = spec_command("run", "run an experiment")
    run.add_argument(
        "--address",
        help="join a running Ray cluster (`auto` or HOST:PORT) instead of an embedded one",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing experiment of the same name"
    )
    run.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop the experiment at the first failed trial (for debugging)",
    )
    spec_command("validate", "check a spec and print the resolved plan, without running it")

    resume = commands.add_parser(
        "resume",
        help="finish an interrupted experiment, or add trials to a finished one",
        description="Finish an interrupted experiment (finished trials are kept, unfinished "
        "ones continue from their checkpoints), or --extend a finished one with N more trials "
        "whose searcher knows every earlier result. Ray's saved state is unpickled: resume "
        "only folders you trust.",
    )
    resume.add_argument("experiment", help="the experiment folder, <storage>/<name>")
    resume.add_argument("--extend", type=int, metavar="N", help="run N more trials")
    resume.add_argument("--address", help="join a running Ray cluster instead of an embedded one")
    resume.add_argument(
        "-v", "--verbose", action="store_true", help="Ray's own tables, worker logs, tracebacks"
    )
    return parser


def _version() -> str:
    try:
        return importlib_metadata.version("tunefleet")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    # Like `python -m`, resolve the spec's import paths against the current folder.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if args.command == "resume":
        return _resume(args)
    try:
        overrides = list(args.overrides)
        if getattr(args, "fail_fast", False):
            overrides += ["failure.fail_fast=true", "failure.max_failures=0"]
        spec, raw = load_spec(args.spec, overrides)
        plan = make_plan(spec, raw)
        options = RunOptions(
            storage=args.storage,
            name=args.name,
            address=getattr(args, "address", None),
            verbose=args.verbose,
            overwrite=getattr(args, "overwrite", False),
        )
        if args.command == "validate":
            print(plan.describe(experiment_dir=experiment_dir(plan, options)))
            print("spec is valid.")
            return EXIT_OK
        summary = run_plan(plan, options)
    except USER_ERRORS as exc:
        print(f"tunefleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tunefleet: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _unexpected(exc, args.verbose)
    return _finish(plan, summary)


def _finish(plan: Plan, summary: RunSummary) -> int:
    print(_summary_text(plan, summary))
    if summary.unfinished:
        print(
            f"tunefleet: interrupted with {summary.unfinished} trials unfinished; continue "
            f"with: tunefleet resume {summary.experiment_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.all_failed else EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    from tunefleet.experiments.resume import resume_experiment

    if args.extend is not None and args.extend < 1:
        print("tunefleet: error: --extend: give a positive number of trials.", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(address=args.address, verbose=args.verbose)
    try:
        plan, summary = resume_experiment(args.experiment, options, extend=args.extend)
    except USER_ERRORS as exc:
        print(f"tunefleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tunefleet: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _unexpected(exc, args.verbose)
    return _finish(plan, summary)


def _unexpected(exc: Exception, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(
        f"tunefleet: {type(exc).__name__}: {first} (run with -v for the traceback)",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _summary_text(plan: Plan, summary: RunSummary) -> str:
    spec = plan.spec
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(summary.statuses.items()))
    lines = [f"{spec.name}: {summary.trials} trials ({counts}) in {summary.wall_s:.1f} s"]
    if summary.best_trial is not None and summary.best_value is not None:
        lines.append(
            f"best {spec.metric} = {format_value(summary.best_value)} (trial {summary.best_trial})"
        )
        flat = {k: v for k, v in flatten(summary.best_config).items() if k in spec.space.searched}
        lines += [f"  {k} = {format_value(v)}" for k, v in flat.items()]
    else:
        lines.append(f"no trial reported {spec.metric}.")
    exp = summary.experiment_dir
    lines += [
        f"results: {exp}/{TRIALS_FILE}, {exp}/{ITERATIONS_FILE}",
        f'  pandas.read_parquet("{exp}/{TRIALS_FILE}")',
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
