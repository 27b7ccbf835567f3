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
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from reconciler import __version__
from reconciler.errors import ProblemKind, SpecProblem
from reconciler.render.problems import render_problems, repository_root, sarif
from reconciler.specs import check_specs
from tests.specs.test_accounts import RETIRED
from tests.specs.test_invalid_corpus import (
    ALL_CASES,
    CASES,
    Case,
    bundle_with,
    invoke,
    make_case,
    shown,
    spec,
    updated,
    write_tree,
)
from tests.specs.test_updates import RETIRED as RETIRED_UPDATE_SOURCE
from tests.specs.test_validate_warnings import COLLIDING

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)

# Every rule, in the order the driver lists them (a result's ruleIndex points into it).
# Code scanning matches alerts across runs by rule id: a rule is added at the end, never
# renamed. None is a catch-all: every problem is made with its kind.
RULE_IDS = [
    "unreadable-path",
    "yaml-syntax",
    "yaml-limit",
    "yaml-unsupported",
    "duplicate-key",
    "no-spec",
    "invalid-document",
    "unknown-field",
    "missing-field",
    "conflicting-fields",
    "empty-value",
    "wrong-type",
    "invalid-value",
    "repeated-entry",
    "misplaced-field",
    "duplicate-name",
    "duplicate-defaults",
    "unknown-reference",
    "unavailable-reference",
    "own-region-or-account",
    "ignored-tag",
    "region-collision",
    "unknown-compute-type",
    "missing-import-source",
    "missing-update-source",
    "unsettled-region",
    "reference-loop",
]
WARNING_RULES = {
    "region-collision",
    "unknown-compute-type",
    "missing-import-source",
    "missing-update-source",
    "unsettled-region",
}

UNKNOWN_COMPUTE_TYPE = bundle_with("compute_type", "GRAPHICS_G99_48XLARGE")
# Valid specs with a warning each: the rules that only warnings use.
WARNING_CASES = {
    "name-with-and-without-a-region": (COLLIDING, "specs/b.yaml", "region-collision"),
    "compute-type-botocore-does-not-list": (
        {"a.yaml": spec() + "---\n" + UNKNOWN_COMPUTE_TYPE},
        "specs/a.yaml",
        "unknown-compute-type",
    ),
    "import-whose-source-spec-is-gone": (
        RETIRED,
        "specs/finance/a.yaml",
        "missing-import-source",
    ),
    "updated-image-whose-source-spec-is-gone": (
        RETIRED_UPDATE_SOURCE,
        "specs/b.yaml",
        "missing-update-source",
    ),
    "updated-image-whose-region-only-the-default-settles": (
        {"a.yaml": spec("region: eu-west-1\n"), "b.yaml": updated()},
        "specs/b.yaml",
        "unsettled-region",
    ),
}

# One case of the validation corpus per rule that errors use: the rule its own problem gets.
RULE_EXAMPLES = {
    "unreadable-path": "dangling-symlink-inside",
    "yaml-syntax": "tab-indented",
    "yaml-limit": "alias-bomb-billion-laughs",
    "yaml-unsupported": "python-object-tag",
    "duplicate-key": "duplicate-key-in-tags",
    "no-spec": "empty-document-between-separators",
    "invalid-document": "kind-misspelt",
    "unknown-field": "unknown-key-Name",
    "missing-field": "spec-resolving-to-no-account",
    "conflicting-fields": "accounts-role-of-another-account",
    "empty-value": "region-empty-null",
    "wrong-type": "yaml-number-4410",
    "invalid-value": "tag-key-aws-prefix",
    "repeated-entry": "share_with-name-and-id-of-one-account",
    "misplaced-field": "accounts-outside-the-root-defaults",
    "duplicate-name": "image-copied-where-another-spec-declares-it",
    "duplicate-defaults": "two-defaults-documents-in-one-file",
    "unknown-reference": "bundle-image-names-no-spec",
    "unavailable-reference": "source_image-not-shared-with-the-importing-account",
    "own-region-or-account": "copies-own-region",
    "ignored-tag": "ignored-key-declared-by-a-spec",
    "reference-loop": "updated_from-loop-of-two",
}


