"""A run that stops on an error still says so in the format asked for (issue 10 item 11):
one JSON document with `error`, or a Markdown comment under the same marker as the run's
plan, apply or drift comment; and an apply that made changes and then failed shows its
results, then the error. Also the run's identity read from GitHub's environment (the
footer's links), refused when a value is not of the form GitHub sets.
"""

from __future__ import annotations

import html
import io
import json

import pytest

from reconciler.apply import Result
from reconciler.errors import ConfigError, ProblemKind, ReconcilerError, SpecError, SpecProblem
from reconciler.plan import FORMAT_VERSION
from reconciler.render import json as render_json
from reconciler.render import text
from reconciler.render.github import RunInfo, current_run
from reconciler.render.markdown import MAX_CHARS, error_markdown, markdown
from tests.render.builders import applied, every_action_plan
from tests.render.reading import marker, parse, units

PROBLEMS = [
    SpecProblem(
        "specs/finance/images.yaml", 3, 5, "tags.team", "expected a string; quote it",
        kind=ProblemKind.WRONG_TYPE,
    ),
    SpecProblem(
        "specs", 0, 0, "<folder>", "folder specs/private can't be read: permission denied",
        kind=ProblemKind.UNREADABLE_PATH,
    ),
    SpecProblem(
        "specs/x.yaml", 1, 1, "name", "</details><script>@org #1 `x` | [y](z) <!-- -->",
        kind=ProblemKind.INVALID_VALUE,
    ),
]  # fmt: skip
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/golden-images",
    "GITHUB_RUN_ID": "4242424242",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
}


# --- JSON ----------------------------------------------------------------------------------


def test_a_spec_error_is_one_json_document_with_every_problem() -> None:
    document = json.loads(render_json.error_document(SpecError(PROBLEMS)))
    assert document == {
        "format_version": FORMAT_VERSION,
        "error": {
            "message": "3 problems in the specs; nothing was changed.",
            "hint": "fix the lines above and run `reconciler validate` again",
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "field": p.field,
                    "message": p.message,
                }
                for p in sorted(PROBLEMS)
            ],
        },
    }


def test_another_error_has_no_problems_and_a_null_hint_when_it_has_none() -> None:
    document = json.loads(render_json.error_document(ConfigError("--endpoint-url: not a URL")))
    assert document == {
        "format_version": FORMAT_VERSION,
        "error": {"message": "--endpoint-url: not a URL", "hint": None, "problems": []},
    }


def test_an_apply_that_failed_after_changes_keeps_its_results_and_adds_the_error() -> None:
    plan = every_action_plan()
    done = applied(plan, {"finance-win11-2026-11": (Result.CREATED, None)})
    err = ReconcilerError("--wait-timeout ran out", hint="run apply again later")
    document = json.loads(render_json.dumps(done, error=err))
    assert document["error"] == {
        "message": "--wait-timeout ran out",
        "hint": "run apply again later",
        "problems": [],
    }
    plain = json.loads(render_json.dumps(done))
    assert "error" not in plain
    assert {k: v for k, v in document.items() if k != "error"} == plain


# --- Markdown ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "label", "headline"),
    [
        ("plan", None, "### ❌ Plan failed"),
        ("apply", "prod/eu-west-1", "### prod/eu-west-1 — ❌ Apply failed"),
        ("drift", "acct 1", "### acct 1 — ❌ Drift check failed"),
    ],
)
def test_a_failed_run_comment_has_the_marker_of_its_command(
    kind: str, label: str | None, headline: str
) -> None:
    out = error_markdown(ConfigError("no region", hint="pass --region"), kind=kind, label=label)
    parsed = parse(out, kind, label)
    assert parsed.lines[0] == marker(kind, label)
    # The same marker as the comment the run would have posted, so it replaces that one.
    assert (
        out.split("\n")[0] == markdown(every_action_plan(), kind=kind, label=label).split("\n")[0]
    )
    assert parsed.lines[2] == headline
    assert parsed.warnings == [
        f"> [!CAUTION]\n> **{headline.split('❌ ')[1]}**: no region\n> Hint: pass --region"
    ]


def test_a_spec_error_comment_lists_each_problem_escaped() -> None:
    out = error_markdown(SpecError(PROBLEMS), kind="plan", run=RunInfo(**_run_fields()))
    parsed = parse(out)  # only our tags; the one comment is the marker; every line known
    assert parsed.problems == [
        "specs <folder>: folder specs/private can't be read: permission denied",
        "specs/finance/images.yaml:3:5 tags.team: expected a string; quote it",
        "specs/x.yaml:1:1 name: </details><script>@org #1 `x` | [y](z) <!-- -->",
    ]
    assert parsed.hint == "fix the lines above and run `reconciler validate` again"
    assert parsed.footer is not None
    lines = out.splitlines()
    decoded = html.unescape(out)
    assert "@org" not in decoded.replace("@\u200borg", "")
    assert "<script>" not in out
    assert "](z)" not in out
    # The hint speaks of "the lines above": it comes after them.
    hint = next(n for n, line in enumerate(lines) if line.startswith("Hint: "))
    assert hint > max(n for n, line in enumerate(lines) if line.startswith("- "))
    assert lines[-1].startswith("Commit [`0123456`](https://github.com/acme/golden-images/")


