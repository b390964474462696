"""Lazy re-exports: a package names its public objects without importing their modules.

A package `__init__` that imports its submodules eagerly makes every import of any of its
submodules pay for all of them: `tunefleet.experiments.cli` would import the runner, the
results recorder and so `ray.tune`, pandas and pyarrow before it has read its command line.
With `lazy_exports` the package's `__getattr__` imports a name's module when the name is
first used::

    __getattr__, __dir__ = lazy_exports(__name__, {"run_plan": "tunefleet.experiments.run.runner"})

Type checkers see the names through an `if TYPE_CHECKING:` block of ordinary imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of a package with lazy re-exports.

    Args:
        package: The package's `__name__`.
        names: Each public name -> the module that defines it.

    Returns:
        `(__getattr__, __dir__)`: the first imports a name's module on first use and keeps the
        object in the package (later uses are plain attribute reads).
    """
    exported = dict(names)

    def __getattr__(name: str) -> Any:
        module = exported.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__
