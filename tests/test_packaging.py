"""Packaging: api/ installs as `tunefleet` itself and the other folders as `tunefleet.*`, and
nothing else goes in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import tunefleet
import tunefleet.cluster
import tunefleet.common
import tunefleet.experiments
import tunefleet.search
import tunefleet.trainables

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("tunefleet-*.whl")
    return path


def test_wheel_holds_only_the_tunefleet_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = [n for n in names if ".dist-info/" in n]
    package = [n for n in names if n not in dist_info]
    assert package and all(n.startswith("tunefleet/") for n in package), package
    # api/ is the package itself: `import tunefleet` gives run, resume, load, ...
    assert {"tunefleet/__init__.py", "tunefleet/running.py"} <= set(package)
    assert not any(n.startswith("tunefleet/api/") for n in package), package
    for sub in ("common", "search", "trainables", "experiments", "cluster"):
        assert f"tunefleet/{sub}/__init__.py" in package
    for sub in ("spec", "run", "results", "analysis"):
        assert f"tunefleet/experiments/{sub}/__init__.py" in package
    # The benchmarks are run from the repository, never installed.
    assert not any("benchmarks" in n for n in package), package
    assert "tunefleet/experiments/quickstart.yaml" in package
    assert "tunefleet/trainables/examples/digits.py" in package
    assert not any("tests/" in n for n in names)
    entry_points = next(n for n in dist_info if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tunefleet = tunefleet.experiments.entry:main" in text


def test_wheel_declares_the_tested_dependency_ranges(wheel: Path) -> None:
    metadata = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA"))
    requires = [
        line.split(":", 1)[1].strip()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    names = {
        r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requires
    }
    assert {
        "ray",
        "torch",
        "hyperopt",
        "optuna",
        "pandas",
        "pyarrow",
        "pydantic",
        "pyyaml",
    } <= names
    assert any(r.startswith("ray[tune]") and "<2.61" in r for r in requires)


def test_the_wheel_installs_and_imports_the_python_door(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    code = (
        "import tunefleet, tunefleet.experiments.spec.plan as plan; "
        "print(tunefleet.__file__, plan.__file__, callable(tunefleet.run))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert out == [
        str(target / "tunefleet" / "__init__.py"),
        str(target / "tunefleet" / "experiments" / "spec" / "plan.py"),
        "True",
    ]


def test_the_package_and_subpackages_import_under_one_name() -> None:
    assert Path(tunefleet.__file__).parent.name in ("api", "tunefleet")
    assert callable(tunefleet.run) and isinstance(tunefleet.__version__, str)
    for module in (
        tunefleet.common,
        tunefleet.search,
        tunefleet.trainables,
        tunefleet.experiments,
        tunefleet.cluster,
    ):
        assert module.__name__.startswith("tunefleet.")
        assert Path(module.__file__).parent.parent == REPO or "site-packages" in module.__file__


def test_search_trainables_and_cluster_never_import_experiments_or_each_other() -> None:
    import ast

    rules = {
        "common": {"experiments", "search", "trainables", "cluster"},
        "search": {"experiments", "trainables", "cluster"},
        "trainables": {"experiments", "search", "cluster"},
        "cluster": {"experiments", "search", "trainables"},
    }
    for package, forbidden in rules.items():
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "tunefleet" and len(parts) > 1:
                        assert parts[1] not in forbidden, f"{path.relative_to(REPO)} imports {name}"


def test_public_names_are_exported() -> None:
    for module in (
        tunefleet,
        tunefleet.common,
        tunefleet.search,
        tunefleet.trainables,
        tunefleet.experiments,
        tunefleet.cluster,
    ):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
