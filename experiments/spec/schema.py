"""The spec's JSON Schema, generated from the pydantic models that validate it.

`tunefleet schema` prints it; `experiments/tunefleet-spec.schema.json` holds a copy that
example specs name on their first line (`# yaml-language-server: $schema=...`), so that
editors complete and check spec files. Each key's description is the one its model's
docstring gives under `Attributes:`, so the schema says what the code documents.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from tunefleet.experiments.spec.experiment import ExperimentSpec

__all__ = ["SCHEMA_FILE", "SCHEMA_LINE", "schema_text", "spec_schema"]

#: The schema's file name beside the example specs.
SCHEMA_FILE = "tunefleet-spec.schema.json"
#: The first line of an example spec: editors with the YAML language server read it.
SCHEMA_LINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"

_ENTRY = re.compile(r"^(\w+)(?: \([^)]*\))?: (.*)$")


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an experiment spec, with descriptions and defaults."""
    schema = ExperimentSpec.model_json_schema(mode="validation")
    documented = {m.__name__: _attributes(m) for m in _models(ExperimentSpec)}
    for name, definition in [("ExperimentSpec", schema), *schema.get("$defs", {}).items()]:
        for key, prop in definition.get("properties", {}).items():
            text = documented.get(name, {}).get(key)
            if text and "description" not in prop:
                prop["description"] = text
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "tunefleet experiment spec",
    }


def schema_text() -> str:
    """The schema as `tunefleet schema` prints it (and the committed file holds)."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """`model` and every model its fields hold, each once."""
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for field in current.model_fields.values():
            todo.extend(_nested(field.annotation))


def _nested(annotation: Any) -> Iterator[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _nested(arg)


def _attributes(model: type[BaseModel]) -> dict[str, str]:
    """Name -> text of the `Attributes:` section of a Google-style class docstring."""
    found: dict[str, str] = {}
    doc = inspect.getdoc(model) or ""
    _, _, section = doc.partition("Attributes:\n")
    current = None
    for line in section.splitlines():
        if line and not line.startswith(" "):
            break  # the next section
        match = (
            _ENTRY.match(line.strip())
            if line.startswith("    ") and not line.startswith("     ")
            else None
        )
        if match:
            current = match[1]
            found[current] = match[2]
        elif current and line.strip():
            found[current] += " " + line.strip()
    return found
