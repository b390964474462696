"""The `tunefleet` command line: every subcommand's arguments and help (argparse).

`parser()` builds it; `tunefleet.experiments.cli` runs what it parses. A usage error exits
with `EXIT_USAGE` and one line naming `--help`.
"""

from __future__ import annotations

import argparse
from importlib import metadata as importlib_metadata
from typing import TypeAlias

from tunefleet.common.ray_compat import installed_ray_version
from tunefleet.experiments.results.pickled_state import trust_notice

__all__ = ["EXIT_USAGE", "parser"]

EXIT_USAGE = 2  # a wrong command line, as a wrong spec (`TunefleetError`'s default)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"tunefleet: error: {message} (see `{self.prog} --help`)\n")


_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def parser() -> argparse.ArgumentParser:
    """The `tunefleet` command's argument parser: every subcommand, its arguments and help."""
    root = _Parser(
        prog="tunefleet", description="Hyperparameter tuning on Ray Tune from one YAML file."
    )
    root.add_argument(
        "--version",
        action="version",
        version=f"tunefleet {_version()} (Ray {installed_ray_version()})",
    )
    commands = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _add_run,
        _add_validate,
        _add_schema,
        _add_resume,
        _add_show,
        _add_evaluate,
        _add_report,
        _add_export,
        _add_dashboard,
        _add_cluster,
    ):
        add(commands)
    return root


def _command(commands: _Commands, name: str, help_text: str, description: str = "") -> _Parser:
    return commands.add_parser(name, help=help_text, description=description or help_text)


def _verbose(sub: argparse.ArgumentParser, text: str = "tracebacks of unexpected errors") -> None:
    sub.add_argument("-v", "--verbose", action="store_true", help=text)


def _experiment(
    sub: argparse.ArgumentParser, text: str = "the experiment folder, <storage>/<name>"
) -> None:
    sub.add_argument("experiment", help=text)


