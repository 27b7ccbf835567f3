"""The README, .ci/run, the bundled files and the CLI stay in line with each other."""

from __future__ import annotations

import filecmp
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- the golden-image lifecycle: what the README promises about the code ---------------------

PACKAGE = ROOT / "reconciler"
# Code that is not the reconciler's own calls to AWS: the emulator answers them, the demo
# edits the emulator's tags as a person would in the console.
NOT_THE_RECONCILERS_CALLS = ("emulator", "demo.py")
# The WorkSpaces API's own words for each verb, as IAM spells its actions.
READ_VERBS = ("Describe", "Get")
DELETIONS = {"workspaces:DeleteWorkspaceImage", "workspaces:DeleteWorkspaceBundle"}


def _camel(operation: str) -> str:
    return "".join(word.capitalize() for word in operation.split("_"))


def actions_the_code_calls() -> set[str]:
    """Every AWS action the reconciler's code can call, as an IAM action name: the
    WorkSpaces client's methods (`.reads.x(`, `.creates.x(`, `.pages("x"`) and the tagging
    API's `get_resources`."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(NOT_THE_RECONCILERS_CALLS):
            continue
        text = path.read_text(encoding="utf-8")
        operations = re.findall(r"\.(?:reads|creates)\.([a-z_]+)\(", text)
        operations += re.findall(r"\.pages\(\s*\"([a-z_]+)\"", text)
        found |= {f"workspaces:{_camel(op)}" for op in operations}
        if re.search(r"\.get_resources\(", text):
            found.add("tag:GetResources")
    return found


MANY_ACCOUNTS_IAM = "\n### Many accounts: the base role and the target roles\n"


def json_blocks(text: str) -> list[dict[str, Any]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.+?)\n```", text, re.S)]


def statement_actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def iam_policies() -> list[set[str]]:
    """The actions of each per-command policy in the README's IAM section (the part before
    the many-accounts roles), in order."""
    per_command = section("## IAM").split(MANY_ACCOUNTS_IAM, 1)[0]
    return [
        {a for s in document["Statement"] for a in statement_actions(s)}
        for document in json_blocks(per_command)
    ]


def test_the_iam_policies_list_exactly_the_actions_the_code_calls():
    calls = actions_the_code_calls()
    # The scan must see the lifecycle's calls, or it proves nothing.
    assert {
        "workspaces:CreateWorkspaceImage",
        "workspaces:CopyWorkspaceImage",
        "workspaces:DescribeWorkspaceImagePermissions",
        "workspaces:UpdateWorkspaceImagePermission",
        "workspaces:DescribeWorkspaceBundles",
        "workspaces:CreateWorkspaceBundle",
        "workspaces:UpdateWorkspaceBundle",
        "workspaces:DeleteWorkspaceBundle",
        "workspaces:DescribeTags",
        "tag:GetResources",
    } <= calls
    plan_and_drift, apply, apply_with_deletions = iam_policies()
    reads = {a for a in calls if a.split(":")[1].startswith(READ_VERBS)}
    assert plan_and_drift == reads, "the plan/drift policy: every read, nothing else"
    assert apply == calls - DELETIONS, "the apply policy: every call but the deletions"
    assert apply_with_deletions == calls, "the --prune/--replace-failed policy: every call"
    table = section("## IAM")
    undocumented = [a for a in sorted(calls) if not re.search(rf"^\| `{a}` \|", table, re.M)]
    assert not undocumented, f"the IAM table has no row for {undocumented}"


def test_every_action_and_result_is_documented():
    from reconciler.plan import Action
    from reconciler.results import Result

    actions = section("## What each action does")
    assert not [a.value for a in Action if f"`{a.value}`" not in actions]
    for heading in ("## What each action does", "## JSON output"):
        missing = [r.value for r in Result if f"`{r.value}`" not in section(heading)]
        assert not missing, f"{heading} does not name the results {missing}"


def test_every_spec_field_is_shown_in_the_specs_examples():
    from reconciler.specs.models import BundleSpecDocument, DefaultsBody, ImageSpecDocument

    examples = "\n".join(re.findall(r"```yaml\n(.+?)\n```", section("## Specs"), re.S))
    for model in (ImageSpecDocument, BundleSpecDocument, DefaultsBody):
        missing = [f for f in model.model_fields if not re.search(rf"^ *{f}:", examples, re.M)]
        assert not missing, f"the Specs examples lack {model.__name__} fields {missing}"


def test_the_json_example_is_a_format_2_plan_the_models_read_and_write_back():
    from reconciler.plan import FORMAT_VERSION, Plan, PlanItem, Unmanaged

    (block,) = re.findall(r"```json\n(.+?)\n```", section("## JSON output"), re.S)
    document = json.loads(block)
    assert document["format_version"] == FORMAT_VERSION == 2
    summary = document.pop("summary")
    plan = Plan.model_validate(document)
    assert list(summary) == list(plan.summary), "summary keys, in the order printed"
    assert {i["kind"] for i in document["items"]} == {"image", "share", "bundle"}
    for item in document["items"]:
        written = PlanItem.model_validate(item).model_dump(mode="json", exclude={"fingerprint"})
        assert written == item, "an item's fields are exactly its kind's"
    assert {u["kind"] for u in document["unmanaged"]} == {"image", "bundle"}
    for entry in document["unmanaged"]:
        assert Unmanaged.model_validate(entry).model_dump(mode="json") == entry


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_readmes_links_to_its_own_sections_resolve():
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", prose, re.M)}
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", prose)) - anchors)
    assert not broken, f"links to no heading: {broken}"


def test_security_names_only_tests_that_exist():
    security = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", security)
    assert any("test_golden_lifecycle.py" in path for path, _ in named)
    for path, test in named:
        file = ROOT / path
        assert file.is_file(), f"SECURITY.md names {path}, which does not exist"
        if test:
            assert re.search(rf"^def {test}\(", file.read_text(encoding="utf-8"), re.M), (
                f"SECURITY.md names {path}::{test}, which does not exist"
            )


# --- many accounts: the README's map, its IAM and the matrix template agree --------------

# The IAM prefix of each service whose actions the README names, and botocore's name for it.
BOTOCORE_SERVICES = {"workspaces": "workspaces", "tag": "resourcegroupstaggingapi", "sts": "sts"}
MATRIX_TEMPLATE = ROOT / ".github/workflows/apply-matrix.yml"


def example_account_map() -> dict[str, dict[str, str]]:
    """The `accounts:` of the root defaults in the README's many-accounts example."""
    import yaml

    many = section("### Many accounts: the account map and imports")
    example = re.findall(r"```yaml\n(.+?)\n```", many, re.S)[0]
    (defaults,) = [d for d in yaml.safe_load_all(example) if "defaults" in d]
    accounts: dict[str, dict[str, str]] = defaults["defaults"]["accounts"]
    return accounts


