"""Error annotations in GitHub Actions for items of every kind, on the line of the spec
that declares them (an image's copies and shares are declared by its spec)."""

from __future__ import annotations

import io
import re

import pytest

from reconciler.plan import Action, Plan
from reconciler.render.github import annotate_items
from reconciler.results import Result
from tests.render.builders import applied, lifecycle_plan

ANNOTATION = re.compile(r"^::error file=([^,]+),line=(\d+),col=1,title=([^:]*)::(.*)$")


def annotations(document: Plan) -> list[tuple[str, int, str, str]]:
    out = io.StringIO()
    annotate_items(document, out, root="specs")
    found = []
    for line in out.getvalue().splitlines():
        match = ANNOTATION.match(line)
        assert match, line
        file, number, title, message = match.groups()
        found.append((file, int(number), title, message))
    return found


@pytest.fixture(autouse=True)
def in_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")


def test_conflicts_of_every_kind_are_annotated_on_their_spec_lines() -> None:
    plan = lifecycle_plan()
    broken = {
        ("bundle", "", "eu-west-1", "finance-power"): {
            "action": Action.CONFLICT,
            "reason": "compute type differs (live: 'VALUE')",
        },
        ("image", "", "us-east-1", "finance-win11-2026-11"): {
            "action": Action.BLOCKED,
            "reason": "its source image in eu-west-1 is conflict",
        },
    }
    items = tuple(i.model_copy(update=broken[i.key]) if i.key in broken else i for i in plan.items)
    found = annotations(plan.model_copy(update={"items": items}))
    assert found == [
        (
            "specs/finance/images.yaml",
            1,
            "blocked",
            "copy in us-east-1: its source image in eu-west-1 is conflict",
        ),
        (
            "specs/finance/bundles.yaml",
            10,
            "bundle conflict",
            "compute type differs (live: 'VALUE')",
        ),
    ]


def test_failures_of_shares_and_bundles_in_an_apply_result_are_annotated() -> None:
    plan = lifecycle_plan()
    document = applied(
        plan,
        {
            ("share", "", "eu-west-1", "finance-win11-2026-10"): (
                Result.FAILED,
                "AccessDeniedException: no (hint: the role lacks "
                "workspaces:UpdateWorkspaceImagePermission)",
            ),
            ("bundle", "", "eu-west-1", "contractors"): (Result.FAILED, "ResourceNotFound"),
        },
    )
    assert annotations(document) == [
        (
            "specs/finance/images.yaml",
            12,
            "share failed",
            "sharing in eu-west-1: AccessDeniedException: no (hint: the role lacks "
            "workspaces:UpdateWorkspaceImagePermission)",
        ),
        ("specs/finance/bundles.yaml", 19, "bundle failed", "ResourceNotFound"),
    ]


def test_nothing_outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS")
    document = applied(
        lifecycle_plan(), {("bundle", "", "eu-west-1", "contractors"): (Result.FAILED, "x")}
    )
    assert annotations(document) == []
