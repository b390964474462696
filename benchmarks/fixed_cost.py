"""The fixed cost of a tuning run: `tunefleet run` against a plain Ray Tune script at its best.

Both run the same 2 no-op trials (each reports `results` results) as whole processes, timed
from the moment the harness starts them until they exit:

- `tunefleet`: `python -m tunefleet.experiments run SPEC` on a spec naming `noop`.
- `Ray Tune script`: this module run as a script (`_plain`), written at its best:
  `ray.init(address="local", include_dashboard=False, ...)` as tunefleet does,
  `reuse_actors=True`, Ray's per-trial loggers off (`TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`) and
  its progress tables off (`verbose=0`).

Per run the harness records the wall time, the CPU time of the whole process tree (the
driver, Ray's services and workers: the harness makes itself the reaper of the processes the
run leaves behind, so that their CPU time is counted as they exit), the driver's peak
resident memory (`VmHWM`, read while it runs) and where the time went: the driver marks
`imports_done`, `ray_up`, `fit_started`, `fit_done` (and tunefleet `results_written`) in a
timeline file (`tunefleet.common.timeline`), and the trainable marks, from each trial's
worker, `worker_started` (the worker process's start), `trial_started` and `first_result`.
With `address`, both join a running cluster instead (see `benchmarks.warm_start`).

    python -m benchmarks fixed-cost --repeats 3
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = [
    "CASES",
    "DRIVER_STEPS",
    "STEPS",
    "WORKER_STEPS",
    "markdown",
    "measure",
    "noop",
    "run",
    "summarize",
]

CASES = ("tunefleet", "Ray Tune script")
DRIVER_STEPS = ("imports_done", "ray_up", "fit_started")
WORKER_STEPS = ("worker_started", "trial_started", "first_result")
STEPS = (*DRIVER_STEPS, *WORKER_STEPS, "fit_done", "results_written")
REPO = Path(__file__).resolve().parents[1]
_PR_SET_CHILD_SUBREAPER = 36


def _mark(path: str | None, step: str, when: float | None = None) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short append per step
            f.write(f"{time.time() if when is None else when:.6f} {step}\n")


def _process_start_time() -> float | None:
    """This process's start, as unix time (from /proc; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")


def noop(config: dict[str, Any]) -> None:
    """A trial that does nothing but report `config["results"]` results, marking in the
    timeline file `config["timeline"]` when its worker process started, when the trial
    started and when it reported its first result."""
    path = config.get("timeline")
    _mark(path, "worker_started", _process_start_time())
    _mark(path, "trial_started")
    from ray import tune  # the trainable's module stays light for the drivers that import it

    for i in range(int(config.get("results", 5))):
        tune.report({"score": float(i)})
        if i == 0:
            _mark(path, "first_result")


def _space(results: int, timeline: str) -> dict[str, Any]:
    return {"x": {"uniform": [0.0, 1.0]}, "results": results, "timeline": timeline}


def _command(case: str, workdir: Path, trials: int, results: int, address: str | None) -> list[str]:
    timeline = str(workdir / "timeline.txt")
    if case == "tunefleet":
        import yaml  # (PyYAML: the harness only)

        spec = workdir / "spec.yaml"
        raw = {
            "name": "fixed-cost",
            "trainable": f"{__name__}:noop",
            "metric": "score",
            "mode": "max",
            "space": _space(results, timeline),
            "search": {"algorithm": "random", "num_samples": trials, "seed": 0},
            "resources": {"cpu": 1},
        }
        spec.write_text(yaml.safe_dump(raw))
        command = [sys.executable, "-m", "tunefleet.experiments", "run", str(spec)]
        command += ["--storage", str(workdir / "results")]
        return command + (["--address", address] if address else [])
    command = [sys.executable, "-m", __name__, str(workdir / "results"), str(trials)]
    return command + [str(results), timeline] + ([address] if address else [])


