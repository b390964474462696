"""The `tunefleet` command.

    tunefleet run SPEC.yaml [--address A] [--storage DIR] [--name N] [--set key=value]... [-v]
        [--dashboard [--dashboard-host H] [--dashboard-port P]]
    tunefleet validate SPEC.yaml [--set key=value]...
    tunefleet resume EXPERIMENT_DIR [--extend N]
    tunefleet show EXPERIMENT_DIR [--top K]
    tunefleet evaluate EXPERIMENT_DIR [--top K] [--seeds N]
    tunefleet report EXPERIMENT_DIR [--out DIR]
    tunefleet export EXPERIMENT_DIR [--metric M --mode min|max] [--overwrite]
    tunefleet dashboard LOCATION [--host 127.0.0.1] [--port 8080]
    tunefleet cluster submit SPEC --address http://HEAD:8265 --storage URI
    tunefleet cluster up|down|attach CLUSTER.yaml

Every command answers a `TunefleetError` with one line on stderr, `tunefleet: error: ...`,
and the error's exit code; any other error with one line too (`-v` shows the traceback).
Exit codes: 0 done; 1 every trial failed, Ray or the cluster could not be reached, or an
unexpected error; 2 the spec or the command line is wrong (Ray never started); 130
interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from tunefleet.cluster import check_address, discard_early_start, start_early
from tunefleet.common import startup
from tunefleet.common.errors import TunefleetError
from tunefleet.common.timeline import mark
from tunefleet.experiments.arguments import EXIT_USAGE, parser
from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.recorder import flatten
from tunefleet.experiments.run.progress import format_value
from tunefleet.experiments.run.runner import (
    RunError,
    RunOptions,
    RunSummary,
    experiment_dir,
    run_plan,
)
from tunefleet.experiments.spec.advice import advise
from tunefleet.experiments.spec.experiment import NAME_PATTERN
from tunefleet.experiments.spec.loading import SpecError, load_spec
from tunefleet.experiments.spec.plan import Plan, make_plan
from tunefleet.trainables.resolve import module_exists

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


# Running a command -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command != "run":
        startup.resume()  # (`run`: right before Ray Tune's fit, in the runner)
    # Like `python -m`, resolve the spec's import paths against the current folder.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if args.command in ("run", "resume", "evaluate") and args.address is not None:
            check_address(args.address)  # milliseconds, before seconds go into the trainable
        return _COMMANDS[args.command](args)
    except TunefleetError as exc:
        _error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tunefleet: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _unexpected(exc, args.verbose)
    finally:
        discard_early_start()  # a Ray started early that the run never used


def _run(args: argparse.Namespace) -> int:
    plan, options = _plan(args)
    with _dashboard_beside(args, experiment_dir(plan, options)):
        summary = run_plan(plan, options)
    return _finished(plan, summary)


def _dashboard_beside(args: argparse.Namespace, location: str) -> AbstractContextManager[object]:
    if not args.dashboard:
        return nullcontext()
    # The dashboard's packages (an optional extra) load only for `run --dashboard`.
    from tunefleet.experiments.analysis.dashboard import beside

    return beside(location, host=args.dashboard_host, port=args.dashboard_port)


def _validate(args: argparse.Namespace) -> int:
    plan, options = _plan(args)
    print(plan.describe(experiment_dir=experiment_dir(plan, options)))
    print("spec is valid.")
    return EXIT_OK


def _plan(args: argparse.Namespace) -> tuple[Plan, RunOptions]:
    """`run` and `validate`: the spec, overrides applied, checked and resolved."""
    overrides = list(args.overrides)
    if getattr(args, "fail_fast", False):
        overrides += ["failure.fail_fast=true", "failure.max_failures=0"]
    if args.name is not None and not re.fullmatch(NAME_PATTERN, args.name):
        raise SpecError(
            f"--name: {args.name!r} is not a usable name; use letters, digits, '.', '_' "
            "and '-', starting with a letter or digit."
        )
    if getattr(args, "dashboard", False):
        # The dashboard's packages (an optional extra) load only for `run --dashboard`.
        from tunefleet.experiments.analysis.dashboard import require_dashboard

        require_dashboard()  # before Ray starts
    spec, raw = load_spec(args.spec, overrides)
    embedded = args.command == "run" and getattr(args, "address", None) is None
    if embedded and module_exists(spec.trainable):  # not for a mistyped path: it fails fast
        start_early(verbose=args.verbose)  # Ray starts while the trainable is imported
    plan = make_plan(spec, raw)
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
    return plan, options


def _resume(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.experiments.run.resume import resume_experiment

    if args.extend is not None and args.extend < 1:
        raise RunError("--extend: give a positive number of trials.")
    options = RunOptions(address=args.address, verbose=args.verbose)
    return _finished(*resume_experiment(args.experiment, options, extend=args.extend))


def _finished(plan: Plan, summary: RunSummary) -> int:
    """Prints what a run or a resumed run did; its exit code."""
    print(_summary_text(plan, summary))
    spec = plan.spec
    if spec.baseline is not None or spec.final is not None:
        # Loaded only when the spec has a baseline or a final evaluation to report.
        from tunefleet.experiments.analysis.baseline_and_final import baseline_text, final_text
    if spec.baseline is not None:
        exp, metric, mode = summary.experiment_dir, spec.target_metric, spec.target_mode
        print(baseline_text(exp, metric=metric, mode=mode, best=summary.best_value) or "")
    if spec.final is not None:
        print(final_text(summary.experiment_dir) or "final evaluation: not run.")
    if summary.unfinished:
        print(
            f"tunefleet: interrupted with {summary.unfinished} trials unfinished; continue "
            f"with: tunefleet resume {summary.experiment_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.all_failed else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.experiments.analysis.baseline_and_final import final_text
    from tunefleet.experiments.analysis.experiment import AnalysisError, load
    from tunefleet.experiments.analysis.show import leaderboard_text

    if args.top < 1:
        raise AnalysisError("--top: give a positive number of trials.")
    print(leaderboard_text(load(args.experiment), k=args.top))
    final = final_text(args.experiment)
    if final is not None:
        print(final)
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.experiments.analysis.baseline_and_final import final_text
    from tunefleet.experiments.run.final_evaluation import evaluate_dir

    evaluate_dir(args.experiment, top=args.top, seeds=args.seeds, address=args.address,
                 verbose=args.verbose)  # fmt: skip
    print(final_text(args.experiment) or "")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.experiments.analysis.report import write_report

    print(f"report: {write_report(args.experiment, args.out)}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.experiments.results.export import describe, export_experiment

    summary = export_experiment(
        args.experiment,
        metric=args.metric,
        mode=args.mode,
        overwrite=args.overwrite,
        warn=lambda line: print(line, file=sys.stderr),
    )
    print(describe(summary))
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    # The dashboard's packages (an optional extra) load only for this command.
    from tunefleet.experiments.analysis.dashboard import serve

    serve(args.location, host=args.host, port=args.port)
    return EXIT_OK


def _cluster(args: argparse.Namespace) -> int:
    # Each command loads only what it uses (`run` never loads the analysis or the export).
    from tunefleet.cluster import launcher
    from tunefleet.cluster.jobs import submit

    if args.action != "submit":
        code: int = getattr(launcher, args.action)(args.config)
        return code
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


def _schema(args: argparse.Namespace) -> int:
    from tunefleet.experiments.spec.schema import schema_text  # pydantic only: no Ray

    sys.stdout.write(schema_text())
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "validate": _validate,
    "schema": _schema,
    "resume": _resume,
    "show": _show,
    "evaluate": _evaluate,
    "report": _report,
    "export": _export,
    "dashboard": _dashboard,
    "cluster": _cluster,
}


def _error(exc: Exception) -> None:
    """Prints a user error as one line: characters that would break it (a newline in a key
    or a file name, say) are written as escapes."""
    print(f"tunefleet: error: {_one_line(str(exc))}", file=sys.stderr)


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _unexpected(exc: Exception, verbose: bool) -> int:
    """An error tunefleet did not foresee: one line (the traceback with -v); exit code 1."""
    if verbose:
        traceback.print_exc()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(
        f"tunefleet: error: unexpected {type(exc).__name__}: {_one_line(first)} "
        "(run with -v for the traceback)",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _summary_text(plan: Plan, summary: RunSummary) -> str:
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
