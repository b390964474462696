"""Thin wrappers around Ray's cluster launcher: `ray up`, `ray down`, `ray attach`.

    up("cluster/aws.yaml")      # ray up -y cluster/aws.yaml
    attach("cluster/aws.yaml")  # ray attach cluster/aws.yaml (a shell on the head node)
    down("cluster/aws.yaml")    # ray down -y cluster/aws.yaml

Each runs the `ray` command of this Python environment (or the first on PATH) in the
foreground, with this terminal, and returns its exit code. The cloud's own CLI credentials
are used as they are; nothing here reads or prints them, nor the cluster's auth token.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tunefleet.cluster.connect import ClusterError, ClusterInputError

__all__ = ["attach", "down", "launcher_command", "ray_executable", "up"]

_ACTIONS = {"up": ["up", "-y"], "down": ["down", "-y"], "attach": ["attach"]}


def ray_executable() -> str:
    """The `ray` command: the one next to this interpreter, else the first on PATH.

    Raises:
        ClusterError: If there is none.
    """
    beside = Path(sys.executable).with_name("ray")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise ClusterInputError(
            "the `ray` command is not installed here (not next to "
            f"{sys.executable} nor on PATH); install it with pip install 'ray[default]'."
        )
    return found


def launcher_command(
    action: str, config_path: str | os.PathLike[str], *, ray: str | None = None
) -> list[str]:
    """The command line for one launcher action, after checking the config file exists.

    Args:
        action: `up`, `down` or `attach`.
        config_path: The launcher's cluster YAML (e.g. `cluster/aws.yaml`).
        ray: The `ray` executable (default: `ray_executable()`).

    Raises:
        ClusterError: If the action is unknown, the file is missing, or `ray` is not found.
    """
    if action not in _ACTIONS:
        raise ClusterInputError(f"action: {action!r} is not one of {', '.join(_ACTIONS)}.")
    path = Path(config_path).expanduser()
    if not path.is_file():
        raise ClusterInputError(f"{config_path}: no such cluster config file.")
    return [ray or ray_executable(), *_ACTIONS[action], str(path)]


def _run(command: Sequence[str]) -> int:
    try:
        return subprocess.run(list(command), check=False).returncode
    except OSError as exc:
        raise ClusterError(f"could not run {command[0]}: {exc.strerror or exc}.") from exc


def up(config_path: str | os.PathLike[str]) -> int:
    """Starts (or updates) the cluster the launcher config describes: `ray up -y CONFIG`.

    Args:
        config_path: The launcher's cluster YAML.

    Returns:
        The exit code of `ray up`.

    Raises:
        ClusterError: If the file is missing or `ray` is not installed.
    """
    return _run(launcher_command("up", config_path))


def down(config_path: str | os.PathLike[str]) -> int:
    """Stops the cluster and releases its machines: `ray down -y CONFIG`.

    Args:
        config_path: The launcher's cluster YAML.

    Returns:
        The exit code of `ray down`.

    Raises:
        ClusterError: If the file is missing or `ray` is not installed.
    """
    return _run(launcher_command("down", config_path))


def attach(config_path: str | os.PathLike[str]) -> int:
    """Opens a shell on the cluster's head node: `ray attach CONFIG`.

    Args:
        config_path: The launcher's cluster YAML.

    Returns:
        The exit code of `ray attach` (that of the shell).

    Raises:
        ClusterError: If the file is missing or `ray` is not installed.
    """
    return _run(launcher_command("attach", config_path))
