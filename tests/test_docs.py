"""The README, the docs pages, .ci/run, the bundled files and the CLI stay in line with each
other. The README is the landing page; the reference is in docs/ (an MkDocs site), and the
checks of options, IAM actions and examples against the code read the page that holds them."""

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
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def page(name: str) -> str:
    """A page of the docs, such as "iam.md"."""
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The part of ``text`` under ``heading`` (a whole line, "## IAM"), up to the next heading
    of its level or above; fenced code (where `#` starts a comment) is never a heading."""
    level = len(heading) - len(heading.lstrip("#"))
    found, fenced, lines = False, False, []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.rstrip("\n") == heading:
            found = True
            continue
        elif found and not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        if found:
            lines.append(line)
    assert found, f"no heading {heading!r}"
    return "".join(lines)


def quick_start_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", section(README, "## Quick start"))


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
        commands = page("commands.md")
        assert f"reconciler {command}" in commands
        undocumented = [o for o in wanted if o.startswith("--") and f"`{o}" not in commands]
        assert not undocumented, f"docs/commands.md does not document {undocumented}"


def test_the_docs_document_every_exit_code_row():
    exit_codes = section(page("commands.md"), "## Exit codes (Terraform's convention)")
    for command in ("validate", "plan", "drift", "apply"):
        assert re.search(rf"^\| `{command}` \|", exit_codes, re.M), command


def test_install_and_the_pre_commit_hook_name_this_release():
    tag = f"v{__version__}"
    for install in (section(README, "## Install"), page("install.md")):
        assert f"workspaces-image-reconciler@{tag}'" in install, "install from this release's tag"
    install = page("install.md")
    assert "docker build -t reconciler ." in install
    assert "workspaces-image-reconciler@" in install.split("GitHub Actions", 1)[1]
    assert f"rev: {tag}" in section(page("github-actions.md"), "## Validate on commit")
    assert f"rev: {tag}" in (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    everywhere = README + "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    named = set(re.findall(r"workspaces-image-reconciler@(v[\w.]+)", everywhere))
    named |= set(re.findall(r"workspaces-image-reconciler@[^\n]*# (v[\w.]+)", everywhere))
    assert named == {tag}, f"every release the README and the docs name is this one: {named}"


def test_the_docs_document_every_input_and_output_of_the_action():
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    text = section(page("github-actions.md"), "## The action")
    for name in [*action["inputs"], *action["outputs"]]:
        assert re.search(rf"^\| [^|]*`{name}`", text, re.M), f"no table row for `{name}`"


# --- the golden-image lifecycle: what the docs promise about the code -----------------------

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


IAM = "iam.md"
PER_COMMAND_IAM = "## Policies per command"
TRUST_IAM = "## Trust policies: which workflow runs take each role"
MANY_ACCOUNTS_IAM = "## Many accounts: the base role and the target roles"


def json_blocks(text: str) -> list[dict[str, Any]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.+?)\n```", text, re.S)]


def statement_actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def iam_policies() -> list[set[str]]:
    """The actions of each per-command policy of the IAM page, in order."""
    per_command = section(page(IAM), PER_COMMAND_IAM)
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
    table = section(page(IAM), PER_COMMAND_IAM)
    undocumented = [a for a in sorted(calls) if not re.search(rf"^\| `{a}` \|", table, re.M)]
    assert not undocumented, f"the IAM table has no row for {undocumented}"


def test_every_action_and_result_is_documented():
    from reconciler.plan import Action
    from reconciler.results import Result

    actions = page("actions.md")
    assert not [a.value for a in Action if f"`{a.value}`" not in actions]
    for name in ("actions.md", "json.md"):
        missing = [r.value for r in Result if f"`{r.value}`" not in page(name)]
        assert not missing, f"docs/{name} does not name the results {missing}"


def test_every_spec_field_is_shown_in_the_specs_examples():
    from reconciler.specs.models import BundleSpecDocument, DefaultsBody, ImageSpecDocument

    # The spec format's pages: one account's specs, and the account map and imports.
    text = page("specs.md") + page("many-accounts.md")
    # A block may be indented (in a list item); its fence closes at the same indentation.
    blocks = re.findall(r"^( *)```yaml\n(.+?)\n\1```", text, re.S | re.M)
    examples = "\n".join(block for _, block in blocks)
    for model in (ImageSpecDocument, BundleSpecDocument, DefaultsBody):
        missing = [f for f in model.model_fields if not re.search(rf"^ *{f}:", examples, re.M)]
        assert not missing, f"the Specs examples lack {model.__name__} fields {missing}"


def test_the_json_example_is_a_format_2_plan_the_models_read_and_write_back():
    from reconciler.plan import FORMAT_VERSION, Plan, PlanItem, Unmanaged

    (block,) = re.findall(r"```json\n(.+?)\n```", page("json.md"), re.S)
    document = json.loads(block)
    assert document["format_version"] == FORMAT_VERSION == 2
    summary = document.pop("summary")
    assert list(document)[-1] == "plan_digest", "printed last, after the summary"
    assert document.pop("plan_digest").startswith("sha256:")
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


def _prose(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def rendered(path: Path) -> str:
    """A page as the site shows it: a snippet line (`--8<-- "FILE"`, pymdownx.snippets, from
    the repository root as mkdocs.yml says) replaced by that file."""

    def include(match: re.Match[str]) -> str:
        return (ROOT / match[1]).read_text(encoding="utf-8")

    return re.sub(r'^--8<-- "([^"]+)"$', include, path.read_text(encoding="utf-8"), flags=re.M)


def anchors(path: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", _prose(rendered(path)), re.M)}


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file whose file, or heading, does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(rendered(path))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        exists = linked.exists()
        if not exists or (anchor and (linked.suffix != ".md" or anchor not in anchors(linked))):
            broken.append(target)
    return broken


def test_the_readmes_links_resolve_into_the_docs_pages_and_their_headings():
    links = re.findall(r"\]\(([^)\s]+)\)", _prose(README))
    assert any(link.startswith("#") for link in links), "the scan must see links to itself"
    into_docs = [link for link in links if link.startswith("docs/")]
    assert any("#" in link for link in into_docs), "the scan must see links to a heading"
    assert {link.split("#")[0] for link in into_docs} >= {"docs/iam.md", "docs/commands.md"}
    assert not broken_links(ROOT / "README.md")


def test_the_docs_pages_link_only_to_pages_and_headings_that_exist():
    for path in sorted(DOCS.glob("*.md")):
        assert not broken_links(path), path.name
        # The site holds docs/ only: a link out of it is broken there (the strict build says so
        # too); the repository's other files are named in code spans.
        for target in re.findall(r"\]\(([^)\s#]+)", _prose(rendered(path))):
            if not re.match(r"[a-z]+:", target):
                assert (path.parent / target).resolve().is_relative_to(DOCS), (path.name, target)


def test_the_readme_is_a_landing_page_under_250_lines():
    lines = README.splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines"
    assert len(quick_start_commands()) == 2


def mkdocs_config() -> dict[str, Any]:
    """mkdocs.yml, with its Python tags (the toc's slugify function) read as None."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
    config: dict[str, Any] = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader)
    return config


