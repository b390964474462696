"""Reads a spec file, applies `--set` overrides and validates it, with one-line errors."""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunefleet.common.locations import is_uri, locate
from tunefleet.common.suggest import closest, did_you_mean, shown
from tunefleet.experiments.spec.errors import SpecError
from tunefleet.experiments.spec.experiment import ExperimentSpec

__all__ = ["SpecError", "apply_overrides", "load_spec", "parse_yaml", "validate_spec"]


class _Loader(yaml.SafeLoader):
    """YAML 1.2 numbers (`1e-4` is a float, not a string) and no duplicate keys."""


_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, typing.Hashable):
            continue  # a list or mapping as a key: construct_mapping refuses it below
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, *, source: str) -> Any:
    """Parses YAML safely (no tags that build objects), raising `SpecError` on bad syntax."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        inline = mark is None or source.startswith("--set")
        where = source if inline else f"{source}:{getattr(mark, 'line', 0) + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: not valid YAML ({problem}).") from None
    except RecursionError:
        data = _TOO_DEEP
    except Exception as exc:  # a tag or date PyYAML cannot build: `!!int abc`, 2020-13-45
        raise SpecError(f"{source}: not valid YAML (a value cannot be read: {exc}).") from None
    _check_size(data, source=source)
    return data


_MAX_DEPTH, _MAX_VALUES = 50, 1_000_000
_TOO_DEEP: Any = object()


def _check_size(data: Any, *, source: str) -> None:
    """Refuses data nested over `_MAX_DEPTH` levels, that holds itself through a YAML alias,
    or that aliases expand to over `_MAX_VALUES` values: validating it would exhaust
    Python's recursion limit, or take hours."""
    stack = [(data, 0)]
    for _ in range(_MAX_VALUES):
        if not stack:
            return
        node, depth = stack.pop()
        if node is _TOO_DEEP or depth > _MAX_DEPTH:
            raise SpecError(
                f"{source}: nested more than {_MAX_DEPTH} levels deep (or an alias refers to "
                "itself); a spec needs only a few levels."
            )
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    if stack:
        raise SpecError(
            f"{source}: holds over {_MAX_VALUES} values once its YAML aliases are expanded; "
            "write the spec without nested aliases."
        )


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Reads and parses a spec file (a local path or a URI) into a mapping.

    Raises:
        SpecError: If the file is missing, unreadable or not a spec.
        LocationError: If an object store cannot be read (the message says why).
    """
    if is_uri(path):
        location = locate(path)
        try:
            data = location.read_bytes()
        except FileNotFoundError:
            raise SpecError(f"{location}: no such file.") from None
        path = location.uri
    else:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file.") from None
        except OSError as exc:
            raise SpecError(f"{path}: cannot read ({exc.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (bad byte at offset {exc.start}).") from None
    raw = parse_yaml(text, source=str(path))
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a YAML {type(raw).__name__}"
        raise SpecError(
            f"{path}: a spec must be a mapping of keys (name, trainable, ...), got {got}."
        )
    return raw


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Applies `key.path=value` overrides (values parsed as YAML) to a copy of `raw`."""
    result = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise SpecError(
                f"--set {item!r}: write it as key.path=value, e.g. search.num_samples=8."
            )
        value = parse_yaml(text, source=f"--set {key}") if text.strip() else None
        node: Any = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(f"--set {key}: '{where}' is {shown(child)}, not a mapping.")
            node = child
        node[parts[-1]] = value
    return result


def validate_spec(raw: Mapping[str, Any]) -> ExperimentSpec:
    """Validates a parsed spec, raising `SpecError` with one line per the first problems."""
    _check_size(raw, source="spec")
    try:
        return ExperimentSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None


def load_spec(
    path: str | Path, overrides: Sequence[str] = ()
) -> tuple[ExperimentSpec, dict[str, Any]]:
    """Reads, overrides and validates a spec file.

    Returns:
        The validated spec and the raw mapping it came from (kept in the results' metadata).

    Raises:
        SpecError: The one-line reason the spec cannot run.
    """
    raw = apply_overrides(read_spec_file(path), overrides)
    return validate_spec(raw), raw