def many_accounts_iam() -> str:
    return section("## IAM").split(MANY_ACCOUNTS_IAM, 1)[1]


def test_every_iam_action_the_readme_names_is_in_botocores_model():
    import botocore.session

    iam = section("## IAM")
    named = {a for d in json_blocks(iam) for s in d["Statement"] for a in statement_actions(s)}
    prose = re.sub(r"```.*?```", "", iam, flags=re.S)
    named |= set(re.findall(rf"`((?:{'|'.join(BOTOCORE_SERVICES)}):\w+)`", prose))
    assert {
        "sts:AssumeRole",
        "workspaces:CopyWorkspaceImage",
        "workspaces:UpdateWorkspaceImagePermission",
        "workspaces:DescribeWorkspaceImagePermissions",
    } <= named, "the scan must see the many-accounts actions, or it proves nothing"
    session = botocore.session.get_session()
    unknown = []
    for action in sorted(named):
        prefix, operation = action.split(":")
        model = session.get_service_model(BOTOCORE_SERVICES[prefix])
        if operation not in model.operation_names:
            unknown.append(action)
    assert not unknown, f"the README's IAM names actions botocore does not know: {unknown}"


def test_the_base_role_only_assumes_the_example_maps_roles():
    base, _trust = json_blocks(many_accounts_iam())
    (statement,) = base["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement_actions(statement) == {"sts:AssumeRole"}
    roles = sorted(account["role"] for account in example_account_map().values())
    assert sorted(statement["Resource"]) == roles


def test_the_target_roles_table_names_only_actions_of_the_apply_policy():
    table = "\n".join(line for line in many_accounts_iam().splitlines() if line.startswith("|"))
    named = set(re.findall(r"`(workspaces:\w+)`", table))
    assert "workspaces:CopyWorkspaceImage" in named
    _plan_and_drift, apply, _apply_with_deletions = iam_policies()
    assert named <= apply, f"not in the apply policy: {sorted(named - apply)}"


def test_the_trust_policy_example_names_the_session_name_and_the_maps_external_id():
    from reconciler.reach import SESSION_NAME

    _base, trust = json_blocks(many_accounts_iam())
    (statement,) = trust["Statement"]
    assert statement_actions(statement) == {"sts:AssumeRole"}
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", statement["Principal"]["AWS"])
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["sts:RoleSessionName"] == SESSION_NAME
    external_ids = {a["external_id"] for a in example_account_map().values() if "external_id" in a}
    assert conditions["sts:ExternalId"] in external_ids


def test_the_layout_has_a_folder_per_account_of_the_example_map():
    many = section("### Many accounts: the account map and imports")
    blocks = re.findall(r"^```(\w*)\n(.*?)\n```$", many, re.S | re.M)
    (tree,) = [body for language, body in blocks if not language and body.startswith("specs/\n")]
    folders = set(re.findall(r"── (\w[\w-]*)/", tree))
    assert folders == set(example_account_map())


@dataclass(frozen=True)
class MatrixRun:
    """One job of the matrix template as it runs, with its matrix entry's values in place."""

    job_id: str
    job: dict[str, Any]
    given: dict[str, str]  # the reconciler step's `with:`
    concurrency_group: str


def matrix_runs() -> list[MatrixRun]:
    import yaml

    workflow = yaml.safe_load(MATRIX_TEMPLATE.read_text(encoding="utf-8"))
    assert workflow["permissions"] == {}
    runs = []
    for job_id, job in workflow["jobs"].items():
        (step,) = [s for s in job["steps"] if "workspaces-image-reconciler@" in s.get("uses", "")]
        for entry in job.get("strategy", {}).get("matrix", {}).get("include", [{}]):

            def resolve(text: str, entry: dict[str, str] = entry) -> str:
                return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: entry[m[1]], text)

            given = {key: resolve(str(value)) for key, value in step["with"].items()}
            runs.append(MatrixRun(job_id, job, given, resolve(job["concurrency"]["group"])))
    return runs


