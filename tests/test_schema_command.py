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
from reconciler.specs.models import COMPUTE_TYPE_PATTERN

regress = pytest.importorskip("regress")

REPO = Path(__file__).resolve().parents[1]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

SPEC = {
    "name": "finance-win11",
    "description": "Finance image",
    "source_workspace_id": "ws-0a1b2c3d4",
}
ACCOUNTS = {
    "images": {
        "id": "111111111111",
        "role": "arn:aws:iam::111111111111:role/workspaces-reconciler",
    },
    "finance": {"id": "222222222222", "external_id": "finance-2026"},
}
IMPORT = {
    "name": "finance-win11",
    "description": "Finance image",
    "account": "finance",
    "source_image": {"account": "images", "name": "finance-win11", "region": "eu-west-1"},
}
UPDATED = {
    "name": "finance-win11-2026-12",
    "description": "Finance image with the updates of 2026-12",
    "updated_from": "finance-win11",
}
BUNDLE = {
    "kind": "bundle",
    "name": "finance-standard",
    "description": "Finance standard desktop",
    "image": "finance-win11",
    "compute_type": "STANDARD",
    "user_volume_gib": 50,
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
        {**SPEC, "kind": "image"},
        {**SPEC, "copies": ["us-east-1", "ap-southeast-2"], "share_with": ["111122223333"]},
        {**SPEC, "copies": [], "share_with": []},
        {"defaults": {"copies": ["us-east-1"], "share_with": ["111122223333"]}},
        BUNDLE,
        {
            **{k: v for k, v in BUNDLE.items() if k != "image"},
            "image_id": "wsi-0a1b2c3d4e",
            "root_volume_gib": 80,
            "region": "eu-west-1",
            "tags": {"team": "finance"},
        },
        {**BUNDLE, "compute_type": "GRAPHICS_G4DN", "user_volume_gib": 2000},
        {"defaults": {"region": "eu-west-1", "accounts": ACCOUNTS}},
        {"defaults": {"account": "finance", "share_with": ["images", "333333333333"]}},
        IMPORT,
        {**IMPORT, "source_image": {"account": "999999999999", "name": "theirs"}},
        {**SPEC, "account": "images", "share_with": ["finance"]},
        {**BUNDLE, "account": "finance"},
        UPDATED,
        {**UPDATED, "account": "finance", "copies": ["us-east-1"], "share_with": ["images"]},
    ],
    ids=[
        "unicode-tags",
        "region-and-empty-tags",
        "name-punctuation",
        "defaults",
        "defaults-tags",
        "kind-image",
        "copies-and-share-with",
        "empty-copies-and-share-with",
        "defaults-copies-and-share-with",
        "bundle-with-image",
        "bundle-with-image-id-and-every-field",
        "bundle-bounds",
        "accounts-map",
        "defaults-account-and-share-with-names",
        "import",
        "import-from-an-id-without-region",
        "account-and-share-with-name",
        "bundle-with-account",
        "updated",
        "updated-with-account-copies-and-share-with",
    ],
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
        {**SPEC, "kind": "bundel"},
        {**SPEC, "kind": "bundle"},
        {**SPEC, "compute_type": "STANDARD"},
        {**SPEC, "copies": None},
        {**SPEC, "copies": ["US-East-1"]},
        {**SPEC, "copies": "us-east-1"},
        {**SPEC, "share_with": None},
        {**SPEC, "share_with": [111122223333]},
        {**SPEC, "share_with": ["11112222333"]},
        {"defaults": {"share_with": ["1111-2222-3333"]}},
        {k: v for k, v in BUNDLE.items() if k != "kind"},
        {**BUNDLE, "image_id": "wsi-0a1b2c3d4e"},
        {k: v for k, v in BUNDLE.items() if k != "image"},
        {**BUNDLE, "compute_type": "standard"},
        {**BUNDLE, "user_volume_gib": "50"},
        {**BUNDLE, "user_volume_gib": 9},
        {**BUNDLE, "user_volume_gib": 50.5},
        {**BUNDLE, "root_volume_gib": 79},
        {**BUNDLE, "root_volume_gib": None},
        {**BUNDLE, "description": "d" * 256},
        {**{k: v for k, v in BUNDLE.items() if k != "image"}, "image_id": "wsi-0A1B2C3D4E"},
        {**BUNDLE, "source_workspace_id": "ws-0a1b2c3d4"},
        {**BUNDLE, "copies": ["us-east-1"]},
        {**IMPORT, "source_workspace_id": "ws-0a1b2c3d4"},
        {"name": "finance-win11", "description": "Finance image"},
        {**IMPORT, "source_image": None},
        {**IMPORT, "source_image": {"account": "images"}},
        {**IMPORT, "source_image": {"account": "images", "name": "x", "acount": "x"}},
        {**IMPORT, "source_image": {"account": "11111111111", "name": "x"}},
        {**IMPORT, "account": None},
        {**IMPORT, "account": "222222222222"},
        {**SPEC, "source_workspace_id": None},
        {**SPEC, "share_with": ["Finance"]},
        {"defaults": {"accounts": {"images": {"id": 111111111111}}}},
        {"defaults": {"accounts": {"images": {"id": "11111111111"}}}},
        {"defaults": {"accounts": {"Images": {"id": "111111111111"}}}},
        {"defaults": {"accounts": {"images": {}}}},
        {"defaults": {"accounts": {"images": {"id": "111111111111", "role": "admin"}}}},
        {"defaults": {"accounts": {"images": {"id": "111111111111", "rol": "x"}}}},
        {"defaults": {"accounts": {}}},
        {"defaults": {"accounts": None}},
        {**UPDATED, "source_workspace_id": "ws-0a1b2c3d4"},
        {**UPDATED, "source_image": IMPORT["source_image"]},
        {**IMPORT, **UPDATED, "source_workspace_id": "ws-0a1b2c3d4"},
        {**UPDATED, "updated_from": None},
        {**UPDATED, "updated_from": "finance win11"},
        {**UPDATED, "updated_from": 2026},
        {"defaults": {"updated_from": "finance-win11"}},
        {**BUNDLE, "updated_from": "finance-win11"},
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
        "kind-misspelt",
        "image-spec-with-kind-bundle",
        "image-spec-with-a-bundle-field",
        "copies-null",
        "copies-bad-region",
        "copies-not-a-list",
        "share-with-null",
        "share-with-integer",
        "share-with-11-digits",
        "defaults-share-with-dashes",
        "bundle-without-kind",
        "bundle-with-image-and-image-id",
        "bundle-without-image-or-image-id",
        "bundle-compute-type-lower-case",
        "bundle-user-volume-string",
        "bundle-user-volume-9",
        "bundle-user-volume-fraction",
        "bundle-root-volume-79",
        "bundle-root-volume-null",
        "bundle-description-256",
        "bundle-image-id-upper-case",
        "bundle-with-an-image-field",
        "bundle-with-copies",
        "image-with-both-sources",
        "image-with-neither-source",
        "source-image-null",
        "source-image-without-name",
        "source-image-unknown-key",
        "source-image-account-11-digits",
        "account-null",
        "account-by-id",
        "source-workspace-id-null",
        "share-with-upper-case-name",
        "accounts-id-integer",
        "accounts-id-11-digits",
        "accounts-name-upper-case",
        "accounts-entry-without-id",
        "accounts-role-not-an-arn",
        "accounts-unknown-key",
        "accounts-empty",
        "accounts-null",
        "updated-and-source-workspace-id",
        "updated-and-source-image",
        "updated-and-both-other-sources",
        "updated-from-null",
        "updated-from-with-space",
        "updated-from-number",
        "defaults-updated-from",
        "bundle-updated-from",
    ],
)
def test_invalid_documents_do_not_validate(validator: Any, document: Any) -> None:
    assert errors(validator, document) != []


