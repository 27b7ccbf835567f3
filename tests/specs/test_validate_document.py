"""validate's output in every format carries problems and warnings (issue 17, finding 9).

`--format json` prints one document, `{"format_version", "problems", "warnings"}`, versioned
as the other commands' documents; SARIF carries warnings at level `warning`; text and
github show warnings beside problems. Problems across files are reported in the same run
as those within a document, for the documents that parsed. Each test runs the real
command in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.specs.test_invalid_corpus import bundle, spec, write_tree

ENTRY_KEYS = {"file", "line", "column", "field", "message"}

# A problem within a document (b.yaml, line 2) and a warning (c.yaml has no region and
# shares its name with us/a.yaml's, declared for us-east-1).
PROBLEM_AND_WARNING = {
    "us/a.yaml": spec("region: us-east-1\n"),
    "b.yaml": spec(name="other", description="Finance, Windows"),
    "c.yaml": spec(),
}
PROBLEM = ("specs/b.yaml", 2, "description")
WARNING = ("specs/c.yaml", 1, "name")

# Problems within documents and across files, in one folder.
CROSS_FILE = {
    "a.yaml": spec(),
    "b.yaml": spec(),  # finance-win11 again, for the same (default) region
    "c.yaml": spec(name="broken", workspace="WS-0A"),
    "d.yaml": bundle(image="image: finance-win12"),
}
CROSS_FILE_PROBLEMS = {
    ("specs/b.yaml", 1, "name"),  # declared twice
    ("specs/c.yaml", 3, "source_workspace_id"),  # within its document
    ("specs/d.yaml", 4, "image"),  # names no image spec
}


def run(tmp_path: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    if not (tmp_path / "specs").exists():
        write_tree(tmp_path / "specs", dict(files))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def places(entries: list[dict[str, Any]]) -> set[tuple[str, int, str]]:
    return {(e["file"], e["line"], e["field"]) for e in entries}


def test_json_is_one_document_with_problems_and_warnings(tmp_path: Path) -> None:
    proc = run(tmp_path, PROBLEM_AND_WARNING, "validate", "specs", "--format", "json")
    assert proc.returncode == 1
    document = json.loads(proc.stdout)
    assert set(document) == {"format_version", "problems", "warnings"}
    assert places(document["problems"]) == {PROBLEM}
    assert places(document["warnings"]) == {WARNING}
    for entry in [*document["problems"], *document["warnings"]]:
        assert set(entry) == ENTRY_KEYS
        assert isinstance(entry["line"], int)
        assert isinstance(entry["column"], int)
    assert "collide when the default region" in document["warnings"][0]["message"]


def test_json_of_valid_specs_lists_their_warnings(tmp_path: Path) -> None:
    files = {k: v for k, v in PROBLEM_AND_WARNING.items() if k != "b.yaml"}
    proc = run(tmp_path, files, "validate", "specs", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["problems"] == []
    assert places(document["warnings"]) == {WARNING}


def test_the_format_version_is_that_of_the_other_commands_documents(tmp_path: Path) -> None:
    """plan stops on the same invalid specs before any call, with its error document."""
    validated = run(tmp_path, PROBLEM_AND_WARNING, "validate", "specs", "--format", "json")
    planned = run(tmp_path, PROBLEM_AND_WARNING, "plan", "specs", "--format", "json")
    assert planned.returncode == 1
    plan_document = json.loads(planned.stdout)
    assert json.loads(validated.stdout)["format_version"] == plan_document["format_version"]
    assert places(plan_document["error"]["problems"]) == {PROBLEM}


def test_sarif_carries_warnings_at_level_warning(tmp_path: Path) -> None:
    proc = run(tmp_path, PROBLEM_AND_WARNING, "validate", "specs", "--format", "sarif")
    assert proc.returncode == 1
    [sarif_run] = json.loads(proc.stdout)["runs"]
    by_level = {
        r["level"]: (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in sarif_run["results"]
    }
    assert by_level == {"error": ("specs/b.yaml", 2), "warning": ("specs/c.yaml", 1)}
    rules = sarif_run["tool"]["driver"]["rules"]
    for result in sarif_run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        assert rule["defaultConfiguration"]["level"] == result["level"]


def test_text_shows_warnings_beside_problems(tmp_path: Path) -> None:
    proc = run(tmp_path, PROBLEM_AND_WARNING, "validate", "specs")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("specs/b.yaml:2:14: description: ")
    assert lines[1].startswith("specs/c.yaml:1:1: name: warning: image 'finance-win11' has no")
    assert lines[2] == "1 problem in the specs; nothing was changed."
    assert proc.stdout == ""


def test_github_annotates_warnings_beside_problems(tmp_path: Path) -> None:
    proc = run(tmp_path, PROBLEM_AND_WARNING, "validate", "specs", "--format", "github")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert [line.split("::")[1].split(",")[0] for line in lines] == [
        "error file=specs/b.yaml",
        "warning file=specs/c.yaml",
    ]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_problems_across_files_come_in_the_same_run_as_those_within_documents(
    tmp_path: Path, fmt: str
) -> None:
    proc = run(tmp_path, CROSS_FILE, "validate", "specs", "--format", fmt)
    assert proc.returncode == 1
    if fmt == "json":
        found = places(json.loads(proc.stdout)["problems"])
    else:
        lines = re.finditer(r"^(specs/[^:]+):(\d+):\d+: ([^:]+): ", proc.stderr, re.MULTILINE)
        found = {(m[1], int(m[2]), m[3]) for m in lines}
    assert found == CROSS_FILE_PROBLEMS
