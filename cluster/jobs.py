"""Submits an experiment to a running Ray cluster as a Ray job, and follows it.

    submit("experiments/quickstart.yaml", address="http://127.0.0.1:8265",
           storage="s3://bucket/results")

The working directory (default: the current folder) is uploaded to the cluster, and the job
runs `tunefleet run SPEC --address auto --storage STORAGE` inside that copy, on the head node.
The cluster's nodes must have tunefleet installed (the launcher configs and images in this
folder install it); `pip=[...]` installs more per job through Ray's runtime environment.

Token authentication: Ray's own client sends the cluster's token when `RAY_AUTH_MODE=token`
is set, reading it from `RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH` names, or
`~/.ray/auth_token`. tunefleet never reads, prints or forwards the token itself.

Ray's job client needs `ray[default]` (aiohttp) on the submitting machine.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tunefleet.cluster.connect import ClusterError, ClusterInputError
from tunefleet.common.ray_compat import (
    cluster_ray_version,
    installed_ray_version,
    version_problem,
)

__all__ = ["DEFAULT_EXCLUDES", "JobRequest", "job_request", "submit"]

#: Left out of the uploaded working directory (on top of what `.gitignore` files exclude).
DEFAULT_EXCLUDES = (
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "results",
)
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


@dataclass(frozen=True)
class JobRequest:
    """What is sent to the cluster's job server.

    Attributes:
        entrypoint: The shell command the job runs, in the uploaded working directory.
        runtime_env: Ray's runtime environment: `working_dir`, `excludes`, maybe `pip`.
    """

    entrypoint: str
    runtime_env: dict[str, Any] = field(default_factory=dict)


def job_request(
    spec_path: str | os.PathLike[str],
    *,
    storage: str,
    working_dir: str | os.PathLike[str] = ".",
    overrides: Sequence[str] = (),
    name: str | None = None,
    overwrite: bool = False,
    pip: Sequence[str] = (),
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
) -> JobRequest:
    """Builds the job's entrypoint and runtime environment, checking them first.

    Args:
        spec_path: The experiment's YAML file, inside `working_dir`.
        storage: Results root as the cluster sees it: a URI (`s3://...`), an absolute path
            shared by all nodes, or a `~/...` path (the head node's home).
        working_dir: The folder uploaded to the cluster; the job runs in a copy of it.
        overrides: `KEY=VALUE` spec overrides, passed on as `--set`.
        name: Overrides the spec's name (the experiment's folder under `storage`).
        overwrite: Replace an existing experiment of the same name.
        pip: Extra requirements Ray installs for this job (a version, a URL, or a wheel in the
            working directory: `${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}/dist/x.whl`).
        excludes: gitignore-style patterns left out of the upload.

    Raises:
        ClusterError: If a file or folder is missing, the spec is outside `working_dir`, or
            `storage` is a relative path.
    """
    root = Path(working_dir).expanduser().resolve()
    if not root.is_dir():
        raise ClusterInputError(f"working_dir: {working_dir} is not a folder.")
    spec = Path(spec_path).expanduser()
    spec = (spec if spec.is_absolute() else Path.cwd() / spec).resolve()
    if not spec.is_file():
        raise ClusterInputError(f"{spec_path}: no such file.")
    try:
        relative = spec.relative_to(root)
    except ValueError:
        raise ClusterInputError(
            f"{spec_path} is outside the working directory {root}; the job sees only that "
            "folder: move the spec into it or choose another working_dir."
        ) from None
    if "://" not in storage and not storage.startswith(("/", "~")):
        raise ClusterInputError(
            f"storage: {storage!r} is relative, but the job runs in a temporary copy of the "
            "working directory; give a URI (s3://, gs://, abfs://) or an absolute path that "
            "every node sees."
        )
    command = ["tunefleet", "run", relative.as_posix(), "--address", "auto"]
    command += ["--storage", storage]
    for override in overrides:
        command += ["--set", override]
    if name:
        command += ["--name", name]
    if overwrite:
        command.append("--overwrite")
    runtime_env: dict[str, Any] = {"working_dir": str(root), "excludes": list(excludes)}
    if pip:
        runtime_env["pip"] = list(pip)
    return JobRequest(entrypoint=shlex.join(command), runtime_env=runtime_env)


def submit(
    spec_path: str | os.PathLike[str],
    *,
    address: str,
    storage: str,
    working_dir: str | os.PathLike[str] = ".",
    overrides: Sequence[str] = (),
    follow: bool = True,
    name: str | None = None,
    overwrite: bool = False,
    pip: Sequence[str] = (),
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    out: TextIO | None = None,
) -> str:
    """Submits the experiment as a Ray job and, by default, follows its logs to the end.

    Args:
        spec_path: The experiment's YAML file, inside `working_dir`.
        address: The dashboard's HTTP address, e.g. `http://127.0.0.1:8265`.
        storage: Results root as the cluster sees it (URI, or absolute shared path).
        working_dir: The folder uploaded to the cluster (its `.gitignore` is respected).
        overrides: `KEY=VALUE` spec overrides.
        follow: Print the job's logs as they come and wait for the job to end.
        name: Overrides the spec's name.
        overwrite: Replace an existing experiment of the same name.
        pip: Extra requirements Ray installs for this job.
        excludes: gitignore-style patterns left out of the upload.
        out: Where the job id, logs and final status go (default: stdout).

    Returns:
        The job's status: `SUCCEEDED`, `FAILED` or `STOPPED` when followed; otherwise the
        status right after submission (`PENDING` or `RUNNING`).

    Raises:
        ClusterError: If the request is invalid, the cluster cannot be reached, or it
            refuses the authentication token.
    """
    stream = out if out is not None else sys.stdout
    request = job_request(
        spec_path,
        storage=storage,
        working_dir=working_dir,
        overrides=overrides,
        name=name,
        overwrite=overwrite,
        pip=pip,
        excludes=excludes,
    )
    client = _client(address)
    job_id = _call(
        address,
        lambda: client.submit_job(
            entrypoint=request.entrypoint,
            runtime_env=request.runtime_env,
            metadata={"tunefleet_spec": Path(spec_path).name},
        ),
    )
    print(f"submitted job {job_id} to {address}", file=stream, flush=True)
    if not follow:
        print(f"  follow it with: ray job logs --follow --address {address} {job_id}", file=stream)
        return str(_call(address, lambda: client.get_job_status(job_id)))
    info = _follow(client, address, job_id, stream)
    print(_outcome(job_id, info), file=stream, flush=True)
    return str(info.status)


def _follow(client: Any, address: str, job_id: str, out: TextIO) -> Any:
    """Prints the job's logs until it ends and returns its final info; Ctrl-C stops following
    (the job goes on) and says how to stop the job."""
    try:
        _call(address, lambda: _follow_logs(client, job_id, out))
        return _wait_until_done(client, address, job_id)
    except KeyboardInterrupt:
        print(
            f"stopped following; job {job_id} goes on. Stop it with: "
            f"ray job stop --address {address} {job_id}",
            file=out,
        )
        raise


def _outcome(job_id: str, info: Any) -> str:
    """`job ID succeeded`, or `job ID failed: <the first line of Ray's message>`."""
    status = str(info.status)
    message = (info.message or "").strip().splitlines()
    # Ray appends ", last available logs (truncated to ...):" and the logs just shown.
    first = message[0].split(", last available logs")[0] if message else ""
    detail = f": {first}" if status != "SUCCEEDED" and first else ""
    return f"job {job_id} {status.lower()}{detail}"


def _client(address: str) -> Any:
    """Ray's `JobSubmissionClient` for `address`, with one-line errors."""
    if not address.startswith(("http://", "https://")):
        raise ClusterInputError(
            f"address: {address!r} is not the dashboard's HTTP address; jobs go to "
            "http://HEAD:8265 (HOST:6379 is the address for `tunefleet run --address`)."
        )
    for variable in _ADDRESS_VARIABLES:
        value = os.environ.get(variable)
        if value and value.rstrip("/") != address.rstrip("/"):
            raise ClusterInputError(
                f"{variable}={value} is set and Ray would use it instead of {address}; unset "
                "it or make the two match."
            )
    try:
        import aiohttp  # noqa: F401  (Ray's job client needs it, and says so less clearly)
    except ImportError:
        raise ClusterInputError(
            "submitting jobs needs Ray's job client, which is not installed here "
            f"(aiohttp is missing): pip install 'ray[default]=={installed_ray_version()}'."
        ) from None
    # Ray's job client: the optional `ray[default]`, checked just above.
    from ray.job_submission import JobSubmissionClient

    client = _call(address, lambda: JobSubmissionClient(address))
    # Before anything is uploaded: Ray's own mismatch error comes late and is hard to read.
    problem = version_problem(installed_ray_version(), cluster_ray_version(client))
    if problem is not None:
        raise ClusterInputError(problem)
    return client