def test_the_schema_describes_image_bundle_and_defaults_documents(schema: dict[str, Any]) -> None:
    branches = {branch["$ref"].rsplit("/", 1)[-1] for branch in schema["anyOf"]}
    assert branches == {"ImageSpecDocument", "BundleSpecDocument", "DefaultsDocument"}
    bundle = schema["$defs"]["BundleSpecDocument"]
    assert bundle["properties"]["kind"]["const"] == "bundle"
    # No list of names: the installed botocore's model says which names it knows, and a
    # checked-in schema can't follow it. Any well-formed name is valid (validate warns).
    compute = bundle["properties"]["compute_type"]
    assert "enum" not in compute
    assert compute["pattern"] == COMPUTE_TYPE_PATTERN
    assert "STANDARD" in compute["examples"]
    assert "kind" in bundle["required"]


def test_a_bundle_spec_validates_only_as_a_bundle(validator: Any, schema: dict[str, Any]) -> None:
    matched = [
        branch["$ref"]
        for branch in schema["anyOf"]
        if not list(
            validator.evolve(schema={"$defs": schema["$defs"], **branch}).iter_errors(BUNDLE)
        )
    ]
    assert matched == ["#/$defs/BundleSpecDocument"]


def test_the_models_accept_what_the_schema_accepts(tmp_path: Path) -> None:
    """The schema's valid bundle, written as YAML, is a valid spec for `validate` too."""
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(SPEC) + "---\n" + yaml.safe_dump(BUNDLE))
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)], standalone_mode=False)
    assert result.return_value == 0, result.stderr


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