def test_the_matrix_template_applies_every_account_of_the_example_map_in_one_job():
    runs = matrix_runs()
    accounts: list[str] = []
    for run in runs:
        assert run.given["command"] == "apply", run.job_id
        args = run.given["args"].split()
        assert "--auto-approve" in args, run.job_id
        assert "--account" in args, run.job_id
        accounts += [args[i + 1] for i, a in enumerate(args) if a == "--account"]
        assert "specs" not in run.given, "each job applies the whole specs folder"
        assert run.job["concurrency"]["cancel-in-progress"] is False
        assert run.job["permissions"] == {"contents": "read", "id-token": "write"}, run.job_id
        assert "${{ vars.RECONCILER_BASE_ROLE_ARN }}" in str(run.job["steps"]), "one base role"
    assert sorted(accounts) == sorted(example_account_map()), "each account in one job"
    labels = [run.given["label"] for run in runs]
    assert all(labels), labels
    assert len(set(labels)) == len(labels), "each job keeps its own report and marker"
    groups = [run.concurrency_group for run in runs]
    assert len(set(groups)) == len(groups), groups
    first = [run.job_id for run in runs if "--account images" in run.given["args"]]
    assert first == ["images"], "the images account's job shares before the imports"
    assert {run.job.get("needs") for run in runs if run.job_id != "images"} == {"images"}