def _address(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--address", help="join a running Ray cluster instead of an embedded one")


def _spec_arguments(sub: argparse.ArgumentParser) -> None:
    """What `run` and `validate` share: the spec, overrides, where results go."""
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
    _verbose(sub, "Ray's own tables, worker logs, tracebacks")


def _add_run(commands: _Commands) -> None:
    run = _command(commands, "run", "run an experiment")
    _spec_arguments(run)
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


def _add_validate(commands: _Commands) -> None:
    text = "check a spec and print the resolved plan, without running it"
    _spec_arguments(_command(commands, "validate", text))


def _add_schema(commands: _Commands) -> None:
    text = "print the spec's JSON Schema (for editors and validators)"
    _verbose(_command(commands, "schema", text))


def _add_resume(commands: _Commands) -> None:
    resume = _command(
        commands,
        "resume",
        "finish an interrupted experiment, or add trials to a finished one",
        "Finish an interrupted experiment (finished trials are kept, unfinished ones continue "
        "from their checkpoints), or --extend a finished one with N more trials whose "
        f"searcher knows every earlier result. {trust_notice('resume')}",
    )
    _experiment(resume)
    resume.add_argument("--extend", type=int, metavar="N", help="run N more trials")
    _address(resume)
    _verbose(resume, "Ray's own tables, worker logs, tracebacks")


def _add_show(commands: _Commands) -> None:
    show = _command(
        commands,
        "show",
        "print an experiment's leaderboard",
        "Print a one-line summary and the top trials of an experiment (it may still be running).",
    )
    _experiment(show)
    show.add_argument("--top", type=int, default=10, metavar="K", help="trials listed (10)")
    _verbose(show)


def _add_evaluate(commands: _Commands) -> None:
    evaluate = _command(
        commands,
        "evaluate",
        "retrain the best configs with new seeds and score the test split",
        "Retrain the top-k configs of a finished experiment with new seeds (as Ray tasks) "
        "and score them on the held-out test split; writes final.parquet.",
    )
    _experiment(evaluate)
    evaluate.add_argument("--top", type=int, metavar="K", help="configs (spec's final.top_k, 3)")
    evaluate.add_argument("--seeds", type=int, metavar="N", help="seeds per config (final.seeds)")
    _address(evaluate)
    _verbose(evaluate, "Ray's own logs and tracebacks")


def _add_report(commands: _Commands) -> None:
    report = _command(
        commands,
        "report",
        "write an HTML report with plots",
        "Write report.html and one PNG per plot (needs matplotlib: pip install "
        "'tunefleet[report]').",
    )
    _experiment(report)
    report.add_argument(
        "--out",
        help="local output folder (default: <experiment>/report, or ./report-<name> for an "
        "experiment on an object store)",
    )
    _verbose(report)


def _add_export(commands: _Commands) -> None:
    export = _command(
        commands,
        "export",
        "rebuild trials.parquet and iterations.parquet from Ray's files",
        "Rebuild the Parquet files of an experiment folder (local or a URI such as s3://...) "
        "from Ray's experiment state and per-trial result.json: a plain Ray Tune run, or a "
        "tunefleet run whose files were lost (then iterations.parquet holds each trial's "
        f"last result only). {trust_notice('export')}",
    )
    _experiment(export, "the experiment folder Ray wrote, <storage>/<name>")
    export.add_argument("--metric", help="target metric (default: the folder's spec.yaml)")
    export.add_argument("--mode", choices=["min", "max"], help="min or max (default: spec.yaml)")
    export.add_argument("--overwrite", action="store_true", help="replace existing Parquet files")
    _verbose(export)


def _add_dashboard(commands: _Commands) -> None:
    dashboard = _command(
        commands,
        "dashboard",
        "serve a live web view of experiments (optuna-dashboard)",
        "Serve optuna-dashboard over the Parquet results of one experiment folder or of every "
        "experiment under a storage root (a folder or a URI such as s3://...), following "
        "running experiments as their files are rewritten. Read-only, and without "
        "authentication: it binds 127.0.0.1 unless --host says otherwise. Needs "
        "pip install 'tunefleet[dashboard]'.",
    )
    dashboard.add_argument("location", help="an experiment folder, or a storage root")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    _verbose(dashboard)


def _add_cluster(commands: _Commands) -> None:
    cluster = _command(
        commands,
        "cluster",
        "submit to a Ray cluster, or start, stop and enter one",
        "Ray jobs and Ray's cluster launcher (see cluster/README.md).",
    )
    actions = cluster.add_subparsers(dest="action", required=True, parser_class=_Parser)
    _add_submit(actions)
    for action, text in (
        ("up", "start or update the cluster a launcher YAML describes (ray up)"),
        ("down", "stop the cluster and release its machines (ray down)"),
        ("attach", "open a shell on the cluster's head node (ray attach)"),
    ):
        sub = _command(actions, action, text)
        sub.add_argument("config", help="the launcher's cluster YAML, e.g. cluster/aws.yaml")
        _verbose(sub)


def _add_submit(actions: _Commands) -> None:
    submit = _command(
        actions,
        "submit",
        "run a spec on a cluster as a Ray job, following its logs",
        "Upload the working folder and run `tunefleet run SPEC --address auto` on the "
        "cluster's head as a Ray job; prints the job id and follows its logs.",
    )
    submit.add_argument("spec", help="the experiment's YAML file, inside --working-dir")
    submit.add_argument(
        "--address", required=True, help="the dashboard's address, e.g. http://127.0.0.1:8265"
    )
    submit.add_argument(
        "--storage", required=True, help="results root as the cluster sees it (URI or /path)"
    )
    submit.add_argument("--working-dir", default=".", help="folder uploaded (default: .)")
    submit.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value (repeatable)",
    )
    submit.add_argument("--name", help="experiment name (default: the spec's `name`)")
    submit.add_argument("--overwrite", action="store_true", help="replace an experiment")
    submit.add_argument("--no-follow", action="store_true", help="print the job id and return")
    _verbose(submit)


def _version() -> str:
    try:
        return importlib_metadata.version("tunefleet")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"