def nav_pages(nav: list[Any]) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = mkdocs_config()
    assert config["docs_dir"] == "docs"
    assert config["theme"]["name"] == "material"
    nav = nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), nav
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages
    for name in ("performance.md", "security.md"):
        assert name in nav


def test_the_security_page_is_security_md_itself():
    assert (ROOT / "SECURITY.md").read_text(encoding="utf-8") in rendered(DOCS / "security.md")


def test_ci_builds_the_docs_strictly_outside_the_repository():
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert 'python -m mkdocs build --strict --site-dir "$(mktemp -d)"' in ci.splitlines()
    assert "site/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def fenced(text: str, lang: str = "") -> list[str]:
    """The fenced blocks of ``text`` whose info string is ``lang`` ("" for plain ones)."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)
    return [body for info, body in fences if info == lang]


def is_excerpt(shown: str, full: str) -> bool:
    """Whether ``shown`` is ``full`` with runs of lines left out where it says `...`."""
    chunks: list[list[str]] = [[]]
    for line in shown.splitlines():
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line)
    gap = r"(?:[^\n]*\n)+"
    pattern = gap.join(re.escape("".join(f"{line}\n" for line in c)) for c in chunks)
    return re.fullmatch(pattern, full if full.endswith("\n") else f"{full}\n") is not None


def test_the_readmes_worked_rollout_is_an_excerpt_of_the_one_the_e2e_test_runs():
    """tests/e2e/test_demo_serve.py runs the lifecycle page's worked rollout and compares its
    output; the README's shortened one must be that one, lines left out and nothing else."""
    full = section(page("lifecycle.md"), "## A worked rollout")
    short = section(README, "## A worked rollout")
    assert fenced(short, "sh") == fenced(full, "sh"), "every command, as written"
    outputs = iter(fenced(full))
    shown = fenced(short)
    assert len(shown) >= 3, "the endpoint, the plan and the results"
    for block in shown:
        assert any(is_excerpt(block, candidate) for candidate in outputs), block
    assert "..." in "".join(shown), "the scan must see a shortened block"
    (said,) = re.findall(r"`(No changes\..*?)`", full.replace("\n", " "))
    assert said in short.replace("\n", " ")


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


# --- many accounts: the docs' map, their IAM and the matrix template agree -----------------

# The IAM prefix of each service whose actions the docs name, and botocore's name for it.
BOTOCORE_SERVICES = {"workspaces": "workspaces", "tag": "resourcegroupstaggingapi", "sts": "sts"}
MATRIX_TEMPLATE = ROOT / ".github/workflows/apply-matrix.yml"


def example_account_map() -> dict[str, dict[str, str]]:
    """The `accounts:` of the root defaults in the many-accounts page's example."""
    import yaml

    many = section(page("many-accounts.md"), "## The account map and imports")
    example = re.findall(r"```yaml\n(.+?)\n```", many, re.S)[0]
    (defaults,) = [d for d in yaml.safe_load_all(example) if "defaults" in d]
    accounts: dict[str, dict[str, str]] = defaults["defaults"]["accounts"]
    return accounts


