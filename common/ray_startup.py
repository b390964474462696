"""Ray Tune's callback telemetry imports tracking libraries a run does not use; hide them.

`Tuner.fit` records which callbacks a run uses (`ray.air._internal.usage.tag_callbacks`)
whenever any are given, as tunefleet's results recorder and progress printer are, and for that
imports Ray's MLflow and Weights & Biases integrations, which import `mlflow` and `wandb` when
they are installed: `mlflow` alone took 1.8 s and 70 MiB of the driver here, in a run that
logs nothing to MLflow (a plain Ray Tune script without callbacks never pays it).
`unused_tracking_hidden` hides the libraries a run does not use for the length of the fit.
Checked on: Ray 2.60.

Like `tunefleet.common.ray_compat`, this module holds a dependence on Ray's undocumented
behaviour; it imports nothing from Ray, so that the `tunefleet` command can use it without
loading Ray Tune early.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["TRACKING_LIBRARIES", "unused_tracking_hidden"]

#: Libraries Ray Tune's callback telemetry imports when installed, and the modules it imports
#: them from (Ray's integrations, which keep what they found).
TRACKING_LIBRARIES = {
    "mlflow": ("ray.air.integrations.mlflow", "ray.air._internal.mlflow"),
    "wandb": ("ray.air.integrations.wandb",),
}


@contextmanager
def unused_tracking_hidden(used: Iterable[str] = ()) -> Iterator[None]:
    """Makes `import mlflow` and `import wandb` fail for the block, except for the libraries in
    `used` and those already imported (wrap `Tuner.fit` in it).

    Ray's integration modules imported inside the block (with the library hidden) are
    forgotten at its end, so a later import of them finds the library again.

    Args:
        used: Libraries the run logs to (`mlflow` when the spec's `tracking:` asks for it).
    """
    hidden = [
        name
        for name in TRACKING_LIBRARIES
        if name not in used and name not in sys.modules
        and not any(m in sys.modules for m in TRACKING_LIBRARIES[name])
    ]  # fmt: skip
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not here"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
            for module in TRACKING_LIBRARIES[name]:
                sys.modules.pop(module, None)