def test_thousands_of_problems_fit_one_comment_and_say_how_many_are_left_out() -> None:
    many = [
        SpecProblem(
            f"specs/team-{n:05d}/images.yaml",
            7,
            3,
            "tags.team",
            "x" * 150,
            kind=ProblemKind.INVALID_VALUE,
        )
        for n in range(5_000)
    ]
    out = error_markdown(SpecError(many), kind="plan", label="big")
    assert units(out) <= MAX_CHARS
    shown = sum(line.startswith("- ") for line in out.splitlines())
    assert 100 < shown < 5_000
    parsed = parse(out, "plan", "big")
    assert len(parsed.problems) == shown
    assert parsed.problems_left_out == 5_000 - shown


def test_an_apply_result_with_an_error_says_it_failed_and_why() -> None:
    plan = every_action_plan()
    done = applied(plan, {"finance-win11-2026-11": (Result.CREATED, None)})
    err = ReconcilerError("--wait-timeout ran out with images still pending: a <b>", hint="wait")
    out = markdown(done, kind="apply", error=err)
    parsed = parse(out, "apply")
    assert parsed.lines[2].startswith("### Apply failed: 1 created")
    assert parsed.warnings[0] == (
        "> [!CAUTION]\n> **The run stopped on an error**: --wait-timeout ran out with images "
        "still pending&#58; a &lt;b&gt;\n> Hint: wait"
    )
    assert "→ **created**" in out  # the results so far are all there


def test_text_results_of_a_stopped_apply_do_not_say_complete() -> None:
    done = applied(every_action_plan(), {"finance-win11-2026-11": (Result.CREATED, None)})
    done = done.model_copy(
        update={"items": tuple(i for i in done.items if not i.is_error)}
    )  # nothing failed among the items themselves
    out = io.StringIO()
    text.render_applied(done, out)
    assert "Apply complete" in out.getvalue()
    stopped = io.StringIO()
    text.render_applied(done, stopped, stopped=True)
    assert "Apply failed: 1 created" in stopped.getvalue()
    assert "Apply complete" not in stopped.getvalue()


# --- the run, from GitHub's environment ----------------------------------------------------


def _run_fields() -> dict[str, str]:
    return {
        "server_url": GITHUB["GITHUB_SERVER_URL"],
        "repository": GITHUB["GITHUB_REPOSITORY"],
        "run_id": GITHUB["GITHUB_RUN_ID"],
        "sha": GITHUB["GITHUB_SHA"],
    }


def test_the_run_is_read_from_the_environment_in_actions_only() -> None:
    assert current_run(GITHUB) == RunInfo(**_run_fields())
    assert current_run({**GITHUB, "GITHUB_SERVER_URL": "https://ghe.example.com:8443/"}) == (
        RunInfo(**{**_run_fields(), "server_url": "https://ghe.example.com:8443"})
    )
    assert current_run({k: v for k, v in GITHUB.items() if k != "GITHUB_ACTIONS"}) is None
    assert current_run({**GITHUB, "GITHUB_ACTIONS": "false"}) is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GITHUB_SERVER_URL", "https://github.com) [click](https://evil.example"),
        ("GITHUB_SERVER_URL", "javascript:alert(1)"),
        ("GITHUB_SERVER_URL", "https://github.com/<b>"),
        ("GITHUB_REPOSITORY", "acme/golden images"),
        ("GITHUB_REPOSITORY", "acme/x)](https://evil.example"),
        ("GITHUB_REPOSITORY", "acme/golden-images\n"),
        ("GITHUB_RUN_ID", "42 43"),
        ("GITHUB_RUN_ID", ""),
        ("GITHUB_SHA", "0123456"),
        ("GITHUB_SHA", "g" * 40),
    ],
)
def test_a_value_not_of_githubs_form_gives_no_footer(variable: str, value: str) -> None:
    assert current_run({**GITHUB, variable: value}) is None
    field = {
        "GITHUB_SERVER_URL": "server_url",
        "GITHUB_REPOSITORY": "repository",
        "GITHUB_RUN_ID": "run_id",
        "GITHUB_SHA": "sha",
    }[variable]
    with pytest.raises(ValueError, match=variable):
        RunInfo(**{**_run_fields(), field: value})