def _call(address: str, fn: Any) -> Any:
    """Runs one request to the job server, turning Ray's errors into one line."""
    # Loaded with Ray's job client (`ray[default]`).
    import requests
    from ray.exceptions import AuthenticationError

    try:
        return fn()
    except AuthenticationError as exc:
        if "Authentication required" in str(exc):
            raise ClusterError(
                f"{address} requires token authentication: set RAY_AUTH_MODE=token and "
                "the cluster's token in RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, "
                "or ~/.ray/auth_token."
            ) from None
        raise ClusterError(
            f"{address} rejected the authentication token; check that RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token holds the cluster's token."
        ) from None
    except (ConnectionError, requests.exceptions.RequestException) as exc:
        raise ClusterError(
            f"could not reach the Ray job server at {address}: is the cluster up and the "
            "dashboard port forwarded (ray dashboard CONFIG)?"
        ) from exc
    except ValueError as exc:  # e.g. the working directory is over Ray's upload limit
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterInputError(f"could not prepare the job: {first}") from exc
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"the Ray job server at {address} refused: {first}") from exc


def _follow_logs(client: Any, job_id: str, out: TextIO) -> None:
    """Streams the job's logs (a websocket) until the job ends."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    asyncio.run(tail())


def _wait_until_done(client: Any, address: str, job_id: str, timeout_s: float = 30.0) -> Any:
    """The job's final info (the log stream may close a moment before the status changes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = _call(address, lambda: client.get_job_info(job_id))
        if str(info.status) in _TERMINAL or time.monotonic() > deadline:
            return info
        time.sleep(0.5)
