"""Quieting a library's logger for the length of a block."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_logger"]


@contextmanager
def quiet_logger(logger: str) -> Iterator[None]:
    """Silences a library's info and warnings (study created, dropped quantization)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
