"""Unit tests of the line-aware YAML loader, `reconciler.specs.yamlload.load_documents`."""

from __future__ import annotations

import time

import pytest
import yaml

from reconciler.errors import ProblemKind
from reconciler.specs import yamlload
from reconciler.specs.yamlload import (
    MAX_FILE_BYTES,
    Document,
    LoadProblem,
    NonString,
    Position,
    load_documents,
)

SPEC = b"name: finance-win11\ndescription: Finance image\nsource_workspace_id: ws-0a1b2c3d4\n"


def one(data: bytes) -> tuple[Document, list[LoadProblem]]:
    documents, problems = load_documents(data)
    assert len(documents) == 1, documents
    return documents[0], problems


def test_plain_spec_loads_to_plain_data_without_problems() -> None:
    doc, problems = one(SPEC + b"tags:\n  team: finance\n")
    assert problems == []
    assert doc.data == {
        "name": "finance-win11",
        "description": "Finance image",
        "source_workspace_id": "ws-0a1b2c3d4",
        "tags": {"team": "finance"},
    }
    assert doc.index == 0
    assert doc.position == Position(1, 1)


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc, _ = one(SPEC + b"tags:\n  team: finance\n  cost-center: '4410'\n")
    assert doc.keys[("name",)] == Position(1, 1)
    assert doc.values[("name",)] == Position(1, 7)
    assert doc.keys[("source_workspace_id",)] == Position(3, 1)
    assert doc.values[("source_workspace_id",)] == Position(3, 22)
    assert doc.keys[("tags",)] == Position(4, 1)
    assert doc.values[("tags",)] == Position(5, 3)
    assert doc.keys[("tags", "team")] == Position(5, 3)
    assert doc.values[("tags", "team")] == Position(5, 9)
    assert doc.values[("tags", "cost-center")] == Position(6, 16)


def test_positions_of_list_items_use_their_index() -> None:
    doc, _ = one(b"defaults:\n  ignore_tag_keys:\n    - a\n    - b\n")
    assert doc.data == {"defaults": {"ignore_tag_keys": ["a", "b"]}}
    assert doc.values[("defaults", "ignore_tag_keys", 0)] == Position(3, 7)
    assert doc.values[("defaults", "ignore_tag_keys", 1)] == Position(4, 7)


def test_each_document_has_its_own_index_and_start_line() -> None:
    documents, problems = load_documents(SPEC + b"---\n" + SPEC + b"---\n# c\n" + SPEC)
    assert problems == []
    assert [d.index for d in documents] == [0, 1, 2]
    assert [d.position.line for d in documents] == [1, 5, 10]
    assert documents[1].values[("name",)] == Position(5, 7)


def test_where_falls_back_to_the_nearest_parent_then_the_document() -> None:
    doc, _ = one(b"# spec\n" + SPEC + b"tags:\n  team: finance\n")
    assert doc.where(("tags", "team")) == Position(6, 9)
    assert doc.where(("tags", "team"), key=True) == Position(6, 3)
    assert doc.where(("tags", "missing")) == doc.values[("tags",)]
    assert doc.where(("nothing", "here")) == doc.position == Position(2, 1)


@pytest.mark.parametrize(
    ("text", "kind", "raw", "value"),
    [
        ("yes", "boolean", "yes", True),
        ("on", "boolean", "on", True),
        ("false", "boolean", "false", False),
        ("1.10", "number", "1.10", 1.1),
        ("4410", "number", "4410", 4410),
        ("0x1F", "number", "0x1F", 31),
        ("~", "null", "~", None),
        ("null", "null", "null", None),
        ("", "null", "", None),
    ],
    ids=["yes", "on", "false", "1.10", "4410", "hex", "tilde", "null", "empty"],
)
def test_non_strings_are_recorded_with_kind_and_raw_text(
    text: str, kind: str, raw: str, value: object
) -> None:
    doc, problems = one(f"tags:\n  t: {text}\n".encode())
    assert problems == []
    assert doc.non_strings[("tags", "t")] == NonString(kind, raw)
    assert doc.data["tags"]["t"] == value


def test_a_date_is_recorded_as_a_date() -> None:
    doc, _ = one(b"description: 2026-11-27\n")
    assert doc.non_strings[("description",)] == NonString("date", "2026-11-27")


