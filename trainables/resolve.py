"""Turns a spec's `trainable: package.module:object` into a `Wrapper` Ray Tune can run."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass
from typing import Any

from ray.tune import Trainable

from tunefleet.common.errors import TunefleetError
from tunefleet.common.suggest import did_you_mean
from tunefleet.trainables.classes import StepClass, is_step_class
from tunefleet.trainables.contract import TuneAdaptable, Wrapper

__all__ = [
    "IMPORT_PATH_PATTERN",
    "TrainableError",
    "TuneAdaptable",
    "can_checkpoint",
    "check_trainable",
    "import_object",
    "import_path_of",
    "module_exists",
]

IMPORT_PATH_PATTERN = r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$"


class TrainableError(TunefleetError, ValueError):
    """The spec's trainable cannot be imported or is not something Ray Tune can run."""


def module_exists(path: str) -> bool:
    """Whether the module of `package.module:object` can be found, without running it
    (its parent packages are imported); False for a path that is not an import path."""
    if not re.match(IMPORT_PATH_PATTERN, path):
        return False
    try:
        return importlib.util.find_spec(path.partition(":")[0]) is not None
    except (Exception, SystemExit):  # a parent package that fails to import
        return False


def import_object(path: str, *, key: str = "trainable") -> Any:
    """Imports `package.module:attribute` (the attribute may be dotted).

    Raises:
        TrainableError: With one line naming the path and what to fix.
    """
    if not re.match(IMPORT_PATH_PATTERN, path):
        raise TrainableError(
            f"{key}: {path!r} is not an import path; write it as 'package.module:object'."
        )
    module_name, _, attr_path = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise TrainableError(
            f"{key}: cannot import module '{module_name}' (no module named '{missing}'); "
            "check the path, and run from the folder that holds it or add it to PYTHONPATH."
        ) from None
    except (Exception, SystemExit) as exc:  # the user's module raised (or exited) on import
        raise TrainableError(
            f"{key}: importing '{module_name}' raised {_describe_error(exc)}; fix the module "
            "so that it imports without side effects."
        ) from None
    owner = module_name
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            hint = did_you_mean(part, names)
            raise TrainableError(f"{key}: '{owner}' has no attribute '{part}'{hint}") from None
        except (Exception, SystemExit) as exc:  # a module or class `__getattr__` that raises
            raise TrainableError(
                f"{key}: reading '{part}' from '{owner}' raised {_describe_error(exc)}; "
                "check the object's name."
            ) from None
        owner = f"{owner}.{part}"
    return obj


def import_path_of(obj: Any) -> tuple[str | None, bool]:
    """The `module:qualname` a spec could name `obj` by, and whether importing it gives
    `obj` back in a fresh process (false for `__main__`: a script or a notebook).

    Functions and classes are named by their `__module__` and `__qualname__`; any other
    object (a `TorchTrainable`, say) by a variable of `__main__` that holds it. Returns
    `(None, False)` when no name fits (a lambda, a function defined inside another).
    """
    path: str | None = None
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        path = f"{module}:{qualname}"
    else:
        main = importlib.import_module("__main__")
        names = [k for k, v in vars(main).items() if v is obj and not k.startswith("_")]
        path = f"__main__:{names[0]}" if names else None
    if path is None or not re.match(IMPORT_PATH_PATTERN, path):
        return None, False
    if path.startswith("__main__:"):
        return path, False
    try:
        return path, import_object(path) is obj
    except TrainableError:
        return path, False


def _describe_error(exc: BaseException) -> str:
    """`ValueError: boom` on one line (the first line of the message)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def check_trainable(obj: Any, path: str) -> Wrapper:
    """Checks that `obj` is a trainable tunefleet can run, and returns it as a `Wrapper`.

    Accepted: a function of one argument (`config`), a class with `setup(config)` and
    `step()` (a `StepClass`), a `ray.tune.Trainable` subclass, or a wrapper: a `Wrapper`
    (`TorchTrainable`, `SklearnTrainable`) or another object with a `to_tune()` method.

    Raises:
        TrainableError: If `obj` is none of these.
    """
    if isinstance(obj, Wrapper):
        return obj
    if isinstance(obj, TuneAdaptable):
        return _Adaptable(obj)
    if inspect.isclass(obj):
        if issubclass(obj, Trainable):
            return _Runnable(obj, supports_checkpoints=can_checkpoint(obj), iterative=True)
        if is_step_class(obj):
            return StepClass(obj)
        raise TrainableError(
            f"trainable: class '{path}' needs `setup(self, config)` and `step(self)` methods "
            "(and `save`/`restore` to checkpoint), or must subclass ray.tune.Trainable."
        )
    if callable(obj):
        _check_signature(obj, path)
        return _Runnable(obj, supports_checkpoints=can_checkpoint(obj), iterative=False)
    raise TrainableError(
        f"trainable: '{path}' is a {type(obj).__name__}, not a function, Trainable class or "
        "tunefleet wrapper."
    )


def _check_signature(obj: Any, path: str) -> None:
    """Raises `TrainableError` unless `obj` can be called with the config alone."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    required = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(required) > 1 or not positional:
        raise TrainableError(
            f"trainable: '{path}' must take exactly one argument (the config dict), "
            f"but its signature is {getattr(obj, '__name__', type(obj).__name__)}{signature}."
        )


def can_checkpoint(obj: Any) -> bool:
    """Whether a function or `ray.tune.Trainable` class saves checkpoints (needed by PBT and
    to resume after a failure); wrappers say so themselves (`Wrapper.supports_checkpoints`).

    A Trainable class must override `save_checkpoint`; a function must call
    `report(..., checkpoint=...)`, which is checked by looking for the checkpoint calls among
    the names its code uses.
    """
    if inspect.isclass(obj):
        return getattr(obj, "save_checkpoint", None) is not Trainable.save_checkpoint
    code = getattr(inspect.unwrap(obj), "__code__", None)
    if code is None:
        return True  # cannot tell; let Ray decide at run time
    names = set(code.co_names) | set(code.co_varnames)
    return bool(names & {"get_checkpoint", "Checkpoint", "checkpoint"})


@dataclass(frozen=True)
class _Runnable(Wrapper):
    """A function or `ray.tune.Trainable` class: Ray runs it as it is."""

    target: Any
    supports_checkpoints: bool
    iterative: bool

    @property
    def kind(self) -> str:
        return "class" if inspect.isclass(self.target) else "function"

    @property
    def data_parallel(self) -> bool:  # type: ignore[override]
        return not inspect.isclass(self.target)  # a function runs on every worker

    def to_tune(self) -> Any:
        return self.target


@dataclass(frozen=True)
class _Adaptable(Wrapper):
    """An object with only a `to_tune()` method: the contract's defaults, except that it
    may save checkpoints (Ray decides at run time) and takes a `seed`, as wrappers do."""

    target: TuneAdaptable

    supports_checkpoints = True
    reads_seed = True

    @property
    def kind(self) -> str:
        return type(self.target).__name__

    def to_tune(self) -> Any:
        return self.target.to_tune()