def problem(file: str, line: int, column: int, field: str, message: str) -> SpecProblem:
    return SpecProblem(file, line, column, field, message, kind=ProblemKind.INVALID_VALUE)


PROBLEMS = [
    problem("specs/finance/images.yaml", 3, 5, "tags.team", "expected a string; quote it"),
    problem("specs/hr/win 11.yaml", 2, 14, "source_workspace_id", "not a WorkSpace id"),
    problem("specs", 0, 0, "<folder>", "folder specs/private can't be read"),
]


def checked(document: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(VALIDATOR.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return document


def rendered(problems: list[SpecProblem], cwd: Path, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    render_problems(problems, "sarif", out, cwd=cwd, **options)
    document: dict[str, Any] = json.loads(out.getvalue())
    return checked(document)


def artifacts(document: dict[str, Any]) -> list[dict[str, str]]:
    return [
        r["locations"][0]["physicalLocation"]["artifactLocation"]
        for r in document["runs"][0]["results"]
    ]


def assert_one_level_per_rule(document: dict[str, Any]) -> None:
    """What validate reports keeps to each rule's level: a problem (error) and a warning
    are never under one rule."""
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert rule["defaultConfiguration"]["level"] == result["level"], rule["id"]


def a_repository(path: Path, *, worktree: bool = False) -> Path:
    """A folder that git would call a repository's top level: a `.git` folder, or the
    `.git` file a worktree or a submodule has."""
    path.mkdir(parents=True, exist_ok=True)
    if worktree:
        (path / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n", encoding="utf-8")
    else:
        (path / ".git").mkdir()
    return path


# --- The document and its rules ------------------------------------------------------------


def test_a_document_with_no_problem_is_valid_sarif_listing_every_rule(tmp_path: Path) -> None:
    document = rendered([], tmp_path)
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    assert run["results"] == []
    driver = run["tool"]["driver"]
    assert driver["name"] == "workspaces-image-reconciler"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert [rule["id"] for rule in driver["rules"]] == RULE_IDS


def test_the_rules_are_the_kinds_of_problem_each_with_a_title_help_and_level() -> None:
    assert [kind.value for kind in ProblemKind] == RULE_IDS
    document = checked(sarif([], root=Path("/repo"), cwd=Path("/repo")))
    for rule in document["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["shortDescription"]["text"]
        assert len(rule["help"]["text"]) > len(rule["shortDescription"]["text"])
        level = "warning" if rule["id"] in WARNING_RULES else "error"
        assert rule["defaultConfiguration"] == {"level": level}, rule["id"]


def test_one_result_per_problem_with_its_rule_file_line_column_and_field(tmp_path: Path) -> None:
    run = rendered(PROBLEMS, a_repository(tmp_path))["runs"][0]
    results = run["results"]
    assert len(results) == len(PROBLEMS)
    rules = run["tool"]["driver"]["rules"]
    for p, result in zip(PROBLEMS, results, strict=True):
        assert (result["ruleId"], result["level"]) == ("invalid-value", "error")
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"] == f"{p.field}: {p.message}"
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uriBaseId"] in run["originalUriBaseIds"]
        if p.line:
            assert physical["region"] == {"startLine": p.line, "startColumn": p.column}
        else:  # a folder-level problem has no line: SARIF regions start at line 1
            assert "region" not in physical
    assert [r.get("properties") for r in results] == [
        {"field": "tags.team"},
        {"field": "source_workspace_id"},
        None,  # `<folder>` is no field
    ]
    assert run["columnKind"] == "unicodeCodePoints"


def test_warnings_are_results_at_level_warning(tmp_path: Path) -> None:
    message = "names no image spec of account images"
    kind = ProblemKind.UNKNOWN_REFERENCE
    warning = SpecProblem("specs/c.yaml", 1, 1, "source_image.name", message, kind=kind)
    document = rendered(PROBLEMS[:1], tmp_path, warnings=[warning])
    results = document["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("invalid-value", "error"),
        ("unknown-reference", "warning"),  # a warning is one whatever its rule's level
    ]


# --- Every problem of the validation corpus maps to one rule --------------------------------


@pytest.mark.parametrize("case", CASES)
def test_every_problem_of_the_corpus_is_a_result_under_a_listed_rule(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs_dir = make_case(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    document = checked(json.loads(invoke(["validate", specs_dir, "--format", "sarif"]).stdout))
    as_json = json.loads(invoke(["validate", specs_dir, "--format", "json"]).stdout)
    results = document["runs"][0]["results"]
    assert len(results) == len(as_json["problems"]) + len(as_json["warnings"])
    assert {r["ruleId"] for r in results} <= set(RULE_IDS)
    assert_one_level_per_rule(document)
    own = [r for r in results if r["message"]["text"].startswith(f"{case.field}: ")]
    assert own, f"no result for {case.field}"


def test_every_rule_is_reachable_from_the_corpus_and_the_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rule is dead, and no kind of problem is missing from the corpus."""
    found: set[str] = set()
    for index, case in enumerate(ALL_CASES.values()):
        folder = tmp_path / str(index)
        folder.mkdir()
        monkeypatch.chdir(folder)
        specs_dir = make_case(folder, case)
        report = check_specs(Path(specs_dir), shown_root=specs_dir)
        found |= {p.kind.value for p in report.problems}
    for name, (files, _, _) in WARNING_CASES.items():
        write_tree(tmp_path / name / "specs", dict(files))
        found |= {w.kind.value for w in check_specs(tmp_path / name / "specs").warnings}
    assert found == set(RULE_IDS)


@pytest.mark.parametrize(("rule", "case_id"), RULE_EXAMPLES.items())
def test_a_corpus_problem_gets_the_rule_of_its_kind(
    rule: str, case_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = ALL_CASES[case_id]
    specs_dir = make_case(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", specs_dir, "--format", "sarif"])
    assert outcome.exit_code == 1
    results = checked(json.loads(outcome.stdout))["runs"][0]["results"]
    own = [
        r
        for r in results
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == shown(case)
        and r["locations"][0]["physicalLocation"].get("region", {}).get("startLine") == case.line
        and r["message"]["text"].startswith(f"{case.field}: ")
        and case.message in r["message"]["text"]
    ]
    assert [(r["ruleId"], r["level"]) for r in own] == [(rule, "error")], results


@pytest.mark.parametrize(("name", "warning"), WARNING_CASES.items())
def test_a_warning_gets_the_rule_of_its_kind_at_level_warning(
    name: str,
    warning: tuple[dict[str, str], str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, file, rule = warning
    write_tree(tmp_path / "specs", dict(files))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs", "--format", "sarif"])
    assert outcome.exit_code == 0, outcome.stderr
    document = checked(json.loads(outcome.stdout))
    assert [
        (r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in document["runs"][0]["results"]
    ] == [(rule, "warning", file)]
    assert_one_level_per_rule(document)


# --- Files, relative to the repository root -------------------------------------------------

# A YAML boolean where a tag value belongs: line 5, column 9.
BAD = spec("tags:\n  team: yes\n", description="Finance")


def validate_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("worktree", [False, True], ids=["git-folder", "worktree-git-file"])
def test_a_run_from_a_subfolder_names_files_from_the_repository_root(
    tmp_path: Path, worktree: bool
) -> None:
    repository = a_repository(tmp_path / "golden-images", worktree=worktree)
    write_tree(repository / "specs" / "finance", {"images.yaml": BAD})
    done = validate_in(repository / "specs" / "finance", ".", "--format", "sarif")
    assert done.returncode == 1, done.stderr
    document = checked(json.loads(done.stdout))
    (result,) = document["runs"][0]["results"]
    assert result["ruleId"] == "wrong-type"
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {
        "uri": "specs/finance/images.yaml",
        "uriBaseId": "%SRCROOT%",
    }
    assert physical["region"] == {"startLine": 5, "startColumn": 9}


def test_a_specs_folder_named_with_dots_is_named_from_the_root_too(tmp_path: Path) -> None:
    repository = a_repository(tmp_path / "repo")
    write_tree(repository / "specs" / "hr", {"a.yaml": BAD})
    (repository / "docs").mkdir()
    done = validate_in(repository / "docs", "../specs/./hr/", "--format", "sarif")
    assert artifacts(checked(json.loads(done.stdout))) == [
        {"uri": "specs/hr/a.yaml", "uriBaseId": "%SRCROOT%"}
    ]


@pytest.mark.parametrize("named", ["absolute", "relative"])
def test_a_file_outside_the_repository_keeps_an_absolute_file_uri(
    tmp_path: Path, named: str
) -> None:
    repository = a_repository(tmp_path / "repo")
    outside = tmp_path / "elsewhere" / "specs"
    write_tree(outside, {"a.yaml": BAD})
    specs_dir = str(outside) if named == "absolute" else "../elsewhere/specs"
    done = validate_in(repository, specs_dir, "--format", "sarif")
    assert done.returncode == 1, done.stderr
    (artifact,) = artifacts(checked(json.loads(done.stdout)))
    assert artifact == {"uri": (outside / "a.yaml").as_uri()}
    assert urlsplit(artifact["uri"]).scheme == "file"


def test_paths_are_forward_slashed_and_percent_encoded(tmp_path: Path) -> None:
    repository = a_repository(tmp_path / "repo")
    write_tree(repository / "specs" / "hr team", {"win 11 #2 é.yaml": BAD})
    done = validate_in(repository / "specs" / "hr team", ".", "--format", "sarif")
    (artifact,) = artifacts(checked(json.loads(done.stdout)))
    assert artifact == {
        "uri": "specs/hr%20team/win%2011%20%232%20%C3%A9.yaml",
        "uriBaseId": "%SRCROOT%",
    }


def test_without_a_repository_files_are_named_from_the_current_folder(tmp_path: Path) -> None:
    assert not any((folder / ".git").exists() for folder in (tmp_path, *tmp_path.parents))
    assert repository_root(tmp_path / "specs") == tmp_path / "specs"
    problems = [problem("b.yaml", 1, 1, "name", "bad"), problem("../c.yaml", 1, 1, "name", "bad")]
    document = rendered(problems, tmp_path / "specs" / "a")
    assert artifacts(document) == [
        {"uri": "b.yaml", "uriBaseId": "%SRCROOT%"},
        {"uri": (tmp_path / "specs" / "c.yaml").as_uri()},  # above the root: outside it
    ]


def test_the_repository_root_is_the_nearest_folder_with_a_git_entry(tmp_path: Path) -> None:
    outer = a_repository(tmp_path / "outer")
    inner = a_repository(outer / "vendor" / "inner", worktree=True)  # a submodule
    (inner / "specs" / "a").mkdir(parents=True)
    assert repository_root(inner / "specs" / "a") == inner
    assert repository_root(outer / "vendor") == outer


# --- --sarif-file ----------------------------------------------------------------------------


def test_sarif_file_is_written_beside_the_format_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", {"a.yaml": BAD})
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs", "--format", "github", "--sarif-file", "out.sarif"])
    assert outcome.exit_code == 1
    assert outcome.stdout.startswith("::error file=specs/a.yaml,line=5,")
    written = checked(json.loads((tmp_path / "out.sarif").read_text(encoding="utf-8")))
    printed = json.loads(invoke(["validate", "specs", "--format", "sarif"]).stdout)
    assert written == printed


def test_sarif_file_is_written_for_valid_specs_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload with no result is what closes the alerts of lines since fixed."""
    write_tree(tmp_path / "specs", {"a.yaml": spec()})
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs", "--sarif-file", "out.sarif"])
    assert outcome.exit_code == 0, outcome.stderr
    assert "Success!" in outcome.stdout
    document = checked(json.loads((tmp_path / "out.sarif").read_text(encoding="utf-8")))
    assert document["runs"][0]["results"] == []


def test_a_sarif_file_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path / "specs", {"a.yaml": spec()})
    done = validate_in(tmp_path, "specs", "--sarif-file", "no-such-folder/out.sarif")
    assert done.returncode == 1
    assert "--sarif-file no-such-folder/out.sarif cannot be written" in done.stderr
    assert "Traceback" not in done.stderr
