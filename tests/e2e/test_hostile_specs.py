"""Hostile input, seen from a pull-request author's side, end to end: the real `reconciler`
command against the local endpoint.

A spec is written by whoever opens a pull request, and the plan is read by a reviewer in a
pull-request comment (Markdown) or a CI log (text). The specs themselves can't carry markup
(the validator refuses it, before any AWS call), but live values from AWS can: tags and
descriptions that someone wrote in the console. Each is neutralised in every output.
Files that attack the loader (symlinks out of the folder, huge files, deep nesting, alias
bombs, Python tags) are refused quickly with a clear message, and nothing runs.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, ROOT, RunReconciler, SpecsDir
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
WS_A = "ws-0a1b2c3d4"
WS_B = "ws-0b1b2c3d4"
WS_C = "ws-0c1b2c3d4"

# Live values from AWS that try to break out of a comment, ping a team, split a table row,
# add a line to a log, or take over a terminal.
SCRIPT = "</details><script>alert(1)</script>"
MENTION = "@org/team"
PIPES = "| pipes |"
NEWLINE = "first line\nNo changes. The account matches the specs (1 unchanged)."
TERMINAL = "\x1b[2J\x1b[31mred\x1b]8;;http://evil/\x07link"
HOSTILE_TAGS = {
    "note": SCRIPT,
    "team": MENTION,
    "table": PIPES,
    "multi": NEWLINE,
    "term": TERMINAL,
    "<b>key|@x": "[link](http://evil/) **bold** `code` # heading",
}
# Our own markup in a Markdown plan; any other tag is someone else's.
OUR_TAGS = {
    "<code>",
    "</code>",
    "<br>",
    "<del>",
    "</del>",
    "<details>",
    "</details>",
    "<summary>",
    "</summary>",
}


def assert_markdown_inert(markdown: str) -> None:
    tags = set(re.findall(r"<[^>]*>", markdown))
    marker = {t for t in tags if t.startswith("<!-- workspaces-image-reconciler:")}
    assert tags - marker <= OUR_TAGS, tags - marker - OUR_TAGS
    assert "<script" not in markdown.lower()
    # GitHub finds mentions after decoding entities: none may remain even then.
    assert not re.search(r"@\w", html.unescape(markdown)), "an @mention"
    assert "](" not in markdown, "a link"
    assert "\x1b" not in markdown
    # Every table row is one line of exactly four cells.
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert rows
    for row in rows:
        assert row.endswith(" |"), row
        assert row.count("|") == 5, row
    # The newline inside a live value did not end a row or start a paragraph.
    assert "No changes. The account matches the specs" not in markdown.replace(
        "first line No changes.", ""
    )


def assert_terminal_safe(text: str) -> None:
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\x9b" not in text
    # The newline inside a live value was shown, not obeyed: no forged line.
    for line in text.splitlines():
        assert not line.startswith("No changes. The account matches the specs (1 unchanged)."), text


# --- the validator refuses markup in specs ---------------------------------------------------

# field -> hostile values a pull request might try; each is refused by the validator.
REFUSED = {
    "name": ["<script>alert(1)</script>", "img|x", "[x](http://evil)", "a@team", "img\x1b[2J"],
    "description": [SCRIPT, "**bold** text", "line\nbreak", "pipe | here", "`code`", "#h"],
    "tag key": ["<b>", "a|b", "`k`", "[k]", "k\x1b[31m"],
    "tag value": [SCRIPT, PIPES, "[x](http://evil)", "`rm`", "a\nb", "\x1b[2J", "*b*", "#h"],
}


def hostile_documents() -> list[tuple[str, str]]:
    """(file, YAML text) per hostile value, written with YAML's double-quoted escapes so
    that control characters reach the validator (raw ones the YAML reader refuses first)."""
    docs = []
    for field, values in REFUSED.items():
        for n, value in enumerate(values):
            quoted = '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
            name, description, tags = f"img-{n}", "Image", "{team: ok}"
            if field == "name":
                name = quoted
            elif field == "description":
                description = quoted
            elif field == "tag key":
                tags = "{" + quoted + ": v}"
            else:
                tags = "{team: " + quoted + "}"
            text = (
                f"name: {name}\ndescription: {description}\n"
                f"source_workspace_id: {WS_A}\ntags: {tags}\n"
            )
            docs.append((f"{field.replace(' ', '-')}-{n}.yaml", text))
    return docs


def test_markup_in_names_descriptions_and_tags_is_refused_before_any_aws_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    docs = hostile_documents()
    for file, text in docs:
        specs_dir.write(file, text)

    checked = run_reconciler("validate", specs_dir, endpoint=None, check_exit=1)
    for file, _ in docs:
        line = next((x for x in checked.stderr.splitlines() if f"/{file}:" in x), None)
        assert line is not None, (file, checked.stderr)
        assert re.search(rf"/{re.escape(file)}:\d+:\d+: (name|description|tags\S*): ", line)
    assert_terminal_safe(checked.stderr)
    github = run_reconciler("validate", specs_dir, "--format", "github", endpoint=None)
    assert github.code == 1
    assert len(github.stdout.splitlines()) >= len(docs)
    assert all(line.startswith("::error file=") for line in github.stdout.splitlines())
    assert "\x1b" not in github.stdout

    for command in (("plan", "--format", "markdown"), ("apply", "--auto-approve")):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, check_exit=1)
        assert "nothing was changed" in outcome.stderr
        if "markdown" in command:  # the error comment, in place of the plan comment
            assert outcome.stdout.startswith("<!-- workspaces-image-reconciler:plan -->")
            assert "❌ Plan failed" in outcome.stdout
        else:
            assert outcome.stdout == ""
        assert_terminal_safe(outcome.stderr)
    assert endpoint.calls.all() == []  # not even a read
    assert endpoint.fidelity.images(REGION) == []


def test_a_mention_allowed_in_a_spec_tag_is_not_a_mention_in_the_comment(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """`@` is a valid tag character (AWS allows it), so `owner: @org/team` is a valid spec;
    in a Markdown plan it must not ping the team."""
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A, tags={"owner": MENTION}))
    run_reconciler("validate", specs_dir, endpoint=None, check_exit=0)
    markdown = run_reconciler(
        "plan", specs_dir, "--format", "markdown", endpoint=endpoint, check_exit=0
    ).stdout
    assert_markdown_inert(markdown)
    assert "@\u200borg/team" in html.unescape(markdown)  # shown, but not a mention
    assert endpoint.calls.changing() == []
    assert endpoint.fidelity.images(REGION) == []


# --- live values from AWS are neutralised in every output --------------------------------------


def test_hostile_live_tags_and_descriptions_are_neutralised_in_markdown_text_and_annotations(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    fidelity = endpoint.fidelity
    fidelity.add_workspace(REGION, WS_A)
    # An owned image whose live tags someone edited in the console: update-tags.
    tagged = fidelity.add_image(
        REGION, "tagged", "Image tagged", tags={**OWN, "keep": "x", **HOSTILE_TAGS}
    )
    # An owned image whose live description differs: a conflict, whose reason quotes it.
    fidelity.add_image(REGION, "described", f"{SCRIPT} {MENTION} {PIPES} {TERMINAL}", tags=OWN)
    # An owned image in ERROR whose error message is hostile: a conflict too.
    fidelity.add_image(
        REGION,
        "broken",
        "Image broken",
        tags=OWN,
        state="ERROR",
        error_code="Internal|Error",
        error_message=f"{NEWLINE} {SCRIPT} {TERMINAL}",
    )
    # An owned image that no spec declares, with a hostile name: listed as unmanaged.
    fidelity.add_image(REGION, f"evil{SCRIPT}{MENTION}|{TERMINAL}", "x", tags=OWN)
    specs_dir.write(
        "images.yaml",
        specs_dir.image("tagged", WS_A, tags={"keep": "x", "team": "finance"}),
        specs_dir.image("described", WS_A),
        specs_dir.image("broken", WS_A),
    )
    summary = tmp_path / "step-summary.md"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}

    plan_md = run_reconciler(
        "plan", specs_dir, "--format", "markdown", endpoint=endpoint, env=actions, check_exit=1
    )
    assert_markdown_inert(plan_md.stdout)
    shown = html.unescape(plan_md.stdout).replace("\u200b", "")
    for value in (SCRIPT, MENTION, PIPES, "first line No changes."):  # shown as written
        assert value in shown, value
    assert "\\x1b[2J\\x1b[31mred" in shown  # the escapes shown, not obeyed
    assert_markdown_inert(summary.read_text(encoding="utf-8"))
    # The annotations (stderr, read by the runner as workflow commands) are one line each.
    annotations = [x for x in plan_md.stderr.splitlines() if x.startswith("::")]
    assert len(annotations) == 2  # the two conflicts
    assert "\x1b" not in plan_md.stderr
    assert all(x.startswith("::error file=") for x in annotations)

    for command in (("plan",), ("plan", "-v"), ("drift",), ("drift", "--format", "markdown")):
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, env=actions)
        assert outcome.code in (1, 2), outcome
        if "markdown" in command:
            assert_markdown_inert(outcome.stdout)
        assert_terminal_safe(outcome.stdout)
        assert "\x1b" not in outcome.stderr

    for fmt in ("text", "markdown"):
        applied = run_reconciler(
            "apply", specs_dir, "--auto-approve", "--format", fmt, endpoint=endpoint, check_exit=1
        )
        if fmt == "markdown":
            assert_markdown_inert(applied.stdout)
        assert_terminal_safe(applied.stdout)
    # The tags were reconciled (the hostile ones removed); nothing else was touched.
    assert fidelity.image_tags(REGION, tagged) == {**OWN, "keep": "x", "team": "finance"}
    names = {i["name"] for i in fidelity.images(REGION)}
    assert len(names) == 4
    assert {c.operation for c in endpoint.calls.changing()} == {"CreateTags", "DeleteTags"}


# --- files that attack the loader ---------------------------------------------------------------


def test_a_symlink_out_of_the_specs_folder_is_refused(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler, tmp_path: Path
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_A)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.yaml").write_text(
        f"name: stolen\ndescription: Stolen\nsource_workspace_id: {WS_A}\n", encoding="utf-8"
    )
    specs_dir.write("images.yaml", specs_dir.image("img", WS_A))
    (specs_dir.path / "linked.yaml").symlink_to(outside / "stolen.yaml")
    (specs_dir.path / "linked-dir").symlink_to(outside, target_is_directory=True)
    # A symlink that stays inside the folder is fine.
    (specs_dir.path / "inner").mkdir()
    (specs_dir.path / "inner" / "same.yaml").symlink_to(specs_dir.path / "images.yaml")

    checked = run_reconciler("validate", specs_dir, endpoint=None, check_exit=1)
    refused = [x for x in checked.stderr.splitlines() if "symlink to outside" in x]
    assert len(refused) == 2, checked.stderr
    assert any("/linked.yaml:" in x for x in refused)
    assert any("/linked-dir" in x for x in refused)
    assert "copy the file in instead" in refused[0]
    assert "stolen" not in checked.stderr.replace("/stolen.yaml", "")
    run_reconciler("apply", specs_dir, "--auto-approve", endpoint=endpoint, check_exit=1)
    assert endpoint.calls.all() == []
    assert endpoint.fidelity.images(REGION) == []


def _huge() -> str:
    spec = f"name: big\ndescription: Big\nsource_workspace_id: {WS_A}\n"
    return spec + "# padding\n" * (5 * 1024 * 1024 // 10)


def _deep(levels: int) -> str:
    return "name: " + "[" * levels + "]" * levels + "\n"


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join([*lines, "name: *a9", ""])


TOO_DEEP = "nested deeper than 32 levels"
LOADER_ATTACKS = {
    # name: (file text, words of the one clear message)
    "5 MB file": (_huge(), "spec files are limited to 1 MiB"),
    "10,000-deep nesting": (_deep(10_000), TOO_DEEP),
    # Beyond a few tens of thousands of levels, libyaml's recursive composer overflowed the
    # C stack: the process crashed (SIGSEGV) on a 100 KB file.
    "200,000-deep nesting": (_deep(200_000), TOO_DEEP),
    "compact nesting": ("- " * 100_000 + "x\n", TOO_DEEP),
    "alias bomb": (_alias_bomb(), "an alias bomb"),
    "python tag": (
        'name: !!python/object/apply:os.system ["touch PWNED"]\n'
        f"description: x\nsource_workspace_id: {WS_A}\n",
        "unsupported YAML tag",
    ),
}


@pytest.mark.parametrize("attack", list(LOADER_ATTACKS))
def test_a_file_attacking_the_loader_is_refused_quickly_with_a_clear_message(
    endpoint: LocalEndpoint,
    specs_dir: SpecsDir,
    run_reconciler: RunReconciler,
    tmp_path: Path,
    attack: str,
) -> None:
    text, words = LOADER_ATTACKS[attack]
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("ok.yaml", specs_dir.image("ok", WS_A))
    specs_dir.write("attack.yaml", text)
    pwned = [ROOT / "PWNED", tmp_path / "PWNED", Path.cwd() / "PWNED"]

    for command in (("validate",), ("apply", "--auto-approve")):
        started = time.monotonic()
        outcome = run_reconciler(*command, specs_dir, endpoint=endpoint, check_exit=1)
        assert time.monotonic() - started < 10
        problems = [x for x in outcome.stderr.splitlines() if "/attack.yaml:" in x]
        assert len(problems) == 1, outcome.stderr
        assert words in problems[0], problems[0]
        assert outcome.stdout == ""
        assert len(outcome.stderr) < 2_000  # one clear message, not the file echoed back
    assert endpoint.calls.all() == []
    assert endpoint.fidelity.images(REGION) == []
    assert not any(p.exists() for p in pwned)
