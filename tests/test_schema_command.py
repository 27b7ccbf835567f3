"""`reconciler schema`: the JSON Schema (draft 2020-12) of the spec format, for editors.

JSON Schema patterns are ECMA-262 regular expressions, and the tag pattern uses Unicode
property escapes (`\\p{L}`), as AWS's own tag pattern does. Editors (yaml-language-server)
and check-jsonschema evaluate them as ECMA-262 with the `u` flag; Python's `re` cannot. So
the validator here is jsonschema's Draft202012Validator with the pattern keywords and the
`regex` format evaluated by `regress` (the ECMA-262 engine check-jsonschema uses).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator, ValidationError

from reconciler.cli import cli
from reconciler.specs import json_schema

regress = pytest.importorskip("regress")

REPO = Path(__file__).resolve().parents[1]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

SPEC = {
    "name": "finance-win11",
    "description": "Finance image",
    "source_workspace_id": "ws-0a1b2c3d4",
}


def _ecma(pattern: str) -> Any:
    return regress.Regex(pattern, flags="u")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma(pattern).find(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, properties: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        for key, value in instance.items():
            if _ecma(pattern).find(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _is_ecma_regex(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        _ecma(instance)
    except regress.RegressError:
        return False
    return True


ECMA_FORMATS = jsonschema.FormatChecker()
ECMA_FORMATS.checks("regex")(_is_ecma_regex)

EcmaValidator = jsonschema.validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties},
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    return EcmaValidator(schema, format_checker=ECMA_FORMATS)


def errors(validator: Any, instance: object) -> list[str]:
    return [e.message for e in validator.iter_errors(instance)]


def example_documents() -> list[tuple[str, int, Any]]:
    found = []
    for path in sorted((REPO / "specs").rglob("*.y*ml")):
        for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            found.append((path.relative_to(REPO).as_posix(), index, document))
    return found


def test_schema_prints_draft_2020_12_json(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == DRAFT_2020_12
    assert schema == json_schema()


def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    EcmaValidator.check_schema(schema, format_checker=ECMA_FORMATS)


def test_schema_command_runs_as_a_process(schema: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "schema"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == schema


def test_there_are_example_specs_and_defaults() -> None:
    documents = [d for _, _, d in example_documents()]
    assert sum("name" in d for d in documents) >= 3
    assert any("defaults" in d for d in documents)


@pytest.mark.parametrize(
    ("path", "index", "document"),
    example_documents(),
    ids=[f"{p}#{i}" for p, i, _ in example_documents()],
)
def test_example_specs_validate_against_the_schema(
    validator: Any, path: str, index: int, document: Any
) -> None:
    assert errors(validator, document) == []


@pytest.mark.parametrize(
    "document",
    [
        {**SPEC, "tags": {"site": "Zürich", "office": "東京", "cost-center": "4410"}},
        {**SPEC, "region": "eu-west-1", "tags": {}},
        {**SPEC, "name": "eng-build(win)/v2.1\\x_y-z"},
        {"defaults": {"region": "us-east-1", "ignore_tag_keys": ["a"]}},
        {"defaults": {"tags": {"owner": "platform-team"}, "ignore_tag_prefixes": ["finops:"]}},
    ],
    ids=["unicode-tags", "region-and-empty-tags", "name-punctuation", "defaults", "defaults-tags"],
)
def test_valid_documents_validate(validator: Any, document: Any) -> None:
    assert errors(validator, document) == []


@pytest.mark.parametrize(
    "document",
    [
        {**SPEC, "Name": "x"},
        {**SPEC, "workspace_id": "ws-0a1b2c3d4"},
        {"defaults": {"region": "eu-west-1", "tag": {"a": "b"}}},
        {"defaults": {"region": "eu-west-1"}, "name": "x"},
        {"description": "Finance image", "source_workspace_id": "ws-0a1b2c3d4"},
        {**SPEC, "name": "finance win11"},
        {**SPEC, "description": "Finance, Windows"},
        {**SPEC, "source_workspace_id": "WS-0A1B2C3D4"},
        {**SPEC, "region": "EU-West-1"},
        {**SPEC, "region": None},
        {**SPEC, "tags": ["team"]},
        {**SPEC, "tags": {"team": 4410}},
        {**SPEC, "tags": {"team": "a<b"}},
        {**SPEC, "tags": {f"k{i}": "v" for i in range(50)}},
        {**SPEC, "name": True},
    ],
    ids=[
        "unknown-key-Name",
        "unknown-key-workspace_id",
        "defaults-unknown-key",
        "defaults-with-other-keys",
        "missing-name",
        "name-with-space",
        "description-with-comma",
        "workspace-id-uppercase",
        "region-bad",
        "region-null",
        "tags-list",
        "tag-value-number",
        "tag-value-bad-char",
        "tags-50",
        "name-boolean",
    ],
)
def test_invalid_documents_do_not_validate(validator: Any, document: Any) -> None:
    assert errors(validator, document) != []


def test_plain_python_re_validator_handles_the_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    plain = Draft202012Validator(schema)
    assert errors(plain, {**SPEC, "tags": {"team": "finance"}}) == []


@pytest.mark.parametrize(
    "tags",
    [{"bad<key": "x"}, {"bad<key": 4410}],
    ids=["bad-key", "bad-key-number-value"],
)
def test_tag_keys_with_bad_characters_do_not_validate(validator: Any, tags: Any) -> None:
    assert errors(validator, {**SPEC, "tags": tags}) != []
