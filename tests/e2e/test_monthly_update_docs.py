"""The docs' monthly update (docs/lifecycle.md, "The monthly update"): each command there,
run against the local endpoint with AWS's updates offered for last month's image, prints
what the page shows (ids apart)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, RunReconciler, SpecsDir
from tests.e2e.test_demo_serve import blocks, same_ids
from tests.fidelity import LocalEndpoint

ROOT = Path(__file__).resolve().parents[2]
WS_A = "ws-0a1b2c3d4"
NEWS = "WorkSpaces agent 3.2 and updated graphics drivers"


def section() -> str:
    text = (ROOT / "docs/lifecycle.md").read_text(encoding="utf-8")
    return text.split("\n## The monthly update\n", 1)[1].split("\n## ", 1)[0]


def _run(run: RunReconciler, endpoint: LocalEndpoint, line: str, specs: SpecsDir) -> str:
    """One `reconciler ...` line of the page, run on `specs` (the page's `specs`)."""
    args = line.removeprefix("$ reconciler ").split()
    assert args[-1] == "specs", line
    done = run(*args[:-1], specs, endpoint=endpoint, timeout=120)
    assert "Traceback" not in done.stderr
    return f"{line}\n{done.stdout}(exit {done.code})\n"


@pytest.mark.fidelity(capture_seconds=1.0)
def test_the_monthly_update_prints_what_the_page_shows(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    page = section()
    november, december = blocks(page, "yaml")
    shown = blocks(page)
    # Last month: the image and its bundle, made and AVAILABLE; then AWS publishes updates.
    endpoint.fidelity.add_workspace(REGION, WS_A)
    specs_dir.write("finance.yaml", november)
    run_reconciler("apply", specs_dir, "--auto-approve", "--wait", endpoint=endpoint,
                   check_exit=0, timeout=120)  # fmt: skip
    image = next(i for i in endpoint.fidelity.images(REGION) if i["tags"].get(OWNERSHIP_TAG_KEY))
    endpoint.fidelity.offer_update(REGION, image["id"], description=NEWS)

    printed = [_run(run_reconciler, endpoint, shown[0].splitlines()[0], specs_dir)]
    specs_dir.write("finance.yaml", december)
    for block in shown[1:]:
        printed.append(_run(run_reconciler, endpoint, block.splitlines()[0], specs_dir))
    for got, want in zip(printed, shown, strict=True):
        assert same_ids(got) == same_ids(want), got
    assert re.search(r"updated_from: finance-win11-2026-11", december)
