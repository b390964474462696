"""The spec's JSON Schema: generated from the models, committed beside the examples, named on
their first line, accepting every example and refusing the bad specs the spec tests use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.experiments.fuzz.broken_specs import missing_keys, unknown_keys, wrong_types
from tests.experiments.fuzz.support import _cli
from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.schema import SCHEMA_FILE, SCHEMA_LINE, schema_text, spec_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "experiments"
VALIDATOR = jsonschema.Draft202012Validator(spec_schema())

# Errors of a single key's type, range, presence or name, which a JSON Schema can state
# too. Rules across keys, and NaN or infinity (JSON has neither), are pydantic's alone.
STRUCTURAL = {
    "bool_type",
    "dict_type",
    "extra_forbidden",
    "float_type",
    "greater_than",
    "greater_than_equal",
    "int_from_float",
    "int_type",
    "less_than",
    "less_than_equal",
    "list_type",
    "literal_error",
    "missing",
    "model_attributes_type",
    "model_type",
    "string_pattern_mismatch",
    "string_too_long",
    "string_too_short",
    "string_type",
    "union_tag_invalid",
}


def test_the_committed_schema_is_the_generated_one() -> None:
    committed = (EXAMPLES / SCHEMA_FILE).read_text()
    assert committed == schema_text(), "regenerate it: tunefleet schema > experiments/" + (
        SCHEMA_FILE
    )
    code, out, err = _cli("schema")
    assert (code, out, err) == (0, committed, "")
    jsonschema.Draft202012Validator.check_schema(json.loads(committed))


def test_the_schema_describes_each_key_with_its_default() -> None:
    schema = spec_schema()
    assert schema["properties"]["trainable"]["description"].startswith("`package.module:object`")
    search = schema["$defs"]["SearchSettings"]["properties"]
    assert search["max_concurrent"]["description"] == "At most this many trials run at once."
    results = schema["$defs"]["ResultsSettings"]["properties"]
    assert results["storage_outage_s"]["default"] == 300.0
    assert schema["$defs"]["SearchSettings"]["additionalProperties"] is False


def test_every_example_names_the_schema_and_passes_it() -> None:
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        text = path.read_text()
        assert text.splitlines()[0] == SCHEMA_LINE, path.name
        errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))]
        assert errors == [], (path.name, errors)


def _structural_refusal(raw: Any) -> bool:
    """Whether the spec model refuses `raw`, for reasons a JSON Schema can state."""
    try:
        ExperimentSpec.model_validate(raw)
    except pydantic.ValidationError as exc:
        return {e["type"] for e in exc.errors()} <= STRUCTURAL
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(wrong_types, missing_keys, unknown_keys()))
def test_the_schema_refuses_the_bad_specs_the_spec_tests_use(case: tuple[Any, Any]) -> None:
    raw, keys = case
    if isinstance(raw, dict) and _structural_refusal(raw):
        assert not VALIDATOR.is_valid(raw), (keys, raw)
