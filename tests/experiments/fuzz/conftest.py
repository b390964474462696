"""Fixtures of the bad-spec fuzz tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.experiments.fuzz.broken_inputs import (
    RESOLVE_MODULES,
    USER_MODULES,
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def _keep_sys_path() -> Iterator[None]:
    """`main()` puts the current folder on sys.path, as `python -m` does; undo it."""
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.fixture(scope="module")
def user_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Broken user modules on sys.path for the length of this file's tests."""
    folder = tmp_path_factory.mktemp("user_modules")
    for name, source in {**USER_MODULES, **RESOLVE_MODULES}.items():
        (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [*USER_MODULES, *RESOLVE_MODULES]:
        sys.modules.pop(name, None)