def test_quoted_scalars_are_strings_and_not_recorded() -> None:
    doc, _ = one(b"tags:\n  a: '4410'\n  b: \"yes\"\n  c: !!str 1.10\n  d: plain text\n")
    assert doc.data["tags"] == {"a": "4410", "b": "yes", "c": "1.10", "d": "plain text"}
    assert doc.non_strings == {}


def test_duplicate_key_is_a_problem_and_the_first_value_is_kept() -> None:
    doc, problems = one(b"name: first\ndescription: d\nname: second\n")
    assert doc.data["name"] == "first"
    message = "duplicate key 'name' (first at line 1); keep only one"
    assert problems == [LoadProblem(Position(3, 1), "name", message, ProblemKind.DUPLICATE_KEY)]


def test_duplicate_key_inside_a_nested_mapping_names_its_path() -> None:
    _, problems = one(b"tags:\n  team: a\n  team: b\n")
    assert [(p.position, p.field) for p in problems] == [(Position(3, 3), "tags.team")]
    assert "first at line 2" in problems[0].message


def test_the_same_key_in_two_documents_is_not_a_duplicate() -> None:
    documents, problems = load_documents(SPEC + b"---\n" + SPEC)
    assert problems == []
    assert len(documents) == 2


def test_merge_key_copies_the_anchor_and_explicit_keys_win() -> None:
    doc, problems = one(
        b"tags:\n  <<: &base {team: finance, owner: x}\n  owner: platform\n  site: dub\n"
    )
    assert problems == []
    assert doc.data == {"tags": {"team": "finance", "owner": "platform", "site": "dub"}}


def test_merge_key_with_a_list_of_aliases_takes_the_first_source_per_key() -> None:
    doc, problems = one(
        b"a: &a {x: '1', y: '1'}\nb: &b {y: '2', z: '2'}\nc:\n  <<: [*a, *b]\n  z: '3'\n"
    )
    assert problems == []
    assert doc.data["c"] == {"x": "1", "y": "1", "z": "3"}


def test_merge_key_positions_point_at_the_anchor_source() -> None:
    doc, _ = one(b"base: &b\n  team: finance\ntags:\n  <<: *b\n")
    assert doc.keys[("tags", "team")] == Position(2, 3)


def test_merge_of_a_scalar_is_a_problem() -> None:
    _, problems = one(b"tags:\n  <<: just-a-string\n")
    assert [p.field for p in problems] == ["tags"]
    assert "merges only mappings" in problems[0].message


@pytest.mark.parametrize(
    ("key", "kind"),
    [("1", "number"), ("yes", "boolean"), ("null", "null"), ("2026-01-01", "date")],
)
def test_non_string_key_is_a_problem_that_says_quote_it(key: str, kind: str) -> None:
    doc, problems = one(f"tags:\n  {key}: x\n".encode())
    assert doc.data == {"tags": {}}
    assert len(problems) == 1
    assert problems[0].position == Position(2, 3)
    assert problems[0].field == "tags"
    assert f"read as a YAML {kind}" in problems[0].message
    assert "quote it" in problems[0].message


def test_complex_key_is_a_problem() -> None:
    _, problems = one(b"? [a, b]\n: c\n")
    assert [p.message for p in problems] == ["mapping keys must be plain strings"]


@pytest.mark.parametrize(
    "text",
    [
        b"x: !!python/object/apply:os.system ['true']\n",
        b"x: !!python/name:os.system\n",
        b"x: !Ref Something\n",
        b"x: !!binary aGVsbG8=\n",
        b"x: !!set {a}\n",
    ],
    ids=["python-apply", "python-name", "custom", "binary", "set"],
)
def test_non_standard_tags_are_refused_and_never_constructed(text: bytes) -> None:
    doc, problems = one(text)
    assert doc.data == {"x": None}
    assert [p.field for p in problems] == ["x"]
    assert "unsupported YAML tag" in problems[0].message


def test_empty_input_gives_no_documents_and_no_problems() -> None:
    assert load_documents(b"") == ([], [])
    assert load_documents(b"# only a comment\n\n") == ([], [])