def measure(
    case: str,
    *,
    trials: int = 2,
    results: int = 5,
    address: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Runs one case as a whole process (from the repository root) and returns its figures.

    Args:
        case: One of `CASES`.
        trials: No-op trials.
        results: Results each trial reports.
        address: Join this running cluster (`HOST:PORT`) instead of starting Ray.
        env: Variables added to the process's environment.

    Returns:
        `wall_s`, `cpu_s` (the process tree's; without `address`, else the driver's),
        `driver_peak_mib`, and `steps`: seconds from the start to each step in `STEPS`
        (None for a step not marked).

    Raises:
        RuntimeError: If the process failed (its output's tail in the message).
    """
    # The harness's own: this module stays free of tunefleet for the plain script's driver.
    from tunefleet.common.timeline import TIMELINE_ENV
    from tunefleet.common.timeline import read as read_timeline

    with tempfile.TemporaryDirectory(prefix="tunefleet-fixed-") as tmp:
        workdir = Path(tmp)
        timeline = workdir / "timeline.txt"
        timeline.touch()
        env = {**os.environ, **(env or {}), TIMELINE_ENV: str(timeline)}
        command = _command(case, workdir, trials, results, address)
        log = workdir / "output.txt"
        tree = _ProcessTree(own=address is None)
        with tree, open(log, "wb") as out:
            started = time.time()
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
            peak_kib, driver_cpu, polls = 0, 0.0, 0
            while proc.poll() is None:
                peak_kib = max(peak_kib, _peak_rss_kib(proc.pid))
                driver_cpu = max(driver_cpu, _cpu_s(proc.pid))
                if polls % 10 == 0:  # every 0.2 s
                    tree.sample()
                polls += 1
                time.sleep(0.02)
            wall = time.time() - started
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-800:]
            raise RuntimeError(f"{case} exited with {proc.returncode}: {tail}")
        first = read_timeline(timeline)
    return {
        "case": case,
        "wall_s": wall,
        "cpu_s": tree.cpu_s(driver=proc.pid, driver_cpu_s=driver_cpu),
        "driver_cpu_s": driver_cpu,
        "cpu_by_process": tree.by_name(driver=proc.pid, driver_cpu_s=driver_cpu),
        "driver_peak_mib": peak_kib / 1024,
        "steps": {step: (first[step] - started if step in first else None) for step in STEPS},
    }


def _cpu_s(pid: int) -> float:
    """A process's own CPU time so far (0 once it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _ProcessTree:
    """The processes a run starts, and their CPU time.

    The harness becomes the reaper of the processes its child leaves behind (Linux
    `PR_SET_CHILD_SUBREAPER`), so that every process of the run stays below it: `sample`
    reads the CPU time so far of each (from /proc), and at the end of the block the harness
    samples and reaps them until none is left (ending any still running after 30 s). A
    process's CPU time is its last sample (a process that exits between two samples loses
    the CPU time it used since the last one: a little, at Ray's shutdown). Processes below
    the harness before the block (an in-process Ray of another case) are left alone. With
    `own` false (a run that joins a running cluster, whose workers are that cluster's), only
    the driver counts.
    """

    def __init__(self, *, own: bool) -> None:
        self.own = own
        self.seen: dict[int, tuple[str, float]] = {}
        self._before: set[int] = set()
        self._libc = ctypes.CDLL(None, use_errno=True) if own else None

    def __enter__(self) -> _ProcessTree:
        if self._libc is not None:
            self._before = set(self._below()[0])
            self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._libc is not None:
                self._reap(deadline=time.time() + 30)
        finally:
            if self._libc is not None:
                self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

    def _below(self) -> tuple[dict[int, tuple[str, float]], list[int]]:
        """(pid -> (name, CPU s)) of every process below the harness that was not there
        before the block, and which of them are the harness's own children."""
        children: dict[int, list[int]] = {}
        info: dict[int, tuple[str, float]] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            name = text[text.index("(") + 1 : text.rindex(")")]
            info[pid] = (name, (int(fields[11]) + int(fields[12])) / tick)
        own = [p for p in children.get(os.getpid(), []) if p not in self._before]
        found: dict[int, tuple[str, float]] = {}
        todo = list(own)
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            found[pid] = info[pid]
        return found, own

    def sample(self) -> list[int]:
        """Records the name and CPU time so far of the run's processes; returns the
        harness's own children among them."""
        if not self.own:
            return []
        found, own = self._below()
        for pid, (name, cpu) in found.items():
            if cpu >= self.seen.get(pid, ("", 0.0))[1]:
                self.seen[pid] = (name, cpu)
        return own

    def _reap(self, *, deadline: float) -> None:
        while True:
            own = self.sample()
            if not own:
                return
            for pid in own:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            if time.time() > deadline:
                for pid in self._below()[0]:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def by_name(self, *, driver: int, driver_cpu_s: float) -> dict[str, float]:
        """CPU seconds by process name (Ray names its workers `ray::...`), the driver apart."""
        totals: dict[str, float] = {"driver": driver_cpu_s}
        for pid, (name, cpu) in self.seen.items():
            if pid != driver:
                totals[name] = totals.get(name, 0.0) + cpu
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def cpu_s(self, *, driver: int, driver_cpu_s: float) -> float:
        """The CPU time of the driver and every process below it."""
        return sum(self.by_name(driver=driver, driver_cpu_s=driver_cpu_s).values())


def summarize(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per case: the median of every figure over its runs (each figure on its own)."""
    rows = []
    for case, results in runs.items():
        steps = {}
        for step in STEPS:
            values = [r["steps"][step] for r in results if r["steps"][step] is not None]
            steps[step] = statistics.median(values) if values else None
        rows.append(
            {
                "case": case,
                "runs": len(results),
                "wall_s": statistics.median(r["wall_s"] for r in results),
                "cpu_s": statistics.median(r["cpu_s"] for r in results),
                "driver_cpu_s": statistics.median(r["driver_cpu_s"] for r in results),
                "driver_peak_mib": statistics.median(r["driver_peak_mib"] for r in results),
                "steps": steps,
                "all_runs": results,
            }
        )
    return rows


def run(*, repeats: int = 3, trials: int = 2, results: int = 5) -> list[dict[str, Any]]:
    """Both cases `repeats` times, alternating (a slow moment of the machine hits both),
    summarized as medians; the rows carry each figure's ratio to the plain script's."""
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for _ in range(repeats):
        for case in CASES:
            runs[case].append(measure(case, trials=trials, results=results))
    rows = summarize(runs)
    plain = rows[-1]
    for row in rows:
        row["vs_plain"] = {
            key: row[key] / plain[key] if plain[key] else None
            for key in ("wall_s", "cpu_s", "driver_cpu_s", "driver_peak_mib")
        }
    return rows


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(rows: list[dict[str, Any]], *, title: str = "no-op trials") -> str:
    """The figures as two markdown tables: totals (with ratios) and the steps' times."""
    lines = [
        "| case | wall s | CPU s (all processes) | driver CPU s | driver peak MiB "
        "| vs plain script |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = r.get("vs_plain") or {}
        ratios = ", ".join(
            f"{label} {ratio[key]:.2f}x"
            for key, label in (("wall_s", "wall"), ("cpu_s", "CPU"), ("driver_peak_mib", "memory"))
            if ratio.get(key) is not None
        )
        lines.append(
            f"| {r['case']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['driver_cpu_s']:.2f} "
            f"| {r['driver_peak_mib']:.0f} | {ratios or '-'} |"
        )
    lines += [
        "",
        "Seconds from the command's start to each step (medians):",
        "",
        "| case | " + " | ".join(STEPS) + " | exit |",
        "| --- | " + " | ".join("---" for _ in STEPS) + " | --- |",
    ]
    for r in rows:
        cells = " | ".join(_s(r["steps"][step]) for step in STEPS)
        lines.append(f"| {r['case']} | {cells} | {r['wall_s']:.2f} |")
    lines.append(
        f"\n({title}; median of {rows[0]['runs']} runs each, the cases alternating; "
        "imports_done: the driver's imports, the trainable's included; worker_started: the "
        "first trial's worker process started; CPU: driver, Ray's services and workers)"
    )
    return "\n".join(lines)


def _plain(storage: str, trials: int, results: int, timeline: str, address: str | None) -> None:
    """The plain Ray Tune script, at its best."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no per-trial loggers
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    from benchmarks.fixed_cost import noop as trainable  # by name, as tunefleet's workers do

    _mark(timeline, "imports_done")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(
            address="local",
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    _mark(timeline, "ray_up")
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0.0, 1.0), "results": results, "timeline": timeline},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=trials, reuse_actors=True
        ),
        run_config=tune.RunConfig(name="fixed-cost", storage_path=storage, verbose=0),
    )
    _mark(timeline, "fit_started")
    grid = tuner.fit()
    _mark(timeline, "fit_done")
    if grid.num_terminated != trials:
        raise SystemExit(f"{grid.num_terminated} of {trials} trials terminated")


if __name__ == "__main__":
    storage, n, per_trial, path = sys.argv[1:5]
    _plain(storage, int(n), int(per_trial), path, sys.argv[5] if len(sys.argv) > 5 else None)