def many_accounts_iam() -> str:
    return section(page(IAM), MANY_ACCOUNTS_IAM)


def test_every_iam_action_the_docs_name_is_in_botocores_model():
    import botocore.session

    iam = page(IAM)
    named = {a for d in json_blocks(iam) for s in d["Statement"] for a in statement_actions(s)}
    # And every action named in prose, on any page or in the README.
    prose = _prose(README + "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")))
    named |= set(re.findall(rf"`((?:{'|'.join(BOTOCORE_SERVICES)}):\w+)`", prose))
    assert {
        "sts:AssumeRole",
        "sts:AssumeRoleWithWebIdentity",
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
    assert not unknown, f"the docs name actions botocore does not know: {unknown}"


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
    many = page("many-accounts.md")
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
    environment: str


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
            group, environment = job["concurrency"]["group"], job["environment"]
            runs.append(MatrixRun(job_id, job, given, resolve(group), resolve(environment)))
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
        assert run.job["permissions"] == {
            "contents": "read",
            "id-token": "write",
            "pull-requests": "write",  # the reviewed plan's comment, the result beside it
        }, run.job_id
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


# --- OIDC: each role's trust admits exactly the subject of the template that takes it -----

OIDC = "token.actions.githubusercontent.com"
SUBJECT = "repo:ORG/REPO:"
WORKFLOWS = ROOT / ".github/workflows"


def workflow(name: str) -> dict[str, Any]:
    import yaml

    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def oidc_subjects(heading: str) -> list[str]:
    """The subjects that the trust policy under ``heading`` (in the IAM page's trust part)
    admits, after checking it is a GitHub OIDC trust done right: one statement, the
    provider of token.actions.githubusercontent.com, the audience sts.amazonaws.com, and
    StringEquals only (a StringLike with `*` admits every branch)."""
    (document,) = json_blocks(section(section(page(IAM), TRUST_IAM), heading))
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement_actions(statement) == {"sts:AssumeRoleWithWebIdentity"}
    provider = statement["Principal"]["Federated"]
    assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:oidc-provider/{re.escape(OIDC)}", provider)
    assert list(statement["Condition"]) == ["StringEquals"], heading
    condition = statement["Condition"]["StringEquals"]
    assert set(condition) == {f"{OIDC}:aud", f"{OIDC}:sub"}, heading
    assert condition[f"{OIDC}:aud"] == "sts.amazonaws.com"
    subjects = condition[f"{OIDC}:sub"]
    subjects = [subjects] if isinstance(subjects, str) else subjects
    assert all(s.startswith(SUBJECT) and "*" not in s for s in subjects), subjects
    return [s.removeprefix(SUBJECT) for s in subjects]


def test_the_plan_role_trusts_the_pull_requests_that_plan_yml_runs_on():
    plan = workflow("plan.yml")
    assert list(plan["on"]) == ["pull_request"]
    assert all("environment" not in job for job in plan["jobs"].values())
    assert oidc_subjects("### The plan role (pull requests)") == ["pull_request"]


def test_the_apply_role_trusts_the_environment_apply_yml_runs_in():
    apply = workflow("apply.yml")
    assert apply["on"]["push"]["branches"] == ["main"]
    (environment,) = {job["environment"] for job in apply["jobs"].values()}
    heading = "### The apply role (the protected environment, main only)"
    assert oidc_subjects(heading) == [f"environment:{environment}"]
    # The subject names no branch: the page says to restrict the environment to main.
    rule = section(page("github-actions.md"), "### Restrict the environment to main")
    assert "deployment branch rule" in rule
    assert f"environment:{environment}" in rule


def test_the_drift_role_trusts_scheduled_runs_on_main_not_the_plan_subject():
    drift = workflow("drift.yml")
    assert "schedule" in drift["on"]
    assert all("environment" not in job for job in drift["jobs"].values())
    subjects = oidc_subjects("### The drift role (scheduled runs on main)")
    assert subjects == ["ref:refs/heads/main"]
    assert subjects != oidc_subjects("### The plan role (pull requests)")


def test_the_base_role_trusts_exactly_the_environments_of_the_matrix_template():
    environments = sorted({f"environment:{run.environment}" for run in matrix_runs()})
    assert sorted(oidc_subjects("### The base role of many accounts")) == environments


def test_the_ci_page_names_each_templates_subject_as_its_trust_policy_does():
    ci = section(page("github-actions.md"), "## AWS credentials through OIDC")
    for template, heading in (
        ("plan.yml", "### The plan role (pull requests)"),
        ("apply.yml", "### The apply role (the protected environment, main only)"),
        ("drift.yml", "### The drift role (scheduled runs on main)"),
    ):
        (row,) = re.findall(rf"^\| `{re.escape(template)}` \|.*$", ci, re.M)
        (subject,) = oidc_subjects(heading)
        assert f"`{SUBJECT}{subject}`" in row, template
