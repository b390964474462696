"""The pieces of one-line errors: a wrong value shown short, and the "did you mean" hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean", "shown"]


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice most like `word` (difflib's ratio at least 0.6), or None."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: object, choices: Iterable[str], *, otherwise: str = ".") -> str:
    """`; did you mean 'choice'?` for the choice most like `word`, else `otherwise`: the end
    of an error message that names a wrong key or value."""
    match = closest(word, choices)
    return f"; did you mean '{match}'?" if match is not None else otherwise


def shown(value: object) -> str:
    """`value`'s repr as a message quotes it: at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
