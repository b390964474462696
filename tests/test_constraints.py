"""constraints.txt (known-good versions for repeatable installs) stays inside pyproject's
ranges, pins every dependency, and pip really installs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # README's commands pin it (the CPU wheel of these machines)


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: {line!r} is not `name==version`"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def _requirements() -> list[Requirement]:
    """pyproject's dependencies and those of the `dev` extra, self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    found, todo = [], [*project["dependencies"], *extras["dev"]]
    while todo:
        req = Requirement(todo.pop())
        if canonicalize_name(req.name) == "tunefleet":
            todo.extend(r for extra in req.extras for r in extras[extra])
        elif req.marker is None or req.marker.evaluate():
            found.append(req)
    return found


def test_every_dependency_is_pinned_inside_the_range_pyproject_allows() -> None:
    pins = _pins()
    requirements = _requirements()
    assert len(requirements) > 15
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name} (pyproject: {req})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req}"
        )


@pytest.mark.slow
def test_pip_installs_exactly_the_pinned_versions(tmp_path: Path) -> None:
    """pip resolves README's install with `-c constraints.txt` (a dry run: nothing is
    installed) and picks every package at its pinned version."""
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "-c",
            str(REPO / "constraints.txt"),
            TORCH,
            "-e",
            f"{REPO}[dev]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pins = _pins()
    chosen = {
        canonicalize_name(item["metadata"]["name"]): Version(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    chosen.pop("tunefleet")
    assert set(chosen) == set(pins), set(chosen) ^ set(pins)
    for name, version in chosen.items():
        # The CPU wheel's local label (`+cpu`) is not part of the pin.
        assert Version(version.public) == pins[name], f"{name}: pip chose {version}"
