"""The architecture rules, read from the source: Ray's private state is touched only in
`tunefleet.common.ray_compat`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The folders of the installed package, and the benchmarks run from the repository.
SOURCE_FOLDERS = ("common", "search", "trainables", "experiments", "cluster", "benchmarks")
RAY_BOUNDARY = REPO / "common" / "ray_compat.py"


def _sources() -> Iterator[Path]:
    for folder in SOURCE_FOLDERS:
        yield from sorted((REPO / folder).rglob("*.py"))


# Ray's private state -----------------------------------------------------------------------

#: Ray modules that are not public API (besides any module path with a `_`-prefixed part).
PRIVATE_RAY_MODULES = (
    "ray.tune.result",
    "ray.tune.execution",
    "ray.tune.impl",
    "ray.tune.trainable.metadata",
    "ray.tune.search.variant_generator",
    "ray.tune.utils",
)
#: Attributes of Ray's objects that are private or undocumented.
PRIVATE_RAY_ATTRIBUTES = frozenset(
    {
        "_local_tuner",
        "_remote_tuner",
        "run_metadata",
        "metric_analysis",
        "metric_n_steps",
        "invalidate_cache",
        "local_experiment_path",
        "storage_filesystem",
        "trial_fs_path",
        "experiment_fs_path",
        "get_trials",
        "_metric",
        "_mode",
        "_global_node",
        "_tune_controller",
        "_runner_whitelist_attr",
    }
)
#: Names whose use means reading Ray's private state.
PRIVATE_RAY_NAMES = frozenset({"AUTO_RESULT_KEYS", "generate_variants", "TuneController"})
#: Text in a string that names Ray's private modules or files.
PRIVATE_RAY_TEXT = ("ray._private", "ray.train._internal", "pbt_global", "pbt_policy_")
#: Scheduler methods whose override reads Ray's private trial controller.
PRIVATE_RAY_OVERRIDES = frozenset({"choose_trial_to_run"})


def _is_private_ray_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "ray":
        return False
    return any(p.startswith("_") for p in parts[1:]) or any(
        name == m or name.startswith(m + ".") for m in PRIVATE_RAY_MODULES
    )


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def private_ray_uses(source: str) -> list[str]:
    """Where `source` touches Ray's private or undocumented state: `line: what`."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [
                f"{line}: import {a.name}" for a in node.names if _is_private_ray_module(a.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ray"):
            if _is_private_ray_module(node.module):
                found.append(f"{line}: from {node.module} import ...")
            found += [
                f"{line}: from {node.module} import {a.name}"
                for a in node.names
                if a.name.startswith("_") or a.name in PRIVATE_RAY_NAMES
            ]
        elif isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_RAY_ATTRIBUTES:
                found.append(f"{line}: .{node.attr}")
            elif (
                node.attr == "storage"
                and isinstance(node.value, ast.Name)
                and "trial" in node.value.id
            ):
                found.append(f"{line}: {node.value.id}.storage")
            elif node.attr.startswith("_") and _is_private_ray_module(_dotted(node.value) or "x"):
                found.append(f"{line}: {_dotted(node.value)}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in PRIVATE_RAY_NAMES:
            found.append(f"{line}: {node.id}")
        elif isinstance(node, ast.FunctionDef) and node.name in PRIVATE_RAY_OVERRIDES:
            found.append(f"{line}: def {node.name}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            found += [
                f"{line}: {text!r} in a string" for text in PRIVATE_RAY_TEXT if text in node.value
            ]
    return found


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def test_only_the_ray_boundary_touches_rays_private_state() -> None:
    offenders = {
        str(path.relative_to(REPO)): uses
        for path in _sources()
        if path != RAY_BOUNDARY and (uses := private_ray_uses(path.read_text()))
    }
    assert not offenders, (
        "Ray's private or undocumented state is used outside tunefleet.common.ray_compat "
        f"(move it there, with a reason and a test in tests/common/test_ray_compat.py): {offenders}"
    )


def test_the_scan_finds_each_kind_of_private_use() -> None:
    samples = {
        "import ray._private.worker": "import ray._private.worker",
        "from ray.train._internal.storage import StorageContext": "from ray.train._internal",
        "from ray.tune.trainable.metadata import _TrainingRunMetadata": "_TrainingRunMetadata",
        "from ray.tune.result import AUTO_RESULT_KEYS": "from ray.tune.result import ...",
        "x = tuner._local_tuner": "._local_tuner",
        "x = trial.run_metadata.metric_analysis": ".run_metadata",
        "x = trial.storage.trial_fs_path": "trial.storage",
        "self._metric = 'score'": "._metric",
        "p = 'pbt_global.txt'": "'pbt_global' in a string",
        "logging.getLogger('ray._private.worker')": "'ray._private' in a string",
        "class S:\n    def choose_trial_to_run(self, c):\n        return c.get_trials()": (
            "def choose_trial_to_run"
        ),
        "x = ray._private.worker._global_node": "._global_node",
    }
    for source, expected in samples.items():
        uses = private_ray_uses(source)
        assert any(expected in use for use in uses), (source, uses)
    # Public API and text about it pass.
    public = '"""Reads `pbt_global.txt`."""\nfrom ray import tune\nfrom ray.tune import Callback\n'
    assert private_ray_uses(public + "x = trial.path\ny = result.metrics\n") == []
    # The boundary itself is found to use what it declares.
    assert len(private_ray_uses(RAY_BOUNDARY.read_text())) >= 8
