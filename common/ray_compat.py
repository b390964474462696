"""The one module that holds what differs between the Ray versions tunefleet supports, and
its uses of Ray's private or undocumented state.

Supported: Ray 2.55 to 2.60 (`SUPPORTED`, and `ray[tune]>=2.55,<2.61` in pyproject.toml).
Measured differences inside the window and just below it (each with a test in
tests/common/test_ray_compat.py):

- Ray checks that a driver and its cluster run the same minor version, but its error comes
  late and is hard to read: `version_problem` says it first, in one line.
- `ray.exceptions.AuthenticationError` exists from Ray 2.52 on, with token authentication
  (`RAY_AUTH_MODE=token`); older Rays have neither.
- The cluster's Ray version is known to Ray's job client only through a private attribute
  (`cluster_ray_version`).
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

__all__ = [
    "SUPPORTED",
    "authentication_error",
    "cluster_ray_version",
    "minor",
    "ray_version",
    "version_problem",
]

#: The oldest and the newest Ray minor version tunefleet supports, both included.
SUPPORTED = ((2, 55), (2, 60))


def ray_version() -> str:
    """The installed Ray's version (`2.60.0`), read without importing Ray."""
    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return "not installed"


def minor(version: str) -> tuple[int, int] | None:
    """`(2, 60)` for `2.60.1` (or `2.60.0rc1`); None for text that is no version."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def _window() -> str:
    (low_major, low), (high_major, high) = SUPPORTED
    return f"{low_major}.{low} to {high_major}.{high}"


def version_problem(client: str, cluster: str | None) -> str | None:
    """One line saying what to install when this machine's Ray (`client`) and the cluster's
    cannot work together, or None when they can (or the cluster's is unknown).

    Ray needs the same minor version on the driver's machine and the cluster.
    """
    if cluster is None or minor(client) == minor(cluster):
        return None
    cluster_minor = minor(cluster)
    low, high = SUPPORTED
    if cluster_minor is not None and low <= cluster_minor <= high:
        return (
            f"the cluster runs Ray {cluster} and this machine Ray {client}; Ray needs the same "
            f"minor version on both: pip install 'ray[default,tune]=={cluster}' here."
        )
    return (
        f"the cluster runs Ray {cluster}, which tunefleet does not support (Ray {_window()}); "
        f"use a cluster image of the Ray this machine has, rayproject/ray:{client}-py311-cpu, "
        f"or install a supported Ray on both."
    )


def cluster_ray_version(client: Any) -> str | None:
    """The Ray version a cluster's job server reported to Ray's `JobSubmissionClient` when
    it connected, or None if this Ray's client does not keep it."""
    # Private: the client reads it from the server's /api/version on connection and keeps
    # it in `_server_ray_version` (Ray 2.50 to 2.60); there is no public accessor.
    version = getattr(client, "_server_ray_version", None)
    return str(version) if version else None


def authentication_error() -> type[BaseException] | tuple[()]:
    """Ray's `AuthenticationError` (token authentication, Ray 2.52 and later), or an empty
    tuple (which an `except` clause matches against nothing) for older Rays."""
    import ray.exceptions

    error = getattr(ray.exceptions, "AuthenticationError", None)
    return error if isinstance(error, type) else ()
