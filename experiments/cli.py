"""The `tunefleet` command.

    tunefleet run SPEC.yaml [--address A] [--storage DIR] [--name N] [--set key=value]... [-v]
        [--dashboard [--dashboard-host H] [--dashboard-port P]]
    tunefleet validate SPEC.yaml [--set key=value]...
    tunefleet resume EXPERIMENT_DIR [--extend N]
    tunefleet show EXPERIMENT_DIR [--top K]
    tunefleet report EXPERIMENT_DIR [--out DIR]
    tunefleet export EXPERIMENT_DIR [--metric M --mode min|max] [--overwrite]
    tunefleet dashboard LOCATION [--host 127.0.0.1] [--port 8080]
    tunefleet cluster submit SPEC --address http://HEAD:8265 --storage URI
    tunefleet cluster up|down|attach CLUSTER.yaml

Exit codes: 0 done; 1 the experiment ran but every trial failed, Ray could not be started or
the cluster reached or joined (one line on stderr), or an unexpected error; 2 the spec or the
command line is wrong (one line on stderr, Ray never started); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING

from tunefleet.cluster import (
    ClusterError,
    ClusterUnavailable,
    check_address,
    discard_early_start,
    start_early,
)
from tunefleet.common.timeline import mark
from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.trust import trust_notice
from tunefleet.experiments.spec.experiment import NAME_PATTERN
from tunefleet.experiments.spec.hints import advise
from tunefleet.experiments.spec.loading import SpecError, load_spec
from tunefleet.experiments.spec.plan import Plan, make_plan
from tunefleet.search import SpaceError
from tunefleet.trainables.resolve import TrainableError, module_exists

if TYPE_CHECKING:
    from tunefleet.experiments.run.runner import RunSummary

# The runner, results recorder and progress printer import Ray Tune, pandas and pyarrow
# (seconds): `run` imports them only once Ray's start is under way (see `_run_or_validate`),
# the other commands only when they need them.

__all__ = ["main"]

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
    run.add_argument(
        "--dashboard", action="store_true", help="serve a live web view of the run (see dashboard)"
    )
    run.add_argument("--dashboard-host", default="127.0.0.1", help="its address (127.0.0.1)")
    run.add_argument("--dashboard-port", type=int, default=8080, help="its port (8080)")
    spec_command("validate", "check a spec and print the resolved plan, without running it")

    resume = commands.add_parser(
        "resume",
        help="finish an interrupted experiment, or add trials to a finished one",
        description="Finish an interrupted experiment (finished trials are kept, unfinished "
        "ones continue from their checkpoints), or --extend a finished one with N more trials "
        f"whose searcher knows every earlier result. {trust_notice('resume')}",
    )
    resume.add_argument("experiment", help="the experiment folder, <storage>/<name>")
    resume.add_argument("--extend", type=int, metavar="N", help="run N more trials")
    resume.add_argument("--address", help="join a running Ray cluster instead of an embedded one")
    resume.add_argument(
        "-v", "--verbose", action="store_true", help="Ray's own tables, worker logs, tracebacks"
    )

    show = commands.add_parser(
        "show", help="print an experiment's leaderboard", description="Print a one-line "
        "summary and the top trials of an experiment (it may still be running)."
    )  # fmt: skip
    show.add_argument("experiment", help="the experiment folder, <storage>/<name>")
    show.add_argument("--top", type=int, default=10, metavar="K", help="trials listed (10)")

    evaluate = commands.add_parser(
        "evaluate", help="retrain the best configs with new seeds and score the test split",
        description="Retrain the top-k configs of a finished experiment with new seeds (as "
        "Ray tasks) and score them on the held-out test split; writes final.parquet.",
    )  # fmt: skip
    evaluate.add_argument("experiment", help="the experiment folder, <storage>/<name>")
    evaluate.add_argument("--top", type=int, metavar="K", help="configs (spec's final.top_k, 3)")
    evaluate.add_argument("--seeds", type=int, metavar="N", help="seeds per config (final.seeds)")
    evaluate.add_argument("--address", help="join a running Ray cluster instead of an embedded one")
    evaluate.add_argument(
        "-v", "--verbose", action="store_true", help="Ray's own logs and tracebacks"
    )

    report = commands.add_parser(
        "report", help="write an HTML report with plots", description="Write report.html "
        "and one PNG per plot (needs matplotlib: pip install 'tunefleet[report]')."
    )  # fmt: skip
    report.add_argument("experiment", help="the experiment folder, <storage>/<name>")
    report.add_argument("--out", help="output folder (default: <experiment>/report)")

    export = commands.add_parser(
        "export", help="rebuild trials.parquet and iterations.parquet from Ray's files",
        description="Rebuild the Parquet files of an experiment folder (local or a URI such "
        "as s3://...) from Ray's experiment state and per-trial result.json: a plain Ray Tune "
        "run, or a tunefleet run whose files were lost (then iterations.parquet holds each "
        f"trial's last result only). {trust_notice('export')}",
    )  # fmt: skip
    export.add_argument("experiment", help="the experiment folder Ray wrote, <storage>/<name>")
    export.add_argument("--metric", help="target metric (default: the folder's spec.yaml)")
    export.add_argument("--mode", choices=["min", "max"], help="min or max (default: spec.yaml)")
    export.add_argument("--overwrite", action="store_true", help="replace existing Parquet files")

    dashboard = commands.add_parser(
        "dashboard", help="serve a live web view of experiments (optuna-dashboard)",
        description="Serve optuna-dashboard over the Parquet results of one experiment folder "
        "or of every experiment under a storage root (a folder or a URI such as s3://...), "
        "following running experiments as their files are rewritten. Read-only, and without "
        "authentication: it binds 127.0.0.1 unless --host says otherwise. Needs "
        "pip install 'tunefleet[dashboard]'.",
    )  # fmt: skip
    dashboard.add_argument("location", help="an experiment folder, or a storage root")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")

    cluster = commands.add_parser(
        "cluster", help="submit to a Ray cluster, or start, stop and enter one",
        description="Ray jobs and Ray's cluster launcher (see cluster/README.md).",
    )  # fmt: skip
    actions = cluster.add_subparsers(dest="action", required=True, parser_class=_Parser)
    submit = actions.add_parser(
        "submit", help="run a spec on a cluster as a Ray job, following its logs",
        description="Upload the working folder and run `tunefleet run SPEC --address auto` "
        "on the cluster's head as a Ray job; prints the job id and follows its logs.",
    )  # fmt: skip
    submit.add_argument("spec", help="the experiment's YAML file, inside --working-dir")
    submit.add_argument(
        "--address", required=True, help="the dashboard's address, e.g. http://127.0.0.1:8265"
    )
    submit.add_argument(
        "--storage", required=True, help="results root as the cluster sees it (URI or /path)"
    )
    submit.add_argument("--working-dir", default=".", help="folder uploaded (default: .)")
    submit.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec value (repeatable)",
    )  # fmt: skip
    submit.add_argument("--name", help="experiment name (default: the spec's `name`)")
    submit.add_argument("--overwrite", action="store_true", help="replace an experiment")
    submit.add_argument("--no-follow", action="store_true", help="print the job id and return")
    for action, text in (
        ("up", "start or update the cluster a launcher YAML describes (ray up)"),
        ("down", "stop the cluster and release its machines (ray down)"),
        ("attach", "open a shell on the cluster's head node (ray attach)"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("config", help="the launcher's cluster YAML, e.g. cluster/aws.yaml")
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
    if args.command in ("show", "report", "export", "cluster", "dashboard"):
        return _tool(args)
    try:
        if getattr(args, "address", None) is not None:
            check_address(args.address)  # milliseconds, before seconds go into the trainable
        if args.command == "evaluate":
            return _evaluate(args)
        outcome = _resume(args) if args.command == "resume" else _run_or_validate(args)
    except ClusterUnavailable as exc:  # a runtime failure, not a wrong command line
        _error(exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("tunefleet: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            _error(exc)
            return EXIT_USAGE
        return _unexpected(exc, args.verbose)
    finally:
        discard_early_start()  # a Ray started early that the run never used
    if isinstance(outcome, int):
        return outcome
    plan, summary = outcome
    print(_summary_text(plan, summary))
    if plan.spec.baseline is not None:
        from tunefleet.experiments.analysis.baseline_and_final import baseline_text

        exp, metric, mode = summary.experiment_dir, plan.spec.target_metric, plan.spec.target_mode
        print(baseline_text(exp, metric=metric, mode=mode, best=summary.best_value) or "")
    if plan.spec.final is not None:
        from tunefleet.experiments.analysis.baseline_and_final import final_text

        print(final_text(summary.experiment_dir) or "final evaluation: not run.")
    if summary.unfinished:
        print(
            f"tunefleet: interrupted with {summary.unfinished} trials unfinished; continue "
            f"with: tunefleet resume {summary.experiment_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.all_failed else EXIT_OK


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix (exit code 2)."""
    # These three live beside Ray Tune, pandas and optuna-dashboard's server: loaded on an error.
    from tunefleet.experiments.analysis.dashboard import DashboardError
    from tunefleet.experiments.run.claim import RunError
    from tunefleet.experiments.run.final_evaluation import FinalError

    return (SpecError, SpaceError, TrainableError, RunError, ClusterError, FinalError,
            DashboardError)  # fmt: skip


