"""Small, deterministic trainables for tests: what they report follows from the config."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tunefleet.trainables import report


def expected_score(config: dict[str, Any], step: int) -> float:
    """What `linear` reports at iteration `step` (1-based)."""
    return float(config["x"]) * step + float(config.get("offset", 0.0))


def linear(config: dict[str, Any]) -> None:
    """Reports `score = x * step + offset` and `loss = 1 / step` for `steps` iterations."""
    for step in range(1, int(config.get("steps", 3)) + 1):
        report(
            {
                "score": expected_score(config, step),
                "loss": 1.0 / step,
                "group": {"step2": step * 2},
            }
        )


def fails_when_large(config: dict[str, Any]) -> None:
    """Like `linear`, but raises at iteration 2 when x > 0.5."""
    for step in range(1, 4):
        if step == 2 and config["x"] > 0.5:
            raise ValueError(f"x too large: {config['x']}")
        report({"score": expected_score(config, step)})


def two_args(config: dict[str, Any], other: int) -> None:
    """Not a trainable: it needs two arguments."""


class Counter:
    """A plain class trainable (no Ray import): value = start + rate * steps taken.

    It raises once at step `fail_at` when `fail_marker` names a file that does not exist
    yet (and creates it), to test recovery from its checkpoints.
    """

    def setup(self, config: dict[str, Any]) -> None:
        self.config = config
        self.steps = 0

    def step(self) -> dict[str, Any]:
        self.steps += 1
        marker = self.config.get("fail_marker")
        if marker and self.steps == self.config.get("fail_at") and not Path(marker).exists():
            Path(marker).touch()
            raise RuntimeError("injected failure")
        return {
            "value": self.config["start"] + self.config["rate"] * self.steps,
            "steps": self.steps,
        }

    def save(self, directory: str) -> None:
        Path(directory, "steps").write_text(str(self.steps))

    def restore(self, directory: str) -> None:
        self.steps = int(Path(directory, "steps").read_text())


class NoCheckpoints:
    """A class trainable that cannot checkpoint (no save/restore)."""

    def setup(self, config: dict[str, Any]) -> None:
        self.x = config["x"]

    def step(self) -> dict[str, Any]:
        return {"score": self.x}


def slow_counter(config: dict[str, Any]) -> None:
    """Counts to `steps` taking `sleep` seconds a step, checkpointing every step; reports
    `resumed` (the step it restarted from) on its first result after a restore."""
    import tempfile
    import time

    from tunefleet.trainables import get_checkpoint

    start, resumed = 0, None
    checkpoint = get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = resumed = int(Path(directory, "step").read_text())
    for step in range(start + 1, int(config["steps"]) + 1):
        time.sleep(float(config["sleep"]))
        metrics: dict[str, Any] = {"score": expected_score(config, step), "step": step}
        if resumed is not None:
            metrics["resumed"], resumed = resumed, None
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "step").write_text(str(step))
            report(metrics, checkpoint=directory)


def until_released(config: dict[str, Any]) -> None:
    """Reports `score` as `linear` does, and `step`, every `sleep` seconds until the file
    `config["release"]` exists: a trial that lasts until the test is done with it (at most
    `max_steps` steps, a safety net)."""
    import time

    for step in range(1, int(config.get("max_steps", 10_000)) + 1):
        report({"score": expected_score(config, step), "step": step})
        if Path(config["release"]).exists():
            return
        time.sleep(float(config["sleep"]))


def logs_config(config: dict[str, Any]) -> None:
    """Appends the config it received to the file `config["log"]` (one JSON line, in the
    order trials start), sleeps `config["sleep_s"]`, then reports `score = -(x - 0.3)^2`
    plus the trial's seed (`seed + __trial_index__`, as the wrappers derive it)."""
    import json
    import time

    with open(config["log"], "a", encoding="utf-8") as f:
        f.write(json.dumps(config, sort_keys=True) + "\n")
    time.sleep(float(config.get("sleep_s", 0.0)))
    seed = int(config.get("seed", 0)) + int(config.get("__trial_index__", 0))
    report({"score": -((float(config["x"]) - 0.3) ** 2), "trial_seed": seed})


def _holding_a_lock() -> Any:
    lock = threading.Lock()

    def train(config: dict[str, Any]) -> None:
        with lock:
            report({"score": float(config["x"])})

    return train


#: A function trainable Ray cannot serialize (its closure holds a lock): the run fails after
#: Ray is up and before any trial starts.
holds_a_lock = _holding_a_lock()


def records_modules(config: dict[str, Any]) -> None:
    """Writes the modules its worker process has loaded (JSON, to `config["modules"]`) and
    reports `score = x` once."""
    import json
    import sys

    Path(config["modules"]).write_text(json.dumps(sorted(sys.modules)))
    report({"score": float(config["x"])})
