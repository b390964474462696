"""Writing a run's results to an object store without stopping on the store's blips.

During a run, results bound for an object store are written on a thread of their own
(`BackgroundWrites`): Ray's controller, which hands each trial its next step, never waits on
the store. A write that fails on a transient error (the store unreachable, a connection
reset, HTTP 5xx, throttling) is tried again, waiting longer after each failure, while the
trials train on; each write holds every result recorded so far, so the first one that
succeeds loses nothing. One line on stderr says when the writes start failing, one when they
succeed again:

    tunefleet: warning: cannot write results to s3://bucket/exp (AWS Error NETWORK_CONNECTION
        during PutObject operation); retrying while the run goes on, for up to 300 s
    tunefleet: results written again to s3://bucket/exp after 21 s

An outage longer than `results.storage_outage_s`, or an error that waiting does not cure (a
missing bucket, refused credentials), stops the run with one line that says how to go on.
Local folders are written by the controller itself, as before: a full disk or a permission
error ends the run at once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TextIO

from tunefleet.common.locations import LocationError
from tunefleet.experiments.spec.experiment import ResultsSettings

__all__ = ["BackgroundWrites", "StorageOutage", "run_outage"]

FIRST_WAIT_S = 1.0  # before the first retry; doubled after each failure
LONGEST_WAIT_S = 30.0  # between retries: how long the files may lag once the store is back


class StorageOutage:
    """When to try a failing results write again, and when to stop the run.

    Args:
        where: The results folder, for the messages.
        limit_s: The longest outage ridden through (`results.storage_outage_s`).
        advice: What to do once the run stopped, e.g.
            `continue it with: tunefleet resume s3://bucket/exp`.
        stream: Where the two lines go (stderr by default).
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        where: str,
        limit_s: float,
        advice: str,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self.limit_s = limit_s
        self.advice = advice
        self._stream = stream
        self._clock = clock
        self._since: float | None = None  # start of the first failed write of this outage
        self._next_try = float("-inf")
        self._wait_s = FIRST_WAIT_S
        self._stopped: LocationError | None = None

    @property
    def failing(self) -> bool:
        """Whether the last write failed (an outage is being ridden through)."""
        return self._since is not None

    def wait_s(self) -> float:
        """Seconds until a write may be tried (0 unless an outage's wait is running)."""
        return max(0.0, self._next_try - self._clock())

    def attempt(self, write: Callable[[], None]) -> bool:
        """Runs `write` once.

        Returns:
            True if it succeeded; False if it failed on a transient error and is to be tried
            again in `wait_s` seconds.

        Raises:
            LocationError: The run must stop: the error is not transient, the outage has
                lasted longer than `limit_s`, or the run was already stopped. The message
                is the store's error followed by `advice`.
        """
        if self._stopped is not None:
            raise self._stopped
        started = self._clock()
        try:
            write()
        except LocationError as exc:
            self._failed(exc, started)
            return False
        if self._since is not None:
            lasted = self._clock() - self._since
            self._line(f"tunefleet: results written again to {self.where} after {lasted:.0f} s")
        self._since, self._next_try, self._wait_s = None, float("-inf"), FIRST_WAIT_S
        return True

    def _failed(self, error: LocationError, started: float) -> None:
        now = self._clock()
        since = started if self._since is None else self._since
        if not error.transient:
            self._stop(f"{_clause(error)}; the run stopped; once that is fixed, {self.advice}")
        if now - since >= self.limit_s:
            self._stop(
                f"{_clause(error)}; the results could not be written for {now - since:.0f} s "
                f"(results.storage_outage_s: {self.limit_s:g}), so the run stopped; "
                f"{self.advice}"
            )
        if self._since is None:
            self._line(
                f"tunefleet: warning: cannot write results to {self.where} ({error.cause}); "
                f"retrying while the run goes on, for up to {self.limit_s:g} s"
            )
            self._since = since
        else:
            self._wait_s = min(self._wait_s * 2, LONGEST_WAIT_S)
        # The last try falls at the limit, so that an outage just past it still ends the run.
        self._next_try = min(now + self._wait_s, since + self.limit_s)

    def _stop(self, message: str) -> NoReturn:
        self._stopped = LocationError(message, exit_code=1)
        raise self._stopped from None

    def _line(self, text: str) -> None:
        stream = self._stream or sys.stderr
        # On a terminal the progress line is redrawn in place: clear it first.
        stream.write(("\r\033[K" if stream.isatty() else "") + text + "\n")
        stream.flush()


class BackgroundWrites:
    """Runs writes on a thread of its own, one at a time, retried as `outage` says.

    Each write replaces the one still waiting (it holds every result); the thread ends when
    nothing is left to write, and starts again with the next write.

    Args:
        outage: When to retry, and when to give up.
    """

    def __init__(self, outage: StorageOutage) -> None:
        self.outage = outage
        self._lock = threading.Condition()
        self._next: Callable[[], None] | None = None
        self._busy = False  # a thread is writing, or waiting to retry
        self._error: BaseException | None = None

    @property
    def pending(self) -> bool:
        """Whether a write has not succeeded yet."""
        with self._lock:
            return self._busy

    def submit(self, write: Callable[[], None]) -> None:
        """Queues `write` in place of the one waiting, if any.

        Raises:
            LocationError: If the writes failed for good (`check`).
        """
        with self._lock:
            self._raise()
            self._next = write
            if not self._busy:
                self._busy = True
                threading.Thread(target=self._run, name="tunefleet-results", daemon=True).start()
            self._lock.notify_all()

    def check(self) -> None:
        """Raises what stopped the writes (an outage too long, an error that waiting does not
        cure, or any other error of a write), if anything did."""
        with self._lock:
            self._raise()

    def wait(self) -> None:
        """Waits until every write submitted has succeeded.

        Raises:
            LocationError: If the writes failed for good (`check`).
        """
        with self._lock:
            while self._busy and self._error is None:
                self._lock.wait()
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._next is not None and self.outage.wait_s() > 0:
                    self._lock.wait(timeout=self.outage.wait_s())
                write, self._next = self._next, None
                if write is None:
                    self._busy = False
                    self._lock.notify_all()
                    return
            try:
                written = self.outage.attempt(write)
            except BaseException as exc:  # raised on the controller's thread, to stop the run
                with self._lock:
                    self._error, self._busy = exc, False
                    self._lock.notify_all()
                return
            if not written:
                with self._lock:
                    if self._next is None:  # try this one again, unless a newer one came
                        self._next = write


def run_outage(experiment_dir: str, info: Mapping[str, Any]) -> StorageOutage:
    """The `StorageOutage` of a run that records into `experiment_dir`.

    Args:
        experiment_dir: The results folder.
        info: The recorder's metadata: the spec as run (`spec`, validated before the run;
            its `results.storage_outage_s` or the default), and `baseline` for a baseline.
    """
    spec = info.get("spec")
    results = spec.get("results") if isinstance(spec, Mapping) else None
    raw = results if isinstance(results, Mapping) else {}
    limit_s = ResultsSettings.model_validate(raw).storage_outage_s
    # A baseline's folder is not an experiment of its own: its run is made again, whole.
    advice = (
        "run the same command again"
        if info.get("baseline")
        else f"continue it with: tunefleet resume {experiment_dir}"
    )
    return StorageOutage(where=experiment_dir, limit_s=limit_s, advice=advice)


def _clause(error: LocationError) -> str:
    """The error's message as the first clause of a longer one."""
    return str(error).rstrip().rstrip(".")
