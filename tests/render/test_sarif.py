"""`validate --format sarif`: SARIF 2.1.0 for GitHub code scanning, checked against the
official JSON Schema.

`sarif-schema-2.1.0.json` beside this file is the OASIS SARIF TC's schema, unchanged:
repository https://github.com/oasis-tcs/sarif-spec, file
`sarif-2.1/schema/sarif-schema-2.1.0.json` as of commit
a560296ca8c921f3bdb8d4a8db57ab83dae968a7 (its `id` is the errata01 OASIS Standard URL,
https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from reconciler import __version__
from reconciler.errors import SpecProblem
from reconciler.render.problems import render_problems, rule_id

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)

PROBLEMS = [
    SpecProblem("specs/finance/images.yaml", 3, 5, "tags.team", "expected a string; quote it"),
    SpecProblem("specs/finance/images.yaml", 4, 5, "tags.owner", "a YAML boolean; quote it"),
    SpecProblem("specs/hr/win 11.yaml", 1, 1, "Name", "unknown field 'Name'; did you mean 'name'?"),
    SpecProblem("specs/hr/win 11.yaml", 2, 14, "source_workspace_id", "not a WorkSpace id"),
    SpecProblem("specs/x.yaml", 1, 1, "<file>", "not valid YAML: mapping values are not allowed"),
    SpecProblem("specs", 0, 0, "<folder>", "folder specs/private can't be read"),
    SpecProblem("specs/d/defaults.yaml", 3, 7, "defaults.ignore_tag_keys.0", "must be a string"),
]


def sarif(problems: list[SpecProblem], **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    render_problems(problems, "sarif", out, **options)
    document: dict[str, Any] = json.loads(out.getvalue())
    errors = sorted(VALIDATOR.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return document


def test_a_document_with_no_problem_is_valid_sarif() -> None:
    document = sarif([])
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    assert run["results"] == []
    driver = run["tool"]["driver"]
    assert driver["name"] == "workspaces-image-reconciler"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert driver["rules"] == []


def test_one_result_per_problem_with_file_line_and_column() -> None:
    document = sarif(PROBLEMS)
    (run,) = document["runs"]
    results = run["results"]
    assert len(results) == len(PROBLEMS)
    for problem, result in zip(PROBLEMS, results, strict=True):
        assert result["level"] == "error"
        assert result["message"]["text"] == f"{problem.field}: {problem.message}"
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        artifact = physical["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert artifact["uriBaseId"] in run["originalUriBaseIds"]
        assert artifact["uri"] == problem.file.replace(" ", "%20")
        assert not urlsplit(artifact["uri"]).scheme, "relative to the repository"
        if problem.line:
            assert physical["region"] == {
                "startLine": problem.line,
                "startColumn": problem.column,
            }
        else:  # a folder-level problem has no line: SARIF regions start at line 1
            assert "region" not in physical
    assert run["columnKind"] == "unicodeCodePoints"


def test_rules_are_one_per_kind_of_problem_without_the_users_own_names() -> None:
    document = sarif(PROBLEMS)
    (run,) = document["runs"]
    ids = [r["ruleId"] for r in run["results"]]
    assert ids == [
        "tags",
        "tags",
        "unknown-field",
        "source_workspace_id",
        "file",
        "folder",
        "defaults.ignore_tag_keys",
    ]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(dict.fromkeys(ids))
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"] == {"level": "error"}


@pytest.mark.parametrize(
    ("field", "message", "rule"),
    [
        ("tags.cost-center", "too long", "tags"),
        ("defaults.tags.Team Name", "too long", "defaults.tags"),
        ("ignore_tag_prefixes.3", "empty", "ignore_tag_prefixes"),
        ("document", "empty document", "document"),
        ("defaults.regoin", "unknown field 'regoin'; did you mean 'region'?", "unknown-field"),
        ("Tags.x", "a value", "spec"),
    ],
)
def test_rule_ids_are_stable(field: str, message: str, rule: str) -> None:
    assert rule_id(SpecProblem("a.yaml", 1, 1, field, message)) == rule


def test_absolute_paths_are_made_relative_to_the_repository(tmp_path: Path) -> None:
    inside = SpecProblem(str(tmp_path / "specs" / "a.yaml"), 2, 3, "name", "bad")
    outside = SpecProblem("/elsewhere/specs/b.yaml", 2, 3, "name", "bad")
    document = sarif([inside, outside], root=str(tmp_path))
    first, second = (
        r["locations"][0]["physicalLocation"]["artifactLocation"]
        for r in document["runs"][0]["results"]
    )
    assert first == {"uri": "specs/a.yaml", "uriBaseId": "%SRCROOT%"}
    assert second == {"uri": "file:///elsewhere/specs/b.yaml"}


def test_validate_prints_sarif_for_invalid_specs(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    (specs / "finance").mkdir(parents=True)
    (specs / "finance" / "images.yaml").write_text(
        "name: finance-win11\ndescription: Finance\nsource_workspace_id: ws-0a1b2c3d4\n"
        "tags:\n  team: yes\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "specs", "--format", "sarif"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    document = json.loads(done.stdout)
    assert not list(VALIDATOR.iter_errors(document))
    (result,) = document["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {
        "uri": "specs/finance/images.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    assert physical["region"] == {"startLine": 5, "startColumn": 9}
    assert result["ruleId"] == "tags"


def test_warnings_are_results_at_level_warning_under_rules_of_their_own() -> None:
    warning = SpecProblem("specs/c.yaml", 1, 1, "name", "has no region here and is declared ...")
    document = sarif(
        [*PROBLEMS[:1], SpecProblem("specs/a.yaml", 1, 1, "name", "bad")], warnings=[warning]
    )
    (run,) = document["runs"]
    levels = [(r["ruleId"], r["level"]) for r in run["results"]]
    assert levels == [("tags", "error"), ("name", "error"), ("name-warning", "warning")]
    rules = run["tool"]["driver"]["rules"]
    assert [(r["id"], r["defaultConfiguration"]["level"]) for r in rules] == [
        ("tags", "error"),
        ("name", "error"),
        ("name-warning", "warning"),
    ]
    assert run["results"][2]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 1,
        "startColumn": 1,
    }
