"""A user's own class as a trainable, without importing Ray.

    class Model:
        def setup(self, config): ...          # build the model from the config
        def step(self) -> dict: ...           # one unit of training; returns metrics
        def save(self, directory): ...        # optional: write the full state
        def restore(self, directory): ...     # optional: read it back
        def close(self): ...                  # optional: release resources at the end

`StepClass` is such a class as a `Wrapper`; its `to_tune()` (`as_tune_class`) wraps the class
in a `ray.tune.Trainable`. With `save`/`restore` the trial is checkpointed (every
`checkpoint_every` steps, default 1) so failure recovery and PBT work.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ray import tune

from tunefleet.trainables.api import node_id
from tunefleet.trainables.contract import Wrapper

__all__ = ["CHECKPOINT_METHODS", "REQUIRED_METHODS", "StepClass", "as_tune_class", "is_step_class"]

REQUIRED_METHODS = ("setup", "step")
CHECKPOINT_METHODS = ("save", "restore")


def _has_methods(cls: type, names: tuple[str, ...]) -> bool:
    return all(callable(getattr(cls, name, None)) for name in names)


def is_step_class(obj: Any) -> bool:
    """Whether `obj` is a plain class with `setup(config)` and `step()`."""
    return inspect.isclass(obj) and _has_methods(obj, REQUIRED_METHODS)


@dataclass(frozen=True)
class StepClass(Wrapper):
    """A class with `setup(config)` and `step()` (and optionally `save`/`restore`).

    Args:
        user_class: The class; each trial builds one instance.
    """

    user_class: type
    supports_checkpoints: bool = field(init=False)

    iterative = True  # one result per step

    def __post_init__(self) -> None:
        checkpoints = _has_methods(self.user_class, CHECKPOINT_METHODS)
        object.__setattr__(self, "supports_checkpoints", checkpoints)

    @property
    def kind(self) -> str:
        """`class`."""
        return "class"

    def to_tune(self) -> type:
        """The `ray.tune.Trainable` subclass that runs the class (see `as_tune_class`)."""
        return as_tune_class(self.user_class)


def as_tune_class(user_cls: type) -> type:
    """Returns a `ray.tune.Trainable` subclass that runs `user_cls`."""
    checkpoints = _has_methods(user_cls, CHECKPOINT_METHODS)

    class Adapter(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self._model = user_cls()
            self._model.setup(config)

        def step(self) -> dict[str, Any]:
            result = dict(self._model.step())
            result.setdefault("node_id", node_id())
            every = int(self.config.get("checkpoint_every", 1))
            if checkpoints and every > 0 and self.iteration % every == every - 1:
                result["should_checkpoint"] = True
            return result

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            if checkpoints:
                self._model.save(checkpoint_dir)

        def load_checkpoint(self, checkpoint: Any) -> None:
            if checkpoints:
                self._model.restore(checkpoint)

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            # Lets Ray reuse this worker for the next trial (reuse_actors).
            self._model = user_cls()
            self._model.setup(new_config)
            return True

        def cleanup(self) -> None:
            close = getattr(self._model, "close", None)
            if callable(close):
                close()

    Adapter.__name__ = Adapter.__qualname__ = user_cls.__name__
    return Adapter