def _run_or_validate(args: argparse.Namespace) -> int | tuple[Plan, RunSummary]:
    overrides = list(args.overrides)
    if getattr(args, "fail_fast", False):
        overrides += ["failure.fail_fast=true", "failure.max_failures=0"]
    if args.name is not None and not re.fullmatch(NAME_PATTERN, args.name):
        raise SpecError(
            f"--name: {args.name!r} is not a usable name; use letters, digits, '.', '_' "
            "and '-', starting with a letter or digit."
        )
    if getattr(args, "dashboard", False):
        from tunefleet.experiments.analysis.dashboard import require_dashboard

        require_dashboard()  # before Ray starts
    spec, raw = load_spec(args.spec, overrides)
    embedded = args.command == "run" and getattr(args, "address", None) is None
    if embedded and module_exists(spec.trainable):  # not for a mistyped path: it fails fast
        start_early(verbose=args.verbose)  # Ray starts while the trainable is imported
    plan = make_plan(spec, raw)
    # Ray Tune (seconds) loads here, while Ray starts: the runner, recorder and progress.
    from tunefleet.experiments.run.runner import RunOptions, experiment_dir, run_plan

    mark("imports_done")
    for line in advise(plan.spec, plan.trainable):  # once, before Ray starts
        print(f"warning: {line}", file=sys.stderr)
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
    with _dashboard_beside(args, experiment_dir(plan, options)):
        return plan, run_plan(plan, options)


