"""Connects the driver to Ray: an embedded local instance, or a running cluster.

A plain `ray.init()` joins whatever cluster `/tmp/ray/ray_current_cluster` names (left by an
earlier `ray start`), so tunefleet asks for `address="local"` unless told otherwise.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tunefleet.cluster.capacity import (
    AutoscalerLimits,
    ClusterShape,
    autoscaler_limits,
    cluster_shape,
)
from tunefleet.cluster.errors import ClusterError, ClusterInputError, ClusterUnavailable
from tunefleet.cluster.join import join
from tunefleet.common.timeline import mark

__all__ = [
    "ClusterError",
    "ClusterInputError",
    "ClusterUnavailable",
    "RayConnection",
    "connect",
    "discard_early_start",
    "keep_connected",
    "shutdown",
    "start_early",
]


@dataclass(frozen=True)
class RayConnection:
    """Where the driver is connected.

    Attributes:
        address: The cluster address, or `local` for an embedded instance.
        started_here: Whether this process started (and will stop) the connection.
        cpus: CPUs the cluster offers.
        gpus: GPUs the cluster offers.
        nodes: Alive nodes.
        node_resources: (CPUs, GPUs) of each alive node: a trial runs on one node, so
            how many trials fit is counted node by node.
        shape: The nodes and, on a cluster with an autoscaler, how far it may grow.
        autoscaler: The autoscaler's limits; None without one (or where unreadable).
    """

    address: str
    started_here: bool
    cpus: float
    gpus: float
    nodes: int
    node_resources: tuple[tuple[float, float], ...] = ()
    shape: ClusterShape | None = None
    autoscaler: AutoscalerLimits | None = None


@contextmanager
def connect(
    address: str | None = None, *, verbose: bool = False, num_cpus: int | None = None
) -> Iterator[RayConnection]:
    """Connects to Ray for the duration of the block.

    Args:
        address: None for an embedded local instance (never a leftover cluster); `auto`, or
            `HOST:PORT`, or `ray://HOST:PORT` for a running cluster.
        verbose: Forward worker logs and Ray's own messages to the terminal.
        num_cpus: CPUs for an embedded instance (default: all of this machine's).

    If Ray is already initialized in this process (a notebook, a test session), that
    connection is used as it is and left open. Ray puts the driver's working directory on
    its workers' import path, so a user's module next to the spec imports there too.

    Raises:
        ClusterError: If `address` is not a cluster address.
        ClusterUnavailable: If Ray cannot be started, or the cluster reached or joined
            (within seconds: see `tunefleet.cluster.join`).
    """
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    early = _take_early_start() if address is None else None
    if ray.is_initialized() and early is None:
        yield _describe("existing", started_here=False)
        return
    if address is not None:
        join(address, verbose=verbose)
        mark("ray_up")
    else:
        try:
            if early is not None:
                early.result()
            else:
                _init_local(verbose, num_cpus)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterUnavailable(f"could not start an embedded local Ray: {first}") from exc
    try:
        yield _describe(address or "local", started_here=True)
    finally:
        ray.shutdown()
        if early is not None:
            early.release()


#: The address `keep_connected` connected this process to (`local` for an embedded Ray).
_kept: str | None = None


def keep_connected(
    address: str | None = None, *, verbose: bool = False, num_cpus: int | None = None
) -> None:
    """Connects to Ray and leaves the connection open, as a notebook expects: later runs in
    the process reuse it (`connect` uses an initialized Ray as it is) until `shutdown` or
    the interpreter's exit (Ray's own exit hook stops an embedded instance).

    A call for another address than the kept one (a cluster after an embedded Ray, say)
    shuts the kept connection down first; a Ray this process initialized itself otherwise
    (`ray.init` in a cell) is used as it is.

    Args:
        address: None for an embedded local instance; `auto`, `HOST:PORT` or
            `ray://HOST:PORT` for a running cluster.
        verbose: Forward worker logs and Ray's own messages.
        num_cpus: CPUs for an embedded instance (default: all of this machine's).

    Raises:
        ClusterError: If `address` is not a cluster address.
        ClusterUnavailable: If Ray cannot be started, or the cluster reached or joined.
    """
    global _kept
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    wanted = address or "local"
    if ray.is_initialized():
        if _kept is None or _kept == wanted:
            return
        shutdown()
    if address is not None:
        join(address, verbose=verbose)
    else:
        try:
            _init_local(verbose, num_cpus)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterUnavailable(f"could not start an embedded local Ray: {first}") from exc
    _kept = wanted


def shutdown() -> None:
    """Shuts down the connection `keep_connected` opened (an embedded Ray stops with it);
    does nothing when there is none."""
    global _kept
    if _kept is None:
        return
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    _kept = None
    ray.shutdown()


def _init_local(verbose: bool, num_cpus: int | None) -> None:
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    ray.init(
        address="local",
        include_dashboard=False,
        num_cpus=num_cpus,
        log_to_driver=verbose,
        logging_level=logging.INFO if verbose else logging.ERROR,
    )
    mark("ray_up")


class _EarlyStart(threading.Thread):
    """`ray.init` of an embedded local Ray, in the background.

    The thread stays alive until Ray is shut down: Ray's processes are started with a
    parent-death signal, which Linux sends when the *thread* that started them ends.
    """

    def __init__(self, verbose: bool, num_cpus: int | None) -> None:
        super().__init__(name="tunefleet-ray-start", daemon=True)
        self.verbose = verbose
        self.num_cpus = num_cpus
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._released = threading.Event()

    def run(self) -> None:
        try:
            _init_local(self.verbose, self.num_cpus)
        except BaseException as exc:  # handed to the main thread by `result`
            self.error = exc
        self._ready.set()
        self._released.wait()

    def result(self) -> None:
        """Waits for Ray to be up; raises what `ray.init` raised."""
        self._ready.wait()
        if self.error is not None:
            self.release()
            raise self.error
        # Ray sets this handler only when started from the main thread: SIGTERM then
        # exits through Python, and so shuts Ray down.
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_signal)

    def release(self) -> None:
        """Lets the thread end (after `ray.shutdown`)."""
        self._released.set()
        self.join()


def _exit_on_signal(signum: int, frame: Any) -> None:
    sys.exit(signum)


_early: _EarlyStart | None = None


def start_early(*, verbose: bool = False, num_cpus: int | None = None) -> None:
    """Starts an embedded local Ray in a background thread, so that it comes up while the
    driver imports the trainable and builds the search (Ray takes seconds to start);
    the next `connect()` for a local instance waits for it and uses it. Does nothing when
    Ray is already initialized. Call `discard_early_start` when the run may end before
    `connect` (an error), so that the instance is not left running.
    """
    global _early
    # Ray loads on first use (about a second), not when this module is imported; so does
    # the Ray boundary, which imports Ray.
    import ray

    from tunefleet.common.ray_compat import quiet_sigterm_warning

    if _early is not None or ray.is_initialized():
        return
    quiet_sigterm_warning()  # Ray warns that this thread is not the main one
    _early = _EarlyStart(verbose, num_cpus)
    _early.start()


def _take_early_start() -> _EarlyStart | None:
    global _early
    early, _early = _early, None
    return early


def discard_early_start() -> None:
    """Shuts down a Ray that `start_early` started and no `connect` used."""
    early = _take_early_start()
    if early is None:
        return
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    try:
        early.result()
    except BaseException:  # it never came up: nothing to shut down
        return
    ray.shutdown()
    early.release()


def _describe(address: str, *, started_here: bool) -> RayConnection:
    # Ray loads on first use (about a second), not when this module is imported.
    import ray

    resources = ray.cluster_resources()
    alive = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    # An embedded Ray has no autoscaler.
    limits = None if address == "local" else autoscaler_limits()
    shape = cluster_shape(limits)
    return RayConnection(
        address=address,
        started_here=started_here,
        cpus=float(resources.get("CPU", 0)),
        gpus=float(resources.get("GPU", 0)),
        nodes=len(alive),
        node_resources=tuple(
            (float(node.get("CPU", 0)), float(node.get("GPU", 0))) for node in alive
        ),
        shape=shape,
        autoscaler=limits,
    )
