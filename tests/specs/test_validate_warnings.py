"""Warnings: valid specs that a plan may still refuse (issue 10, item 13).

`validate` runs offline with no default region, so a name declared for us-east-1 in one
file and without a region in another is valid there, and a duplicate for a plan whose
default region is us-east-1. validate says so (exit 0), on stderr, in every format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.specs.load import load_specs
from tests.specs.test_invalid_corpus import invoke, spec, write_tree

COLLIDING = {
    "us/a.yaml": spec("region: us-east-1\n"),
    "b.yaml": "# the same image, no region\n" + spec(),
}
WARNING = re.compile(
    r"^specs/b\.yaml:2:1: name: warning: image 'finance-win11' has no region here and is "
    r"declared for us-east-1 at specs/us/a\.yaml:1; the two collide when the default region "
    r"\(--region, AWS_REGION or AWS config\) is us-east-1, and plan then fails: "
    r"give this spec a region$",
    re.MULTILINE,
)


@pytest.fixture
def colliding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tree(tmp_path / "specs", dict(COLLIDING))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "specs"


def test_a_name_with_and_without_a_region_validates_with_a_warning(colliding: Path) -> None:
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 0, outcome.stderr
    assert WARNING.search(outcome.stderr), outcome.stderr
    assert "Success! 2 specs in 2 files are valid." in outcome.stdout
    assert "warning" not in outcome.stdout


def test_the_warning_leaves_the_json_on_stdout_whole(colliding: Path) -> None:
    outcome = invoke(["validate", "specs", "--format", "json"])
    assert outcome.exit_code == 0
    json.loads(outcome.stdout)
    assert WARNING.search(outcome.stderr), outcome.stderr


def test_quiet_keeps_the_warning(colliding: Path) -> None:
    outcome = invoke(["validate", "specs", "-q"])
    assert outcome.exit_code == 0
    assert outcome.stdout == ""
    assert WARNING.search(outcome.stderr)


def test_the_loaded_specs_carry_the_warning(colliding: Path) -> None:
    [warning] = load_specs(colliding, shown_root="specs").warnings
    assert (warning.file, warning.line, warning.field) == ("specs/b.yaml", 2, "name")


def test_one_warning_per_region_the_name_is_declared_for(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.yaml": spec("region: us-east-1\n"),
            "b.yaml": spec("region: eu-west-1\n"),
            "c.yaml": spec(),
        },
    )
    warnings = load_specs(tmp_path, shown_root="specs").warnings
    assert [(w.file, "eu-west-1" in w.message, "us-east-1" in w.message) for w in warnings] == [
        ("specs/c.yaml", True, False),
        ("specs/c.yaml", False, True),
    ]


@pytest.mark.parametrize(
    "files",
    [
        {"a.yaml": spec("region: us-east-1\n"), "b.yaml": spec(name="other")},
        {
            "a.yaml": spec("region: us-east-1\n"),
            "eu/defaults.yaml": "defaults:\n  region: eu-west-1\n",
            "eu/b.yaml": spec(),
        },
        {"a.yaml": spec("region: us-east-1\n"), "b.yaml": spec("region: eu-west-1\n")},
    ],
    ids=["other-name", "region-from-defaults", "both-with-regions"],
)
def test_no_warning_when_the_regions_are_settled_or_the_names_differ(
    files: dict[str, str], tmp_path: Path
) -> None:
    write_tree(tmp_path, dict(files))
    assert load_specs(tmp_path).warnings == ()


def test_github_format_also_annotates_the_warning_on_its_line(colliding: Path) -> None:
    outcome = invoke(["validate", "specs", "--format", "github"])
    assert outcome.exit_code == 0
    assert outcome.stdout.startswith("::warning file=specs/b.yaml,line=2,col=1,title=name::")
    assert "collide when the default region" in outcome.stdout
    assert WARNING.search(outcome.stderr)