def _dashboard_beside(args: argparse.Namespace, location: str) -> AbstractContextManager[object]:
    if not getattr(args, "dashboard", False):
        return nullcontext()
    from tunefleet.experiments.analysis.dashboard import beside

    return beside(location, host=args.dashboard_host, port=args.dashboard_port)


def _resume(args: argparse.Namespace) -> tuple[Plan, RunSummary]:
    # Ray Tune and pandas: loaded by the commands that run trials only.
    from tunefleet.experiments.run.claim import RunError
    from tunefleet.experiments.run.resume import resume_experiment
    from tunefleet.experiments.run.runner import RunOptions

    if args.extend is not None and args.extend < 1:
        raise RunError("--extend: give a positive number of trials.")
    options = RunOptions(address=args.address, verbose=args.verbose)
    return resume_experiment(args.experiment, options, extend=args.extend)


def _evaluate(args: argparse.Namespace) -> int:
    # pandas and Ray: loaded by this command only.
    from tunefleet.experiments.analysis.baseline_and_final import final_text
    from tunefleet.experiments.run.final_evaluation import evaluate_dir

    evaluate_dir(args.experiment, top=args.top, seeds=args.seeds, address=args.address,
                 verbose=args.verbose)  # fmt: skip
    print(final_text(args.experiment) or "")
    return EXIT_OK