def format_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """Turns pydantic's errors into one line: `key.path: what is wrong; what to do`."""
    errors = exc.errors(include_url=False)
    messages = list(dict.fromkeys(_format_one(err) for err in errors))
    text = "; ".join(messages[:limit])
    if len(messages) > limit:
        text += f" (and {len(messages) - limit} more)"
    return text


def _format_one(err: Mapping[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    path = _loc_text(loc)
    if kind == "value_error" and isinstance(ctx.get("error"), Exception):
        message = str(ctx["error"])
        return (
            message if not path or message.startswith(path.split(".")[0]) else f"{path}: {message}"
        )
    if kind == "extra_forbidden":
        allowed = _fields_at(ExperimentSpec, loc[:-1])
        match = closest(loc[-1], allowed)
        hint = f"did you mean '{match}'?" if match else f"allowed keys: {', '.join(allowed)}."
        return f"{path}: unknown key; {hint}"
    if kind == "missing":
        return f"{path}: required key is missing."
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        given = err.get("input")
        hint = did_you_mean(given, expected)
        return f"{path}: {shown(given)} is not allowed; choose one of {', '.join(expected)}{hint}"
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        given = ctx.get("tag")
        hint = did_you_mean(given, tags)
        key = str(ctx.get("discriminator", "name")).strip("'")
        return f"{path}.{key}: {given!r} is not allowed; choose one of {', '.join(tags)}{hint}"
    if kind == "union_tag_not_found":
        tags = [_tag(m) for m in _models_at(ExperimentSpec, loc)]
        return f"{path}: needs `name:` (one of {', '.join(map(str, tags))})."
    if kind == "string_pattern_mismatch":
        return f"{path}: {shown(err.get('input'))} {_pattern_help(loc)}"
    message = str(err.get("msg", "invalid value"))
    message = message[0].lower() + message[1:] if message else message
    return f"{path}: {message}, got {shown(err.get('input'))}."


def _pattern_help(loc: tuple[Any, ...]) -> str:
    if loc and loc[-1] == "trainable":
        return "is not an import path; write it as 'package.module:object'."
    if loc and loc[-1] == "name":
        return (
            "is not a usable name; use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit."
        )
    return "has the wrong format."


def _loc_text(loc: Sequence[Any]) -> str:
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif _is_tag(loc[:i], part):
            continue  # a discriminated union's tag (`asha`), not a key the user wrote
        else:
            text += f".{part}" if text else str(part)
    return text


def _is_tag(loc: Sequence[Any], part: Any) -> bool:
    """Whether `part` is the tag pydantic puts after a discriminated union's key (`asha`
    in `scheduler.asha.max_t`); once the tag has chosen the model, a key of the same name
    (`scheduler.asha`, an unknown key) is the user's."""
    models = _models_at(ExperimentSpec, loc)
    return (
        len(models) > 1
        and all(part not in m.model_fields for m in models)
        and any(_tag(m) == part for m in models)
    )


def _unwrap(tp: Any) -> list[Any]:
    """The pydantic models an annotation may hold (through Optional, Annotated, unions)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _unwrap(arg)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    return sorted({f for m in _models_at(model, loc) for f in m.model_fields})


def _models_at(model: type[BaseModel], loc: Sequence[Any]) -> list[type[BaseModel]]:
    """The models that a location in the spec may hold (several for a union)."""
    models = [model]
    for part in loc:
        nxt: list[Any] = []
        for m in models:
            if part in m.model_fields:
                nxt.extend(_unwrap(m.model_fields[part].annotation))
            elif _tag(m) == part:  # a discriminated union's tag selects one member
                nxt.append(m)
        models = nxt
    return models


def _tag(model: type[BaseModel]) -> Any:
    name = model.model_fields.get("name")
    args = typing.get_args(name.annotation) if name is not None else ()
    return args[0] if len(args) == 1 else None
