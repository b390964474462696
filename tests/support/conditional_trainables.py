"""Function trainables for conditional and multi-objective search tests."""

from __future__ import annotations

import math
from typing import Any

from tunefleet.trainables import report


def echo_conditional(config: dict[str, Any]) -> None:
    """Reports which conditional keys it received, so the test sees the trainable's view."""
    report(
        {
            "score": -abs(math.log10(config["lr"]) + 2.5),
            "received_momentum": int("momentum" in config),
            "received_beta": int("beta" in config),
            "received_keys": len(config),
        }
    )


def trade_off(config: dict[str, Any]) -> None:
    """Two metrics that pull apart: `accuracy` grows with `x`, `cost` grows with `x` too,
    and `y` adds noise to both so that some trials are dominated."""
    x, y = float(config["x"]), float(config["y"])
    report({"accuracy": x - 0.5 * y, "cost": x**2 + y})