def _tool(args: argparse.Namespace) -> int:
    """`show`, `report`, `dashboard` and `cluster ...`: commands that run no experiment here."""
    # pandas and optuna-dashboard's server: loaded by the commands that read results.
    from tunefleet.experiments.analysis import AnalysisError
    from tunefleet.experiments.analysis.dashboard import DashboardError

    try:
        if args.command == "show":
            from tunefleet.experiments.analysis.experiment import load
            from tunefleet.experiments.analysis.show import leaderboard_text

            if args.top < 1:
                raise AnalysisError("--top: give a positive number of trials.")
            print(leaderboard_text(load(args.experiment), k=args.top))
            from tunefleet.experiments.analysis.baseline_and_final import final_text

            final = final_text(args.experiment)
            if final is not None:
                print(final)
            return EXIT_OK
        if args.command == "report":
            from tunefleet.experiments.analysis.report import write_report

            print(f"report: {write_report(args.experiment, args.out)}")
            return EXIT_OK
        if args.command == "export":
            return _export(args)
        if args.command == "dashboard":
            from tunefleet.experiments.analysis.dashboard import serve

            serve(args.location, host=args.host, port=args.port)
            return EXIT_OK
        if args.action == "submit":
            from tunefleet.cluster.jobs import submit

            status = submit(
                args.spec,
                address=args.address,
                storage=args.storage,
                working_dir=args.working_dir,
                overrides=args.overrides,
                follow=not args.no_follow,
                name=args.name,
                overwrite=args.overwrite,
            )
            return EXIT_FAILED if status in ("FAILED", "STOPPED") else EXIT_OK
        from tunefleet.cluster import launcher

        code: int = getattr(launcher, args.action)(args.config)
        return code
    except (AnalysisError, ClusterError, DashboardError, ImportError) as exc:
        _error(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _export(args: argparse.Namespace) -> int:
    from tunefleet.experiments.results.export import ExportError, describe, export_experiment

    try:
        summary = export_experiment(
            args.experiment,
            metric=args.metric,
            mode=args.mode,
            overwrite=args.overwrite,
            warn=lambda line: print(line, file=sys.stderr),
        )
    except ExportError as exc:
        _error(exc)
        return EXIT_USAGE
    print(describe(summary))
    return EXIT_OK


def _error(exc: Exception) -> None:
    """Prints a user error as one line: characters that would break it (a newline in a key
    or a file name, say) are written as escapes."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(exc))
    print(f"tunefleet: error: {text}", file=sys.stderr)


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
    # Loaded with the runner already (Ray Tune); named here, after the run.
    from tunefleet.experiments.results.recorder import flatten
    from tunefleet.experiments.run.progress import format_value

    spec = plan.spec
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(summary.statuses.items()))
    lines = [f"{spec.name}: {summary.trials} trials ({counts}) in {summary.wall_s:.1f} s"]
    if summary.best_trial is not None and summary.best_value is not None:
        lines.append(
            f"best {spec.target_metric} = {format_value(summary.best_value)} "
            f"(trial {summary.best_trial})"
        )
        flat = {k: v for k, v in flatten(summary.best_config).items() if k in spec.space.searched}
        lines += [f"  {k} = {format_value(v)}" for k, v in flat.items()]
    else:
        lines.append(f"no trial reported a finite {spec.target_metric}.")
    if summary.invalid_metrics:
        n = len(summary.invalid_metrics)
        tid, why = next(iter(summary.invalid_metrics.items()))
        lines.append(
            f"{n} trial{'' if n == 1 else 's'} without a usable {spec.target_metric} (NaN, "
            f"infinite or never reported) counted as failed, e.g. trial {tid}: "
            f"{why.split(';')[0]}; see the invalid_metric column."
        )
    exp = summary.experiment_dir
    lines += [
        f"results: {exp}/{TRIALS_FILE}, {exp}/{ITERATIONS_FILE}",
        f'  pandas.read_parquet("{exp}/{TRIALS_FILE}")',
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
