"""Lazy re-exports: a package names its public objects without importing their modules.

A package `__init__` that imports its submodules eagerly makes every import of any of its
submodules pay for all of them: `tunefleet.experiments.cli` would import the runner, the
results recorder and so `ray.tune`, pandas and pyarrow before it has read its command line.
A package lists its public names once, as explicit re-exports in an `if TYPE_CHECKING:` block
that type checkers read, and `lazy_exports` reads the same block to import a name's module when
the name is first used::

    if TYPE_CHECKING:
        from tunefleet.experiments.run.runner import run_plan as run_plan

    __getattr__, __dir__ = lazy_exports(__name__)

The block may also declare names the package's own `__getattr__` provides (`__version__: str`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of a package with lazy re-exports.

    Args:
        package: The package's `__name__`; its `if TYPE_CHECKING:` block lists the names.

    Returns:
        `(__getattr__, __dir__)`: the first imports a name's module on first use and keeps the
        object in the package (later uses are plain attribute reads); it also answers
        `__all__`, every name the block lists, sorted.
    """

    def __getattr__(name: str) -> Any:
        names = _declared(package)
        if name == "__all__":
            return sorted(names)
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, original = source
        value = getattr(importlib.import_module(module), original)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *_declared(package)})

    return __getattr__, __dir__


@cache
def _declared(package: str) -> dict[str, tuple[str, str] | None]:
    """Each name in the package's `if TYPE_CHECKING:` blocks -> `(module, name there)` for an
    import, None for a declaration (`name: type`)."""
    import ast  # on first use only: importing a package stays cheap

    path = getattr(sys.modules[package], "__file__", None)
    if path is None:
        raise ImportError(f"{package}: lazy exports need the package's source file")
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read(), path)
    names: dict[str, tuple[str, str] | None] = {}
    for node in tree.body:
        if not isinstance(node, ast.If):
            continue
        test = node.test  # `TYPE_CHECKING` or `typing.TYPE_CHECKING`
        if not (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                for alias in statement.names:
                    names[alias.asname or alias.name] = (statement.module, alias.name)
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names[statement.target.id] = None
    return names