def test_an_explicit_empty_document_has_null_data() -> None:
    documents, problems = load_documents(SPEC + b"---\n")
    assert problems == []
    assert [d.data is None for d in documents] == [False, True]


def test_utf8_bom_is_accepted() -> None:
    doc, problems = one(b"\xef\xbb\xbf" + SPEC)
    assert problems == []
    assert doc.data["name"] == "finance-win11"


def test_non_utf8_names_the_byte_line_and_column() -> None:
    documents, problems = load_documents(SPEC + "tags:\n  site: Zürich\n".encode("latin-1"))
    assert documents == []
    assert len(problems) == 1
    assert problems[0].position == Position(5, 10)
    assert problems[0].field == "<file>"
    assert "not UTF-8" in problems[0].message
    assert "0xfc" in problems[0].message


def test_file_over_the_size_cap_is_refused_without_parsing() -> None:
    documents, problems = load_documents(b"[" * (MAX_FILE_BYTES + 1))
    assert documents == []
    assert [(p.position, p.field) for p in problems] == [(Position(1, 1), "<file>")]
    assert "limited to 1 MiB" in problems[0].message


def test_file_at_the_size_cap_is_parsed() -> None:
    data = SPEC + b"#" * (MAX_FILE_BYTES - len(SPEC) - 1) + b"\n"
    assert len(data) == MAX_FILE_BYTES
    _, problems = one(data)
    assert problems == []


def test_alias_bomb_is_refused_fast() -> None:
    lines = [b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        refs = ",".join([f"*{prev}"] * 9)
        lines.append(f"{cur}: &{cur} [{refs}]".encode())
    # Expanded, the bomb is 9**9 (387 million) nodes: minutes and gigabytes. Refused
    # unexpanded it takes about 0.35 s here; the bound leaves room for a loaded CI machine
    # (1.02 s once, in a full run on 2 busy cores), and still fails any expansion.
    started = time.perf_counter()
    documents, problems = load_documents(b"\n".join(lines) + b"\n")
    assert time.perf_counter() - started < 5.0
    assert documents == []
    assert [p.field for p in problems] == ["<file>"]
    assert "alias bomb" in problems[0].message


def test_modest_alias_reuse_is_fine() -> None:
    doc, problems = one(b"a: &t {team: finance}\nb: *t\nc: *t\n")
    assert problems == []
    assert doc.data["c"] == {"team": "finance"}


@pytest.mark.parametrize("depth", [100, 1000, 5000])
def test_deep_nesting_is_refused_with_a_position(depth: int) -> None:
    documents, problems = load_documents(b"x: " + b"[" * depth + b"]" * depth + b"\n")
    assert documents == []
    assert [p.field for p in problems] == ["<file>"]
    assert "nested deeper" in problems[0].message
    assert problems[0].position.line == 1


def test_syntax_error_names_its_line_and_column() -> None:
    documents, problems = load_documents(SPEC + b"tags:\n  team: a\n owner: b\n")
    assert documents == []
    assert len(problems) == 1
    assert problems[0].field == "<file>"
    assert problems[0].position.line == 6
    assert problems[0].message.startswith("YAML syntax error: ")


def test_undefined_alias_is_a_syntax_error() -> None:
    _, problems = load_documents(b"tags: *nowhere\n")
    assert [(p.position, p.field) for p in problems] == [(Position(1, 7), "<file>")]


def test_documents_before_a_syntax_error_are_kept() -> None:
    documents, problems = load_documents(SPEC + b"---\nname: [unclosed\n")
    assert len(documents) == 1
    assert documents[0].data["name"] == "finance-win11"
    assert [p.field for p in problems] == ["<file>"]


def test_libyaml_is_used_when_available() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    assert yamlload._Loader is yaml.CSafeLoader


def test_pure_python_fallback_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    data = SPEC + b"tags:\n  <<: {a: b}\n  team: finance\n  n: 1.10\n  team: again\n---\n- x\n"
    fast = load_documents(data)
    monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)
    slow = load_documents(data)
    assert [(d.data, d.values, d.keys, d.non_strings) for d in fast[0]] == [
        (d.data, d.values, d.keys, d.non_strings) for d in slow[0]
    ]
    assert fast[1] == slow[1]
