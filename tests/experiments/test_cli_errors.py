"""Every subcommand answers bad input with one line, `tunefleet: error: ...`, and the
documented exit code (2: a wrong spec or command line; 1: the command could not be carried
out, or an unexpected error), never a traceback. In-process: no Ray is started."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tunefleet.common.errors import TunefleetError
from tunefleet.experiments import cli
from tunefleet.experiments.cli import main

BAD_KEY = """
name: bad
trainable: tests.support.trainables:linear
metirc: score
mode: max
space:
  x: {uniform: [0.0, 1.0]}
"""

SUBMIT_TO = ["--address", "http://127.0.0.1:8265", "--storage", "/tmp/results"]
# (argv with {tmp} for an empty folder, exit code, what the line says)
BAD_INPUT = [
    (["run", "{tmp}/nope.yaml"], 2, "{tmp}/nope.yaml: no such file."),
    (["run", "{tmp}/bad.yaml", "--name", "no/slash"], 2, "--name: 'no/slash' is not a usable"),
    (["run"], 2, "the following arguments are required: spec"),
    (["validate", "{tmp}/bad.yaml"], 2, "metirc: unknown key; did you mean 'metric'?"),
    (["resume", "{tmp}"], 2, "no spec.yaml here; give the folder `tunefleet run` wrote"),
    (["resume", "{tmp}", "--extend", "0"], 2, "--extend: give a positive number of trials."),
    (["show", "{tmp}/nothing"], 2, "nothing is not a folder; pass an experiment folder."),
    (["show", "{tmp}", "--top", "0"], 2, "--top: give a positive number of trials."),
    (["evaluate", "{tmp}"], 2, "{tmp} has no spec.yaml; pass the folder a `tunefleet run` wrote"),
    (["report", "{tmp}"], 2, "has no trials.parquet"),
    (["export", "{tmp}/nothing"], 2, "nothing: no such folder; give the experiment folder"),
    (["export", "{tmp}", "--mode", "median"], 2, "argument --mode: invalid choice: 'median'"),
    (["dashboard", "{tmp}/nothing"], 2, "nothing"),
    (["dashboard", "{tmp}", "--port", "http"], 2, "argument --port: invalid int value: 'http'"),
    (["cluster", "up", "{tmp}/nope.yaml"], 2, "{tmp}/nope.yaml: no such cluster config file."),
    (
        ["cluster", "submit", "{tmp}/nope.yaml", "--working-dir", "{tmp}", *SUBMIT_TO],
        2,
        "{tmp}/nope.yaml: no such file.",
    ),
    (["schema", "{tmp}/spec.yaml"], 2, "unrecognized arguments: {tmp}/spec.yaml"),
    (["tune", "{tmp}"], 2, "argument command: invalid choice: 'tune'"),
]


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(BAD_KEY)
    return tmp_path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("tunefleet: error: "), captured.err
    return captured.err.rstrip("\n")


@pytest.mark.parametrize(("argv", "code", "says"), BAD_INPUT, ids=lambda v: str(v)[:40])
def test_bad_input_is_one_line_and_the_documented_exit_code(
    argv: list[str], code: int, says: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.format(tmp=folder) for a in argv]) == code
    assert says.format(tmp=folder) in _one_error_line(capsys)


def test_every_subcommand_is_checked_with_bad_input() -> None:
    assert set(cli._COMMANDS) <= {argv[0] for argv, _, _ in BAD_INPUT}


def test_an_unreachable_cluster_is_a_runtime_failure_exit_1(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp", reason="Ray's job client needs ray[default]")
    for variable in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(variable, raising=False)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = folder / "bad.yaml"
    argv = ["cluster", "submit", str(spec), "--working-dir", str(folder)]
    argv += ["--address", f"http://127.0.0.1:{port}", "--storage", "/tmp/results"]
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"tunefleet: error: could not reach the Ray job server at {argv[-3]}")


@pytest.mark.parametrize("verbose", [False, True])
def test_an_unexpected_error_is_one_line_exit_1_and_a_traceback_with_v(
    verbose: bool, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = folder / "exp"
    exp.mkdir()
    for name in ("trials.parquet", "iterations.parquet"):
        (exp / name).write_bytes(b"PAR1 not a Parquet file")  # a corrupted file
    assert main(["show", str(exp), *(["-v"] if verbose else [])]) == 1
    err = capsys.readouterr().err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("tunefleet: error: unexpected ArrowInvalid: ")
    assert last.endswith("(run with -v for the traceback)")
    if verbose:
        assert err.startswith("Traceback (most recent call last):")
    else:
        assert err.count("\n") == 1


def test_every_project_error_is_a_tunefleet_error_with_its_builtin_base() -> None:
    from tunefleet.cluster import ClusterError, ClusterInputError, ClusterUnavailable
    from tunefleet.common import MissingDependencyError
    from tunefleet.experiments.analysis.dashboard import DashboardError
    from tunefleet.experiments.analysis.experiment import AnalysisError
    from tunefleet.experiments.results.export import ExportError
    from tunefleet.experiments.run.final_evaluation import FinalError
    from tunefleet.experiments.run.runner import RunError
    from tunefleet.experiments.spec.errors import SpecError
    from tunefleet.search import SpaceError
    from tunefleet.search.combinations import SearchConfigError
    from tunefleet.trainables.resolve import TrainableError

    usage = [SpecError, SpaceError, SearchConfigError, TrainableError, RunError, FinalError]
    usage += [DashboardError]
    usage += [AnalysisError, ExportError, ClusterInputError, MissingDependencyError]
    for error in usage:
        assert issubclass(error, TunefleetError) and error.exit_code == 2, error
    assert issubclass(ClusterError, TunefleetError) and ClusterError.exit_code == 1
    assert issubclass(ClusterUnavailable, ClusterError) and ClusterUnavailable.exit_code == 1
    assert issubclass(ClusterError, RuntimeError)
    assert issubclass(MissingDependencyError, ImportError)
    for error in usage[:-2]:
        assert issubclass(error, ValueError), error
