"""The README, .ci/run, the bundled files and the CLI stay in line with each other."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli import cli
from reconciler.specs import json_schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    return README.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "reconciler demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    assert quick_start_commands()[1] in (ROOT / ".ci/run").read_text(encoding="utf-8")


def test_bundled_demo_specs_match_the_example_specs():
    def yaml_body(path: Path) -> list[str]:
        return [x for x in path.read_text().splitlines() if not x.startswith("# yaml-language")]

    examples = sorted(p.relative_to(ROOT / "specs") for p in (ROOT / "specs").rglob("*.yaml"))
    bundled_root = ROOT / "reconciler/demo_specs"
    bundled = sorted(p.relative_to(bundled_root) for p in bundled_root.rglob("*.yaml"))
    assert examples == bundled
    for rel in examples:
        assert yaml_body(ROOT / "specs" / rel) == yaml_body(bundled_root / rel), rel
    assert not filecmp.dircmp(ROOT / "specs", bundled_root).left_only


def test_committed_schema_is_the_generated_one():
    committed = json.loads((ROOT / "docs/spec.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema()


def test_help_lists_every_contract_option():
    contract = {
        "plan": ["--format", "--out", "--detailed-exitcode", "--prune", "--replace-failed"],
        "apply": [
            "--auto-approve",
            "--plan-file",
            "--format",
            "--detailed-exitcode",
            "--prune",
            "--replace-failed",
            "--wait",
            "--wait-timeout",
        ],
        "drift": ["--format"],
        "validate": ["--format", "--allow-empty", "sarif"],
    }
    common = [
        "--region",
        "--profile",
        "--endpoint-url",
        "--target",
        "--api-rate",
        "--concurrency",
        "--image-quota",
        "--tagging-rate",
        "--label",
        "--markdown-file",
        "--json-file",
        "--allow-empty",
        "-v",
        "-q",
        "--no-color",
    ]
    for command, options in contract.items():
        text = CliRunner().invoke(cli, [command, "--help"]).output
        wanted = options + (common if command != "validate" else [])
        missing = [o for o in wanted if o not in text]
        assert not missing, f"{command} --help lacks {missing}"
        assert f"reconciler {command}" in README
        undocumented = [o for o in wanted if o.startswith("--") and f"`{o}" not in README]
        assert not undocumented, f"the README does not document {undocumented}"


def test_readme_documents_every_exit_code_row():
    for command in ("validate", "plan", "drift", "apply"):
        assert re.search(rf"^\| `{command}` \|", README, re.M), command


def test_install_and_the_pre_commit_hook_name_this_release():
    tag = f"v{__version__}"
    install = section("## Install")
    assert f"workspaces-image-reconciler@{tag}'" in install, "install from this release's tag"
    assert "docker build -t reconciler ." in install
    assert "workspaces-image-reconciler@" in install.split("GitHub Actions", 1)[1]
    assert f"rev: {tag}" in section("## Using it in GitHub Actions")
    assert f"rev: {tag}" in (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")


def test_readme_documents_every_input_and_output_of_the_action():
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    text = section("## Using it in GitHub Actions")
    for name in [*action["inputs"], *action["outputs"]]:
        assert re.search(rf"^\| [^|]*`{name}`", text, re.M), f"no table row for `{name}`"
