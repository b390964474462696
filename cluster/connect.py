"""Connects the driver to Ray: an embedded local instance, or a running cluster.

A plain `ray.init()` joins whatever cluster `/tmp/ray/ray_current_cluster` names (left by an
earlier `ray start`), so tunefleet asks for `address="local"` unless told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["ClusterError", "RayConnection", "connect"]


class ClusterError(RuntimeError):
    """Ray could not be reached or started; the message says what to check."""


@dataclass(frozen=True)
class RayConnection:
    """Where the driver is connected.

    Attributes:
        address: The cluster address, or `local` for an embedded instance.
        started_here: Whether this process started (and will stop) the connection.
        cpus: CPUs the cluster offers.
        gpus: GPUs the cluster offers.
        nodes: Alive nodes.
    """

    address: str
    started_here: bool
    cpus: float
    gpus: float
    nodes: int


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
    """
    import ray

    if ray.is_initialized():
        yield _describe("existing", started_here=False)
        return
    level = logging.INFO if verbose else logging.ERROR
    try:
        if address is None:
            ray.init(
                address="local",
                include_dashboard=False,
                num_cpus=num_cpus,
                log_to_driver=verbose,
                logging_level=level,
            )
        else:
            ray.init(address=address, log_to_driver=verbose, logging_level=level)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "an embedded local Ray" if address is None else f"Ray at {address!r}"
        raise ClusterError(f"could not start {where}: {exc}".splitlines()[0]) from exc
    try:
        yield _describe(address or "local", started_here=True)
    finally:
        ray.shutdown()


def _describe(address: str, *, started_here: bool) -> RayConnection:
    import ray

    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return RayConnection(
        address=address,
        started_here=started_here,
        cpus=float(resources.get("CPU", 0)),
        gpus=float(resources.get("GPU", 0)),
        nodes=nodes,
    )
