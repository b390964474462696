"""`import_object` and `check_trainable` refuse odd trainables with one line, never a crash."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tunefleet.trainables.resolve import (
    TrainableError,
    check_trainable,
    import_object,
    module_exists,
)

MODULES = {
    "tf_resolve_exits": "import sys\nsys.exit('bye')\n",
    "tf_resolve_lazy": "def __getattr__(name):\n    raise RuntimeError(f'no {name} here')\n",
}


@pytest.fixture()
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.mark.usefixtures("modules")
def test_a_module_that_exits_on_import_is_refused() -> None:
    with pytest.raises(
        TrainableError,
        match=r"^trainable: importing 'tf_resolve_exits' raised SystemExit: bye; fix the module",
    ):
        import_object("tf_resolve_exits:train")


@pytest.mark.usefixtures("modules")
def test_a_module_getattr_that_raises_is_refused() -> None:
    with pytest.raises(
        TrainableError,
        match=r"^trainable: reading 'train' from 'tf_resolve_lazy' raised RuntimeError: "
        r"no train here; check the object's name\.$",
    ):
        import_object("tf_resolve_lazy:train")


def _two(config: dict, other: int) -> None:
    """Needs two arguments."""


class _Call:
    def __call__(self, config: dict, other: int) -> None:
        """Needs two arguments."""


@pytest.mark.parametrize(
    ("obj", "shown"),
    [(functools.partial(_two), r"partial\(config: .dict., other"), (_Call(), r"_Call\(config")],
)
def test_callables_without_a_name_get_the_one_argument_message(obj: object, shown: str) -> None:
    with pytest.raises(
        TrainableError, match=rf"^trainable: 'm:f' must take exactly one argument .* is {shown}"
    ):
        check_trainable(obj, "m:f")
    assert check_trainable(functools.partial(_two, other=1), "m:f") is not None


def test_module_exists_finds_modules_without_running_them(tmp_path: Path) -> None:
    (tmp_path / "loud_module.py").write_text("raise SystemExit('imported')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert module_exists("loud_module:train")  # found, not run
        assert "loud_module" not in sys.modules
    finally:
        sys.path.remove(str(tmp_path))
    assert module_exists("tests.support.trainables:linear")
    assert not module_exists("tests.support.nothing:linear")
    assert not module_exists("no_such_package.module:train")
    assert not module_exists("not an import path")
