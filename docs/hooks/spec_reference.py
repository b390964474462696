"""MkDocs hook: writes the spec reference into `spec-reference.md` from the spec's JSON
Schema (`tunefleet.experiments.spec.schema`), so the page is generated from the models
that validate a spec, never written twice."""

from __future__ import annotations

import json
from typing import Any

MARKER = "<!-- spec-reference -->"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    # Imported here: the hook module is loaded before the site's pages exist.
    from tunefleet.experiments.spec.schema import spec_schema

    return markdown.replace(MARKER, reference(spec_schema()))


def reference(schema: dict[str, Any]) -> str:
    """A table per section: each key, its type, default and description."""
    defs = schema.get("$defs", {})
    parts = [_table("The spec's top level", schema)]
    for name in sorted(defs):
        parts.append(_table(f"`{name}`", defs[name]))
    return "\n\n".join(parts)


def _table(title: str, node: dict[str, Any]) -> str:
    header = "| key | type | default | description |\n| --- | --- | --- | --- |"
    rows = [f"## {title}", "", header]
    required = set(node.get("required", []))
    for key, prop in node.get("properties", {}).items():
        default = "required" if key in required else _code(prop.get("default", ""))
        text = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type(prop)} | {default} | {text} |")
    return "\n".join(rows)


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"`{prop['$ref'].rpartition('/')[2]}`"
    if "anyOf" in prop or "oneOf" in prop:
        return " or ".join(_type(p) for p in prop.get("anyOf", prop.get("oneOf", [])))
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array" and "items" in prop:
        return f"list of {_type(prop['items'])}"
    return str(kind)


def _code(value: Any) -> str:
    return "" if value == "" else f"`{json.dumps(value)}`"
