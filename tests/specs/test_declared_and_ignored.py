"""A declared tag is never also ignored (issue 10, item 5).

An ignored key is left out of the desired and the live tag sets alike, so a declared one
is rewritten by every apply and drift never ends. The rule follows the defaults chain:
ignore lists accumulate down the folders, and defaults tags reach every spec below.
The corpus (test_invalid_corpus.py) has one case per shape; these check the edges.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.specs.load import load_specs
from tests.specs.test_invalid_corpus import spec, write_tree


def reported(root: Path) -> set[tuple[str, int, str]]:
    with pytest.raises(SpecError) as raised:
        load_specs(root, shown_root="specs")
    return {(p.file, p.line, p.field) for p in raised.value.problems}


def test_an_ignore_rule_of_a_sibling_folder_does_not_apply(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "eu/defaults.yaml": "defaults:\n  ignore_tag_keys: [team]\n  tags: {owner: x}\n",
            "eu/a.yaml": spec(),
            "us/a.yaml": spec("region: us-east-1\ntags:\n  team: finance\n"),
            "us/defaults.yaml": "defaults:\n  tags: {team: sales}\n",
        },
    )
    assert [s.name for s in load_specs(tmp_path).specs] == ["finance-win11", "finance-win11"]


def test_an_ignore_rule_below_a_spec_does_not_apply_to_it(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.yaml": spec("tags:\n  team: finance\n"),
            "team/defaults.yaml": "defaults:\n  ignore_tag_prefixes: ['te']\n",
        },
    )
    assert len(load_specs(tmp_path).specs) == 1


def test_a_prefix_matches_the_start_of_a_key_only(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "defaults.yaml": "defaults:\n  ignore_tag_prefixes: ['finops:']\n",
            "a.yaml": spec("tags:\n  team-finops:x: y\n  Finops:x: y\n"),
        },
    )
    assert len(load_specs(tmp_path).specs) == 1


def test_every_declaration_of_an_ignored_key_is_reported_where_it_is_written(
    tmp_path: Path,
) -> None:
    """The root's tag, a subfolder's override and a spec's own: each must change."""
    write_tree(
        tmp_path,
        {
            "defaults.yaml": "defaults:\n  tags:\n    owner: platform\n",
            "team/defaults.yaml": "defaults:\n  ignore_tag_keys: [owner]\n",
            "team/sub/defaults.yaml": "defaults:\n  tags: {owner: team}\n",
            "team/sub/a.yaml": spec("tags:\n  owner: me\n"),
            "b.yaml": spec("tags:\n  owner: me\n", name="b"),  # above the rule: fine
        },
    )
    assert reported(tmp_path) == {
        ("specs/defaults.yaml", 3, "defaults.tags.owner"),
        ("specs/team/sub/defaults.yaml", 2, "defaults.tags.owner"),
        ("specs/team/sub/a.yaml", 5, "tags.owner"),
    }


def test_a_key_ignored_by_two_rules_is_reported_once(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "defaults.yaml": "defaults:\n  ignore_tag_keys: [cost]\n"
            "  ignore_tag_prefixes: ['co']\n",
            "a.yaml": spec("tags:\n  cost: '1'\n"),
        },
    )
    assert reported(tmp_path) == {("specs/a.yaml", 5, "tags.cost")}


def test_a_defaults_tag_ignored_below_is_an_error_even_with_no_spec_there_yet(
    tmp_path: Path,
) -> None:
    """Any spec added under team/ would carry the key and ignore it: the folders disagree."""
    write_tree(
        tmp_path,
        {
            "defaults.yaml": "defaults:\n  tags: {owner: platform}\n",
            "a.yaml": spec(),
            "team/defaults.yaml": "defaults:\n  ignore_tag_prefixes: [own]\n",
        },
    )
    assert reported(tmp_path) == {("specs/defaults.yaml", 2, "defaults.tags.owner")}
