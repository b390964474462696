"""The dashboard of real runs, read in a real headless browser (Debian's `chromium`): a run
followed while its trials finish one by one (`tunefleet run --dashboard`), and the
`tunefleet dashboard` command over a storage root with a multi-objective and a
conditional-space experiment."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import REPO
from tunefleet.experiments.analysis.dashboard import Dashboard
from tunefleet.experiments.cli import main

pytest.importorskip("optuna_dashboard")
pytestmark = [pytest.mark.slow, pytest.mark.browser]

Browser = Callable[[str], str]


@pytest.fixture(scope="module")
def browser() -> Browser:
    """Loads a page in headless Chromium and returns its visible text once scripts ran."""
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it (apt-get install chromium)")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")

    def text(url: str) -> str:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                 f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--dump-dom", url],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", proc.stdout, flags=re.S)
        return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))

    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}/api/{path}", timeout=30) as response:
        return json.load(response)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):  # the server or a file not there yet
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def trials_shown(text: str) -> tuple[int, list[str]]:
    """From a study's trial list page: the count it states, and each trial's state."""
    count = re.search(r"\b(\d+) Trials?\b", text)
    states = re.findall(r"\bTrial \d+ (Complete|Running|Waiting|Fail|Pruned)\b", text)
    return (int(count.group(1)) if count else -1), states


LIVE = """
name: live
trainable: tests.support.dashboard_trainables:gated
metric: score
mode: max
space: {{x: {{grid: [1, 2, 3]}}, steps: 2, gate: {gate}}}
search: {{num_samples: 1, max_concurrent: 1}}
results: {{flush_every_s: 1}}
"""


def test_run_with_dashboard_shows_a_running_experiment_as_its_trials_finish(
    tmp_path: Path, browser: Browser
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    spec = tmp_path / "live.yaml"
    spec.write_text(LIVE.format(gate=gate))
    port, storage = free_port(), tmp_path / "results"
    ray_tmp = tempfile.mkdtemp(prefix="tfdash", dir="/tmp")  # short: Ray's socket paths
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunefleet.experiments", "run", str(spec), "--storage",
         str(storage), "--dashboard", "--dashboard-port", str(port)],
        cwd=REPO, env={**os.environ, "RAY_TMPDIR": ray_tmp}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def states() -> list[tuple[str, int]]:
        trials = api(base, "studies/0")["trials"]
        return [(t["state"], len(t["intermediate_values"])) for t in trials]

    try:
        # Trial x=1 reported both steps and waits at its gate; x=2 and x=3 wait their turn.
        wait_for("the first trial running", lambda: states() == [("Running", 2)])
        assert "0. live" in browser(f"{base}/dashboard")
        assert trials_shown(browser(f"{base}/dashboard/studies/0/trials")) == (1, ["Running"])

        (gate / "1").touch()
        wait_for("a second trial", lambda: states() == [("Complete", 2), ("Running", 2)])
        assert trials_shown(browser(f"{base}/dashboard/studies/0/trials")) == (
            2, ["Complete", "Running"]
        )  # fmt: skip
        page = browser(f"{base}/dashboard/studies/0")
        assert "Best Trial (number=0)" in page and "Intermediate values" in page

        (gate / "2").touch()
        (gate / "3").touch()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    finally:
        for x in "123":
            (gate / x).touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert out.splitlines()[0] == f"dashboard: {base}/dashboard (while the run lasts)"
    with pytest.raises(urllib.error.URLError):  # it stopped with the run
        urllib.request.urlopen(f"{base}/api/studies", timeout=10)

    # The finished experiment, served again: every trial complete, in the order Ray made them.
    trials = pd.read_parquet(storage / "live" / "trials.parquet")
    with Dashboard(str(storage / "live"), port=0) as dashboard:
        assert trials_shown(browser(f"{dashboard.url}/studies/0/trials")) == (3, ["Complete"] * 3)
        detail = api(dashboard.url.removesuffix("/dashboard"), "studies/0")
    shown = [next(a["value"] for a in t["user_attrs"] if a["key"] == "trial_id") for t in detail["trials"]]  # fmt: skip
    assert shown == trials["trial_id"].tolist()
    assert [t["values"] for t in detail["trials"]] == [[2.0], [4.0], [6.0]]


MO = """
name: mo
trainable: tests.support.conditional_trainables:trade_off
metric: [accuracy, cost]
mode: [max, min]
space: {x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}
search: {algorithm: optuna, sampler: {name: nsga2, population_size: 4}, num_samples: 6, seed: 0}
"""
CONDITIONAL = """
name: cond
trainable: tests.support.conditional_trainables:echo_conditional
metric: score
mode: max
space:
  optimizer:
    choice:
      sgd: {lr: {loguniform: [1.0e-4, 1.0e-1]}, momentum: {uniform: [0.0, 0.99]}}
      adam: {lr: {loguniform: [1.0e-4, 1.0e-2]}, beta: {choice: [[0.9, 0.99], 0.5]}}
      rmsprop: {lr: {loguniform: [1.0e-3, 1.0e-2]}, centered: true}
  batch: {randint: [16, 64]}
search: {algorithm: hyperopt, num_samples: 8, seed: 1}
"""
BRANCHES = {"sgd": {"lr", "momentum"}, "adam": {"lr", "beta"}, "rmsprop": {"lr"}}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, ray_instance: None) -> Iterator[Path]:
    """A storage root with a finished multi-objective and a conditional-space experiment."""
    folder = tmp_path_factory.mktemp("dashboard")
    for name, text in (("mo", MO), ("cond", CONDITIONAL)):
        spec = folder / f"{name}.yaml"
        spec.write_text(text)
        assert main(["run", str(spec), "--storage", str(folder / "results")]) == 0
    yield folder / "results"


def test_the_dashboard_command_serves_every_experiment_under_a_root(
    root: Path, browser: Browser
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunefleet.experiments", "dashboard", str(root), "--port", str(port)],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the dashboard", lambda: len(api(base, "studies")["study_summaries"]) == 2)
        listed = browser(f"{base}/dashboard")
        assert "0. cond" in listed and "1. mo" in listed
        for study_id, name in enumerate(("cond", "mo")):
            n = len(pd.read_parquet(root / name / "trials.parquet"))
            shown = trials_shown(browser(f"{base}/dashboard/studies/{study_id}/trials"))
            assert shown == (n, ["Complete"] * n), name

        mo = browser(f"{base}/dashboard/studies/1")
        assert "Pareto Front" in mo and "accuracy" in mo and "cost" in mo
        detail = api(base, "studies/1")
        assert detail["directions"] == ["maximize", "minimize"]
        front = pd.read_parquet(root / "mo" / "trials.parquet")["pareto"]
        assert sorted(t["number"] for t in detail["best_trials"]) == front[front].index.tolist()

        cond = browser(f"{base}/dashboard/studies/0")  # importance ranks every parameter
        importance = cond[cond.index("Hyperparameter Importance") : cond.index("Timeline")]
        assert all(p in importance for p in ("optimizer", "batch", "lr", "momentum", "beta"))
        assert "Contour" in browser(f"{base}/dashboard/studies/0/analytics")
        for t in api(base, "studies/0")["trials"]:  # each trial has its branch's parameters
            params = {p["name"]: p["param_external_value"] for p in t["params"]}
            assert set(params) == {"optimizer", "batch"} | BRANCHES[params["optimizer"]]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        f"dashboard: {base}/dashboard (2 experiments in {root}; Ctrl-C stops it)"
    ]
    assert err == ""  # loopback: no warning
