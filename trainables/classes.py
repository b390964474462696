"""A user's own class as a trainable, without importing Ray.

    class Model:
        def setup(self, config): ...          # build the model from the config
        def step(self) -> dict: ...           # one unit of training; returns metrics
        def save(self, directory): ...        # optional: write the full state
        def restore(self, directory): ...     # optional: read it back

`as_tune_class` wraps it in a `ray.tune.Trainable`; with `save`/`restore` the trial is
checkpointed (every `checkpoint_every` steps, default 1) so failure recovery and PBT work.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["REQUIRED_METHODS", "as_tune_class", "is_step_class"]

REQUIRED_METHODS = ("setup", "step")


def is_step_class(obj: Any) -> bool:
    """Whether `obj` is a plain class with `setup(config)` and `step()`."""
    return inspect.isclass(obj) and all(callable(getattr(obj, m, None)) for m in REQUIRED_METHODS)


def as_tune_class(user_cls: type) -> type:
    """Returns a `ray.tune.Trainable` subclass that runs `user_cls`."""
    from ray import tune

    from tunefleet.trainables.api import _node_id

    checkpoints = callable(getattr(user_cls, "save", None)) and callable(
        getattr(user_cls, "restore", None)
    )

    class Adapter(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self._model = user_cls()
            self._model.setup(config)

        def step(self) -> dict[str, Any]:
            result = dict(self._model.step())
            result.setdefault("node_id", _node_id())
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
    Adapter.supports_checkpoints = checkpoints  # type: ignore[attr-defined]
    return Adapter
