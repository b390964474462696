"""The pydantic base of every spec section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A section of the spec: an unknown key is an error (never silently dropped), the
    values are frozen, and every float must be finite (YAML reads `.inf` and `.nan` as
    floats)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
