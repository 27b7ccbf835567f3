"""Many accounts end to end (issue 18; CONTRACT.md, "Many accounts"): the real command
(`python -m reconciler`) against the local endpoint, which serves several accounts at once.

The endpoint's STS hands out, for `arn:aws:iam::ACCOUNT:role/...`, credentials that act in
ACCOUNT (moto's own rule), so every WorkSpaces and tagging call is counted at the server in
the account it acted in (`Call.account`). The run's own credentials (the base) are moto's
account 123456789012, which no map here declares: it must never be read nor changed.

Each test asserts exit codes, the JSON items' `account`, `account_name`, `source_account`
and `copy_from`, and which calls reached which account.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from tests.e2e.conftest import REGION, Outcome, RunReconciler, SpecsDir, bundle_doc
from tests.fidelity import LocalEndpoint

OWN = {OWNERSHIP_TAG_KEY: "true"}
BASE = "123456789012"  # moto's account for the test credentials: the run's own
IMAGES = "111111111111"
FINANCE = "222222222222"
PAYROLL = "333333333333"
OUTSIDE = "444444444444"  # an account no map declares (a vendor sharing an image)
IDS = {"images": IMAGES, "finance": FINANCE, "payroll": PAYROLL}
FINANCE_EXTERNAL_ID = "finance-2026"
SESSION_NAME = "workspaces-image-reconciler"

GOLDEN = "finance-win11-2026-11"
GOLDEN_DESCRIPTION = "Finance golden image 2026-11"
BUNDLE = "finance-standard"
WS_IMAGES = "ws-0a1b2c3d4"
WS_FINANCE = "ws-0f1e2d3c4"
WS_PAYROLL = "ws-0c1c2c3c4"
WS_SILVER = "ws-0d1d2d3d4"
WS_NONE = "ws-0e0e0e0e0"  # no WorkSpace has it: fine for a spec whose image exists

REFUSED = "not authorized to perform sts:AssumeRole"  # AWS's answer, without the ARN in it

Key = tuple[str, str, str, str]  # account id, kind, region, name


# --- helpers -----------------------------------------------------------------------------


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/workspaces-reconciler"


def write_map(specs: SpecsDir, *names: str) -> None:
    """The root defaults with the account map (each account reached through its role;
    finance with an external id), and a `<name>/defaults.yaml` saying `account: <name>`
    for each: a folder per account, the organisation layout."""
    accounts: dict[str, dict[str, str]] = {}
    for name in names:
        entry = {"id": IDS[name], "role": role(IDS[name])}
        if name == "finance":
            entry["external_id"] = FINANCE_EXTERNAL_ID
        accounts[name] = entry
    specs.write("defaults.yaml", {"defaults": {"region": REGION, "accounts": accounts}})
    for name in names:
        specs.write(f"{name}/defaults.yaml", {"defaults": {"account": name}})


def capture_doc(
    name: str, source: str, description: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description or f"Image {name}",
        "source_workspace_id": source,
        **extra,
    }


def import_doc(name: str, account: str, **extra: Any) -> dict[str, Any]:
    """An image spec importing `account`'s image of the same name (its own region)."""
    return {
        "name": name,
        "description": GOLDEN_DESCRIPTION,
        "source_image": {"account": account, "name": name},
        **extra,
    }


def write_rollout(specs: SpecsDir) -> None:
    """The rollout: images captures the golden image and shares it with finance; finance
    imports it and publishes a bundle on the import."""
    write_map(specs, "images", "finance")
    specs.write(
        "images/golden.yaml",
        capture_doc(GOLDEN, WS_IMAGES, GOLDEN_DESCRIPTION, share_with=["finance"]),
    )
    specs.write(
        "finance/golden.yaml",
        import_doc(GOLDEN, "images"),
        bundle_doc(BUNDLE, image=GOLDEN),
    )


def assert_valid(run: RunReconciler, specs: SpecsDir) -> None:
    """The specs pass `validate` (offline): a failure of the test is the engine's, not a
    spec of the test's."""
    run("validate", specs, endpoint=None, check_exit=0)


def by_key(outcome: Outcome) -> dict[Key, dict[str, Any]]:
    """The items of a plan or apply JSON document by (account, kind, region, name)."""
    found: dict[Key, dict[str, Any]] = {}
    for item in outcome.json()["items"]:
        key = (item["account"], item["kind"], item["region"], item["name"])
        assert key not in found, f"two items for {key}"
        found[key] = item
    return found


def results(outcome: Outcome) -> dict[Key, tuple[str, str | None]]:
    return {k: (v["result"], v["error"]) for k, v in by_key(outcome).items()}


def unmanaged(outcome: Outcome) -> dict[tuple[str, str | None, str, str], dict[str, Any]]:
    """`unmanaged` entries by (account, account_name, kind, name)."""
    return {
        (u["account"], u["account_name"], u["kind"], u["name"]): u
        for u in outcome.json()["unmanaged"]
    }


def changes(endpoint: LocalEndpoint) -> Counter[tuple[str, str]]:
    """(operation, account) of every WorkSpaces or tagging call that may change something
    (answered or not): every Create*, Copy*, Update*, Delete*, tag write."""
    return Counter((c.operation, c.account) for c in endpoint.calls.changing() if c.api != "sts")


def acted_in(endpoint: LocalEndpoint, account: str) -> list[str]:
    """Operations of the WorkSpaces and tagging calls that acted in `account`."""
    return [c.operation for c in endpoint.calls.all() if c.api != "sts" and c.account == account]


def images_of(endpoint: LocalEndpoint, account: str) -> dict[str, dict[str, Any]]:
    found = endpoint.fidelity.images(REGION, account)
    by_name = {i["name"]: i for i in found}
    assert len(by_name) == len(found), f"an image made twice in {account}: {found}"
    return by_name


def bundles_of(endpoint: LocalEndpoint, account: str) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in endpoint.fidelity.bundles(REGION, account)}


def finish_pending(endpoint: LocalEndpoint, accounts: Iterable[str]) -> None:
    """End every capture and copy still PENDING in these accounts (AVAILABLE)."""
    for account in accounts:
        for image in endpoint.fidelity.images(REGION, account):
            if image["state"] == "PENDING":
                endpoint.fidelity.finish_capture(REGION, image["id"], account_id=account)


def record_assume_role(endpoint: LocalEndpoint) -> list[dict[str, str]]:
    """The parameters of every AssumeRole the endpoint receives from now on. A rule that
    never matches, so it refuses nothing; it must be armed before any refusing rule (the
    first matching rule answers)."""
    seen: list[dict[str, str]] = []

    def note(query: dict[str, Any]) -> bool:
        seen.append(dict(query))
        return False

    endpoint.faults.error_for("AssumeRole", "NeverAnswered", when=note)
    return seen


def apply_json(
    run: RunReconciler,
    specs: SpecsDir,
    endpoint: LocalEndpoint,
    *extra: str,
    check_exit: int | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Outcome:
    return run(
        "apply", specs, "--auto-approve", "--format", "json", *extra,
        endpoint=endpoint, check_exit=check_exit, env=env, timeout=120,
    )  # fmt: skip


def plan_json(
    run: RunReconciler, specs: SpecsDir, endpoint: LocalEndpoint, *extra: str, check_exit: int
) -> Outcome:
    return run("plan", specs, "--format", "json", *extra, endpoint=endpoint, check_exit=check_exit)


def assert_rolled_out(endpoint: LocalEndpoint) -> None:
    """The end state of the rollout: the capture in images, shared with finance only; the
    import in finance, copied from it and owned there; finance's bundle on the import;
    nothing in the base account."""
    golden = images_of(endpoint, IMAGES)[GOLDEN]
    assert golden["state"] == "AVAILABLE"
    assert golden["tags"] == OWN
    assert endpoint.fidelity.shared_accounts(REGION, golden["id"], account_id=IMAGES) == [FINANCE]
    imported = images_of(endpoint, FINANCE)[GOLDEN]
    assert imported["id"] != golden["id"]
    assert imported["state"] == "AVAILABLE"
    assert imported["tags"] == OWN
    assert imported["description"] == GOLDEN_DESCRIPTION
    assert endpoint.fidelity.copied_from(REGION, imported["id"], account_id=FINANCE) == (
        REGION,
        golden["id"],
    )
    assert endpoint.fidelity.copied_from_account(REGION, imported["id"], FINANCE) == IMAGES
    bundle = bundles_of(endpoint, FINANCE)[BUNDLE]
    assert bundle["image_id"] == imported["id"]
    assert bundle["owner"] == FINANCE
    assert bundle["tags"] == OWN
    assert bundles_of(endpoint, IMAGES) == {}
    assert images_of(endpoint, BASE) == {}
    assert bundles_of(endpoint, BASE) == {}


ROLLOUT_CHANGES = Counter(
    {
        ("CreateWorkspaceImage", IMAGES): 1,
        ("UpdateWorkspaceImagePermission", IMAGES): 1,
        ("CopyWorkspaceImage", FINANCE): 1,
        ("CreateWorkspaceBundle", FINANCE): 1,
    }
)


# --- the rollout in one run ----------------------------------------------------------------


@pytest.mark.fidelity(capture_seconds=1.0)
def test_one_apply_wait_rolls_out_from_the_images_account_to_the_finance_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    write_rollout(specs_dir)
    assert_valid(run_reconciler, specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    items = by_key(plan)
    assert set(items) == {
        (IMAGES, "image", REGION, GOLDEN),
        (IMAGES, "share", REGION, GOLDEN),
        (FINANCE, "image", REGION, GOLDEN),
        (FINANCE, "bundle", REGION, BUNDLE),
    }
    capture = items[(IMAGES, "image", REGION, GOLDEN)]
    assert (capture["action"], capture["account_name"]) == ("create", "images")
    assert (capture["source_account"], capture["copy_from"]) == (None, None)
    share = items[(IMAGES, "share", REGION, GOLDEN)]
    assert (share["action"], share["account_name"]) == ("update-sharing", "images")
    assert share["share_changes"] == [{"account": FINANCE, "before": False, "after": True}]
    imported = items[(FINANCE, "image", REGION, GOLDEN)]
    assert (imported["action"], imported["account_name"]) == ("create", "finance")
    assert (imported["source_account"], imported["copy_from"]) == (IMAGES, REGION)
    bundle = items[(FINANCE, "bundle", REGION, BUNDLE)]
    assert (bundle["action"], bundle["account_name"]) == ("create", "finance")
    summary = plan.json()["summary"]
    assert (summary["create"], summary["update-sharing"], summary["unmanaged"]) == (3, 1, 0)

    # Text groups items by account, each headed by its name and id.
    text = run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0).stdout
    for name, account in (("images", IMAGES), ("finance", FINANCE)):
        assert any(name in line and account in line for line in text.splitlines()), text

    endpoint.calls.clear()
    assumed = record_assume_role(endpoint)
    # Captures and copies end by themselves after a second (the marker above).
    run = apply_json(run_reconciler, specs_dir, endpoint, "--wait", check_exit=0)
    assert results(run) == {
        (IMAGES, "image", REGION, GOLDEN): ("created", None),
        (IMAGES, "share", REGION, GOLDEN): ("sharing-updated", None),
        (FINANCE, "image", REGION, GOLDEN): ("created", None),
        (FINANCE, "bundle", REGION, BUNDLE): ("created", None),
    }
    done = by_key(run)[(FINANCE, "image", REGION, GOLDEN)]
    assert (done["account_name"], done["source_account"], done["copy_from"]) == (
        "finance",
        IMAGES,
        REGION,
    )

    # Every change in the right account, counted at the server; one copy, no retry.
    assert changes(endpoint) == ROLLOUT_CHANGES
    assert endpoint.calls.by_account(operation="CopyWorkspaceImage") == {FINANCE: 1}
    assert acted_in(endpoint, BASE) == []
    assert endpoint.calls.roles_assumed() == {IMAGES: 1, FINANCE: 1}
    asked = {q["RoleArn"]: q for q in assumed}
    assert set(asked) == {role(IMAGES), role(FINANCE)}
    assert {q["RoleSessionName"] for q in assumed} == {SESSION_NAME}
    assert asked[role(FINANCE)]["ExternalId"] == FINANCE_EXTERNAL_ID
    assert "ExternalId" not in asked[role(IMAGES)]
    assert all(c.account == BASE for c in endpoint.calls.all() if c.operation == "AssumeRole")
    assert_rolled_out(endpoint)

    run_reconciler("plan", specs_dir, "--detailed-exitcode", endpoint=endpoint, check_exit=0)


def test_an_import_is_deferred_naming_the_share_and_later_runs_finish_it_with_one_copy(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    write_rollout(specs_dir)
    assert_valid(run_reconciler, specs_dir)

    first = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=2)
    done = results(first)
    assert done[(IMAGES, "image", REGION, GOLDEN)] == ("created", None)
    result, reason = done[(FINANCE, "image", REGION, GOLDEN)]
    assert result == "deferred"
    assert f"waits for images to share {GOLDEN} ({REGION}) with finance" in (reason or "")
    assert done[(IMAGES, "share", REGION, GOLDEN)][0] == "deferred"
    assert done[(FINANCE, "bundle", REGION, BUNDLE)][0] == "deferred"
    assert changes(endpoint) == Counter({("CreateWorkspaceImage", IMAGES): 1})
    assert images_of(endpoint, FINANCE) == {}

    # Each later run does what is ready (the capture and then the copy end in between),
    # until the chain is done: work left is exit 2, never 1.
    runs = [first]
    for _ in range(3):
        finish_pending(endpoint, (IMAGES, FINANCE))
        later = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode")
        assert later.code in (0, 2), later.stdout + later.stderr
        runs.append(later)
        if later.code == 0:
            break
    assert runs[-1].code == 0, runs[-1].stdout + runs[-1].stderr
    # The capture is AVAILABLE from the second run on: it shares at once.
    assert results(runs[1])[(IMAGES, "share", REGION, GOLDEN)] == ("sharing-updated", None)
    imported = [
        r for r in runs if results(r)[(FINANCE, "image", REGION, GOLDEN)] == ("created", None)
    ]
    assert len(imported) == 1
    assert changes(endpoint) == ROLLOUT_CHANGES  # exactly one copy over every run
    assert_rolled_out(endpoint)

    endpoint.calls.clear()
    settled = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=0)
    assert {r for r, _ in results(settled).values()} == {"unchanged"}
    assert changes(endpoint) == Counter()


# --- an unreachable account ----------------------------------------------------------------


def test_an_account_whose_role_is_refused_stops_every_change_in_every_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    # Work waiting in both accounts: a capture in images, a prune in each.
    endpoint.fidelity.add_image(REGION, "images-old", "Image images-old", tags=OWN,
                                account_id=IMAGES)  # fmt: skip
    endpoint.fidelity.add_image(REGION, "finance-old", "Image finance-old", tags=OWN,
                                account_id=FINANCE)  # fmt: skip
    write_rollout(specs_dir)
    assert_valid(run_reconciler, specs_dir)
    endpoint.faults.error_for(
        "AssumeRole",
        "AccessDenied",
        status=403,
        message=REFUSED,
        when=lambda q: q["RoleArn"] == role(FINANCE),
    )

    def assert_names_finance(message: str) -> None:
        for part in ("finance", FINANCE, role(FINANCE), "AccessDenied", REFUSED):
            assert part in message, message
        blamed = [line for line in message.splitlines() if "AccessDenied" in line]
        assert blamed, message
        assert not any(IMAGES in line for line in blamed), message  # the reachable one

    plan = run_reconciler("plan", specs_dir, "--prune", endpoint=endpoint, check_exit=1)
    assert_names_finance(plan.stderr)
    as_json = plan_json(run_reconciler, specs_dir, endpoint, check_exit=1)
    assert_names_finance(as_json.json()["error"]["message"])
    drift = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=1)
    assert_names_finance(drift.stderr)
    for extra in ((), ("--prune",), ("--wait", "--wait-timeout", "5")):
        applied = run_reconciler(
            "apply", specs_dir, "--auto-approve", *extra, endpoint=endpoint, check_exit=1
        )
        assert_names_finance(applied.stderr)

    refused = [c for c in endpoint.calls.all() if c.operation == "AssumeRole" and c.status == 403]
    assert refused
    assert {c.role_arn for c in refused} == {role(FINANCE)}
    assert changes(endpoint) == Counter()
    assert set(images_of(endpoint, IMAGES)) == {"images-old"}
    assert set(images_of(endpoint, FINANCE)) == {"finance-old"}
    assert endpoint.fidelity.workspace_state(REGION, WS_IMAGES, IMAGES) == "AVAILABLE"


# --- identity: (account, region, name) -----------------------------------------------------


def test_one_name_in_two_accounts_is_two_resources_each_made_in_its_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    endpoint.fidelity.add_workspace(REGION, WS_FINANCE, account_id=FINANCE)
    write_map(specs_dir, "images", "finance")
    for name, source in (("images", WS_IMAGES), ("finance", WS_FINANCE)):
        specs_dir.write(
            f"{name}/golden.yaml",
            capture_doc("golden", source, f"Golden image of {name}"),
            bundle_doc("standard", image="golden"),
        )
    assert_valid(run_reconciler, specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    items = by_key(plan)
    keys = {
        (account, kind, REGION, name)
        for account in (IMAGES, FINANCE)
        for kind, name in (("image", "golden"), ("bundle", "standard"))
    }
    assert set(items) == keys
    assert {k: v["action"] for k, v in items.items()} == dict.fromkeys(keys, "create")
    assert {v["account_name"] for k, v in items.items() if k[0] == IMAGES} == {"images"}
    assert {v["account_name"] for k, v in items.items() if k[0] == FINANCE} == {"finance"}
    assert plan.json()["summary"]["create"] == 4

    first = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=2)
    done = results(first)
    for account in (IMAGES, FINANCE):
        assert done[(account, "image", REGION, "golden")] == ("created", None)
        assert done[(account, "bundle", REGION, "standard")][0] == "deferred"
    assert changes(endpoint) == Counter(
        {("CreateWorkspaceImage", IMAGES): 1, ("CreateWorkspaceImage", FINANCE): 1}
    )
    # Each capture is of its own account's WorkSpace (suspended while it is captured).
    assert endpoint.fidelity.workspace_state(REGION, WS_IMAGES, IMAGES) == "SUSPENDED"
    assert endpoint.fidelity.workspace_state(REGION, WS_FINANCE, FINANCE) == "SUSPENDED"

    finish_pending(endpoint, (IMAGES, FINANCE))
    endpoint.calls.clear()
    second = apply_json(run_reconciler, specs_dir, endpoint, "--detailed-exitcode", check_exit=0)
    for account in (IMAGES, FINANCE):
        assert results(second)[(account, "bundle", REGION, "standard")] == ("created", None)
    assert changes(endpoint) == Counter(
        {("CreateWorkspaceBundle", IMAGES): 1, ("CreateWorkspaceBundle", FINANCE): 1}
    )
    for name, account in (("images", IMAGES), ("finance", FINANCE)):
        image = images_of(endpoint, account)["golden"]
        assert (image["description"], image["tags"]) == (f"Golden image of {name}", OWN)
        bundle = bundles_of(endpoint, account)["standard"]
        assert (bundle["image_id"], bundle["owner"]) == (image["id"], account)
    assert images_of(endpoint, BASE) == {}

    settled = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert {v["action"] for v in by_key(settled).values()} == {"no-op"}
    assert len(by_key(settled)) == 4


# --- prune ---------------------------------------------------------------------------------


def test_prune_deletes_each_accounts_own_unmanaged_and_nothing_shared_or_outside_the_map(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    f = endpoint.fidelity
    # The base account and an account outside the map: owned, tagged, never read.
    base_old = f.add_image(REGION, "base-old", "Image base-old", tags=OWN)
    vendor = f.add_image(REGION, "vendor-image", "Image vendor", tags=OWN, account_id=OUTSIDE)
    f.set_shared_accounts(REGION, vendor, [FINANCE], account_id=OUTSIDE)
    # images: its declared golden image, shared with finance; an owned unmanaged image; an
    # image nobody owns.
    golden = f.add_image(REGION, GOLDEN, GOLDEN_DESCRIPTION, tags=OWN, account_id=IMAGES)
    f.set_shared_accounts(REGION, golden, [FINANCE], account_id=IMAGES)
    images_old = f.add_image(REGION, "images-old", "Image images-old", tags=OWN,
                             account_id=IMAGES)  # fmt: skip
    f.add_image(REGION, "console-made", "Image console-made", account_id=IMAGES)
    # finance: its declared image; an owned image of the golden image's name (finance
    # declares no such image: unmanaged here, whatever images declares); an owned unmanaged
    # image with an owned unmanaged bundle on it.
    app = f.add_image(REGION, "finance-app", "Image finance-app", tags=OWN, account_id=FINANCE)
    finance_golden = f.add_image(REGION, GOLDEN, "Old finance copy", tags=OWN,
                                 account_id=FINANCE)  # fmt: skip
    finance_old = f.add_image(REGION, "finance-old", "Image finance-old", tags=OWN,
                              account_id=FINANCE)  # fmt: skip
    old_bundle = f.add_bundle(REGION, "finance-old-bundle", finance_old, tags=OWN,
                              account_id=FINANCE)  # fmt: skip
    write_map(specs_dir, "images", "finance")
    specs_dir.write(
        "images/golden.yaml",
        capture_doc(GOLDEN, WS_NONE, GOLDEN_DESCRIPTION, share_with=["finance"]),
    )
    specs_dir.write("finance/app.yaml", capture_doc("finance-app", WS_NONE))
    assert_valid(run_reconciler, specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert {k: v["action"] for k, v in by_key(plan).items()} == {
        (IMAGES, "image", REGION, GOLDEN): "no-op",
        (IMAGES, "share", REGION, GOLDEN): "no-op",
        (FINANCE, "image", REGION, "finance-app"): "no-op",
    }
    shown = unmanaged(plan)
    assert set(shown) == {
        (IMAGES, "images", "image", "images-old"),
        (FINANCE, "finance", "image", GOLDEN),
        (FINANCE, "finance", "image", "finance-old"),
        (FINANCE, "finance", "bundle", "finance-old-bundle"),
    }
    assert shown[(IMAGES, "images", "image", "images-old")]["image_id"] == images_old
    assert shown[(FINANCE, "finance", "image", GOLDEN)]["image_id"] == finance_golden
    assert shown[(FINANCE, "finance", "bundle", "finance-old-bundle")]["bundle_id"] == old_bundle

    endpoint.calls.clear()
    applied = apply_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    assert {k: v["result"] for k, v in unmanaged(applied).items()} == dict.fromkeys(
        shown, "deleted"
    )
    assert changes(endpoint) == Counter(
        {
            ("DeleteWorkspaceImage", IMAGES): 1,
            ("DeleteWorkspaceImage", FINANCE): 2,
            ("DeleteWorkspaceBundle", FINANCE): 1,
        }
    )
    assert acted_in(endpoint, BASE) == []
    assert acted_in(endpoint, OUTSIDE) == []
    assert set(images_of(endpoint, IMAGES)) == {GOLDEN, "console-made"}
    assert f.shared_accounts(REGION, golden, account_id=IMAGES) == [FINANCE]
    assert set(images_of(endpoint, FINANCE)) == {"finance-app"}
    assert images_of(endpoint, FINANCE)["finance-app"]["id"] == app
    assert bundles_of(endpoint, FINANCE) == {}
    # What others share with finance is still there, listed to it, never its own.
    assert sorted((i["name"], i["owner"]) for i in f.shared_images(REGION, FINANCE)) == [
        (GOLDEN, IMAGES),
        ("vendor-image", OUTSIDE),
    ]
    assert [i["id"] for i in f.images(REGION)] == [base_old]
    assert f.shared_accounts(REGION, vendor, account_id=OUTSIDE) == [FINANCE]


def test_prune_refuses_an_account_of_the_map_without_a_spec_unless_allow_empty(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    f = endpoint.fidelity
    f.add_image(REGION, GOLDEN, GOLDEN_DESCRIPTION, tags=OWN, account_id=IMAGES)
    images_old = f.add_image(REGION, "images-old", "Image images-old", tags=OWN,
                             account_id=IMAGES)  # fmt: skip
    payroll_old = f.add_image(REGION, "payroll-old", "Image payroll-old", tags=OWN,
                              account_id=PAYROLL)  # fmt: skip
    write_map(specs_dir, "images", "payroll")
    specs_dir.remove("payroll/defaults.yaml")  # payroll: in the map, no spec anywhere
    specs_dir.write("images/golden.yaml", capture_doc(GOLDEN, WS_NONE, GOLDEN_DESCRIPTION))
    assert_valid(run_reconciler, specs_dir)

    # plan and drift read payroll like any account of the map: its images are unmanaged.
    plan = plan_json(run_reconciler, specs_dir, endpoint, "--prune", check_exit=0)
    expected = {
        (IMAGES, "images", "image", "images-old"): images_old,
        (PAYROLL, "payroll", "image", "payroll-old"): payroll_old,
    }
    assert {k: v["image_id"] for k, v in unmanaged(plan).items()} == expected
    drift = run_reconciler("drift", specs_dir, "--format", "json", endpoint=endpoint,
                           check_exit=2)  # fmt: skip
    assert {k: v["image_id"] for k, v in unmanaged(drift).items()} == expected

    endpoint.calls.clear()
    refused = run_reconciler(
        "apply", specs_dir, "--auto-approve", "--prune", endpoint=endpoint, check_exit=1
    )
    assert "payroll" in refused.stderr
    assert "--allow-empty" in refused.stderr
    assert changes(endpoint) == Counter()  # not even images' own deletion
    assert set(images_of(endpoint, IMAGES)) == {GOLDEN, "images-old"}
    assert set(images_of(endpoint, PAYROLL)) == {"payroll-old"}

    # With --account, only the accounts in the run count.
    only_images = apply_json(
        run_reconciler, specs_dir, endpoint, "--prune", "--account", "images", check_exit=0
    )
    assert {k: v["result"] for k, v in unmanaged(only_images).items()} == {
        (IMAGES, "images", "image", "images-old"): "deleted"
    }
    assert changes(endpoint) == Counter({("DeleteWorkspaceImage", IMAGES): 1})
    assert set(images_of(endpoint, PAYROLL)) == {"payroll-old"}

    endpoint.calls.clear()
    allowed = apply_json(
        run_reconciler, specs_dir, endpoint, "--prune", "--allow-empty", check_exit=0
    )
    assert {k: v["result"] for k, v in unmanaged(allowed).items()} == {
        (PAYROLL, "payroll", "image", "payroll-old"): "deleted"
    }
    assert changes(endpoint) == Counter({("DeleteWorkspaceImage", PAYROLL): 1})
    assert images_of(endpoint, PAYROLL) == {}
    assert set(images_of(endpoint, IMAGES)) == {GOLDEN}


# --- --account -----------------------------------------------------------------------------


def test_account_option_changes_only_those_accounts_and_reads_elsewhere_only_for_imports(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    f = endpoint.fidelity
    golden = f.add_image(REGION, GOLDEN, GOLDEN_DESCRIPTION, tags=OWN, account_id=IMAGES)
    f.set_shared_accounts(REGION, golden, [FINANCE], account_id=IMAGES)
    f.add_image(REGION, "images-old", "Image images-old", tags=OWN, account_id=IMAGES)
    f.add_workspace(REGION, WS_SILVER, account_id=IMAGES)
    f.add_image(REGION, "finance-old", "Image finance-old", tags=OWN, account_id=FINANCE)
    f.add_workspace(REGION, WS_PAYROLL, account_id=PAYROLL)
    write_map(specs_dir, "images", "finance", "payroll")
    specs_dir.write(
        "images/golden.yaml",
        capture_doc(GOLDEN, WS_NONE, GOLDEN_DESCRIPTION, share_with=["finance"]),
        capture_doc("silver", WS_SILVER),
    )
    specs_dir.write("finance/golden.yaml", import_doc(GOLDEN, "images"))
    specs_dir.write("payroll/golden.yaml", capture_doc("payroll-golden", WS_PAYROLL))
    assert_valid(run_reconciler, specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, "--prune", "--account", "finance",
                     check_exit=0)  # fmt: skip
    assert {k: v["action"] for k, v in by_key(plan).items()} == {
        (FINANCE, "image", REGION, GOLDEN): "create"
    }
    assert set(unmanaged(plan)) == {(FINANCE, "finance", "image", "finance-old")}

    endpoint.calls.clear()
    finance = apply_json(
        run_reconciler, specs_dir, endpoint, "--prune", "--account", "finance", check_exit=0
    )
    assert results(finance) == {(FINANCE, "image", REGION, GOLDEN): ("created", None)}
    assert changes(endpoint) == Counter(
        {("CopyWorkspaceImage", FINANCE): 1, ("DeleteWorkspaceImage", FINANCE): 1}
    )
    # images is read only for the import's source; payroll and the base not at all.
    assert all(op.startswith(("Describe", "Get")) for op in acted_in(endpoint, IMAGES))
    assert acted_in(endpoint, PAYROLL) == []
    assert acted_in(endpoint, BASE) == []
    assert PAYROLL not in endpoint.calls.roles_assumed()
    assert set(images_of(endpoint, IMAGES)) == {GOLDEN, "images-old"}
    assert images_of(endpoint, PAYROLL) == {}
    assert endpoint.fidelity.copied_from(
        REGION, images_of(endpoint, FINANCE)[GOLDEN]["id"], account_id=FINANCE
    ) == (REGION, golden)

    endpoint.calls.clear()
    others = apply_json(
        run_reconciler, specs_dir, endpoint, "--account", "images", "--account", "payroll",
        check_exit=0,
    )  # fmt: skip
    assert {k[0] for k in by_key(others)} == {IMAGES, PAYROLL}
    assert results(others)[(IMAGES, "image", REGION, "silver")] == ("created", None)
    assert results(others)[(PAYROLL, "image", REGION, "payroll-golden")] == ("created", None)
    assert changes(endpoint) == Counter(
        {("CreateWorkspaceImage", IMAGES): 1, ("CreateWorkspaceImage", PAYROLL): 1}
    )
    assert acted_in(endpoint, FINANCE) == []  # no import in the run: finance is not read
    assert FINANCE not in endpoint.calls.roles_assumed()
    assert set(images_of(endpoint, FINANCE)) == {GOLDEN}


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.fidelity(capture_seconds=1.0)
def test_credentials_are_refreshed_during_a_wait_longer_than_their_lifetime(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """AssumeRole's shortest lifetime, 900 s, is inside botocore's 15-minute renewal
    window: every call renews, so a `--wait` that polls several times assumes each role
    again between the changes it makes; credentials kept from the first AssumeRole would
    show a single one. RECONCILER_ASSUME_ROLE_SECONDS sets the DurationSeconds asked for;
    the endpoint refuses any other, so the variable must reach AssumeRole."""
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    write_rollout(specs_dir)
    assert_valid(run_reconciler, specs_dir)
    assumed = record_assume_role(endpoint)
    endpoint.faults.error_for(
        "AssumeRole",
        "ValidationError",
        message="the test expects DurationSeconds=900 from RECONCILER_ASSUME_ROLE_SECONDS",
        when=lambda q: q.get("DurationSeconds") != "900",
    )
    run = apply_json(
        run_reconciler, specs_dir, endpoint, "--wait", check_exit=0,
        env={"RECONCILER_ASSUME_ROLE_SECONDS": "900"},
    )  # fmt: skip
    assert {r for r, _ in results(run).values()} == {"created", "sharing-updated"}
    assert changes(endpoint) == ROLLOUT_CHANGES
    assert_rolled_out(endpoint)
    assert {q["DurationSeconds"] for q in assumed} == {"900"}

    calls = endpoint.calls.all()

    def at(operation: str, account: str) -> float:
        (found,) = [c.time for c in calls if (c.operation, c.account) == (operation, account)]
        return found

    def renewed_between(account: str, first: float, then: float) -> bool:
        return any(
            c.operation == "AssumeRole" and c.role_account == account and first < c.time < then
            for c in calls
        )

    # Each account's role is assumed again between two changes a poll apart.
    assert renewed_between(
        IMAGES, at("CreateWorkspaceImage", IMAGES), at("UpdateWorkspaceImagePermission", IMAGES)
    )
    assert renewed_between(
        FINANCE, at("CopyWorkspaceImage", FINANCE), at("CreateWorkspaceBundle", FINANCE)
    )
    assumed_per_account = endpoint.calls.roles_assumed()
    assert assumed_per_account[IMAGES] > 1
    assert assumed_per_account[FINANCE] > 1
    # No call was refused (an expired token would be).
    assert [(c.operation, c.status) for c in calls if c.api != "sts" and c.status >= 400] == []


# --- one account, as before ----------------------------------------------------------------


def test_a_specs_folder_without_accounts_assumes_no_role_and_acts_in_its_own_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES)
    specs_dir.write("a.yaml", capture_doc(GOLDEN, WS_IMAGES, share_with=[FINANCE]))
    run_reconciler("plan", specs_dir, endpoint=endpoint, check_exit=0)
    apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert endpoint.calls.count("AssumeRole") == 0
    assert set(endpoint.calls.by_account()) == {BASE}
    assert changes(endpoint) == Counter({("CreateWorkspaceImage", BASE): 1})
    assert set(images_of(endpoint, BASE)) == {GOLDEN}


# --- an import from outside the map; a retired source ----------------------------------------


def write_vendor_import(specs: SpecsDir) -> None:
    """finance imports the vendor's image, from an account no map declares (by its id)."""
    write_map(specs, "finance")
    specs.write(
        "finance/vendor.yaml",
        {
            "name": "vendor-win11",
            "description": "Vendor image imported",
            "source_image": {"account": OUTSIDE, "name": "vendor-image"},
        },
    )


def test_an_import_from_outside_the_map_is_made_from_the_image_shared_with_the_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    f = endpoint.fidelity
    vendor = f.add_image(REGION, "vendor-image", "Image vendor", account_id=OUTSIDE)
    f.set_shared_accounts(REGION, vendor, [FINANCE], account_id=OUTSIDE)
    write_vendor_import(specs_dir)
    assert_valid(run_reconciler, specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    item = by_key(plan)[(FINANCE, "image", REGION, "vendor-win11")]
    assert (item["action"], item["source_account"], item["copy_from"]) == (
        "create",
        OUTSIDE,
        REGION,
    )
    assert item["source_image_id"] == vendor  # found among the images shared with finance
    # Looked up with the importing account's own credentials: nothing is read as the vendor.
    assert acted_in(endpoint, OUTSIDE) == []

    endpoint.calls.clear()
    applied = apply_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert results(applied)[(FINANCE, "image", REGION, "vendor-win11")][0] == "created"
    assert changes(endpoint) == Counter({("CopyWorkspaceImage", FINANCE): 1})
    made = images_of(endpoint, FINANCE)["vendor-win11"]
    assert f.copied_from_account(REGION, made["id"], FINANCE) == OUTSIDE


def test_an_import_whose_image_is_not_shared_with_the_account_is_blocked_without_a_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    f = endpoint.fidelity
    f.add_image(REGION, "vendor-image", "Image vendor", account_id=OUTSIDE)  # shared with nobody
    write_vendor_import(specs_dir)

    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=1)  # blocked: an error
    item = by_key(plan)[(FINANCE, "image", REGION, "vendor-win11")]
    assert item["action"] == "blocked"
    assert "vendor-image" in item["reason"]
    assert OUTSIDE in item["reason"]
    assert "not shared with this account" in item["reason"]

    endpoint.calls.clear()
    apply_json(run_reconciler, specs_dir, endpoint, check_exit=1)
    assert changes(endpoint) == Counter()


def test_an_import_that_exists_stays_valid_once_its_source_is_retired(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """Last month's image must be retirable: the source's spec removed (and its image
    pruned), the import in finance is judged like any image, with a warning."""
    f = endpoint.fidelity
    f.add_image(REGION, GOLDEN, GOLDEN_DESCRIPTION, tags=OWN, account_id=FINANCE)
    write_map(specs_dir, "images", "finance")
    specs_dir.write("images/other.yaml", capture_doc("other", WS_NONE, "Image other"))
    f.add_image(REGION, "other", "Image other", tags=OWN, account_id=IMAGES)
    specs_dir.write("finance/golden.yaml", import_doc(GOLDEN, "images"))

    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert by_key(plan)[(FINANCE, "image", REGION, GOLDEN)]["action"] == "no-op"
    assert "names no image spec of account images" in plan.stderr  # the warning
    drift = run_reconciler("drift", specs_dir, endpoint=endpoint, check_exit=0)
    assert "No changes" in drift.stdout


# --- output: Markdown per account; saved plans ---------------------------------------------


def test_markdown_has_one_count_line_and_table_per_account(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    write_rollout(specs_dir)
    md = run_reconciler("plan", specs_dir, "--format", "markdown", endpoint=endpoint).stdout
    images_line = f"**Account images ({IMAGES})**: Plan: 1 to create, 1 to update sharing."
    finance_line = f"**Account finance ({FINANCE})**: Plan: 2 to create."
    assert images_line in md, md
    assert finance_line in md, md
    # Each account's rows come under its own line, in the map's order.
    first, second = md.index(images_line), md.index(finance_line)
    assert first < second
    assert md.count("| Action | Resource | Region | Detail |") == 2
    assert f"import of {GOLDEN} from images ({REGION})" in md[second:]
    assert "import of" not in md[first:second]
    assert f"+ account <code>{FINANCE}</code>" in md[first:second]  # the share, in images'


def test_a_saved_plan_records_its_accounts_and_is_applied_to_those_only(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    endpoint.fidelity.add_workspace(REGION, WS_IMAGES, account_id=IMAGES)
    write_rollout(specs_dir)
    saved = specs_dir.path.parent / "plan.json"
    run_reconciler("plan", specs_dir, "--account", "images", "--out", saved, endpoint=endpoint,
                   check_exit=0)  # fmt: skip
    document = json.loads(saved.read_text())
    assert [(a["name"], a["id"]) for a in document["accounts"]] == [("images", IMAGES)]
    refused = run_reconciler(
        "apply", specs_dir, "--plan-file", saved, "--account", "finance", endpoint=endpoint,
        check_exit=1,
    )  # fmt: skip
    assert "--account can't be combined with --plan-file" in refused.stderr
    endpoint.calls.clear()
    run_reconciler("apply", specs_dir, "--plan-file", saved, endpoint=endpoint, check_exit=0)
    # The capture; its share waits for it to be AVAILABLE. Nothing in finance, not even a read.
    assert changes(endpoint) == Counter({("CreateWorkspaceImage", IMAGES): 1})
    assert acted_in(endpoint, FINANCE) == []


# --- the call budget of a run over accounts --------------------------------------------------


def test_each_account_costs_its_own_budget_plus_one_assume_role_and_one_identity_call(
    endpoint: LocalEndpoint, specs_dir: SpecsDir, run_reconciler: RunReconciler
) -> None:
    """A converged plan over two accounts makes, in each account, exactly the calls the
    one-account budget gives for what it holds (docs/pacing.md), plus the
    GetCallerIdentity that proves it; and, with the base credentials, one AssumeRole each.
    Nothing else is read with the base credentials."""
    from tests.e2e.test_call_budget_kinds import Reads, plan_budget

    f = endpoint.fidelity
    write_map(specs_dir, "images", "finance")
    for name, account in (("images", IMAGES), ("finance", FINANCE)):
        docs = []
        for n in range(3):
            image = f"golden-{n}"
            image_id = f.add_image(REGION, image, f"Image {image}", tags=OWN, account_id=account)
            f.set_shared_accounts(REGION, image_id, [OUTSIDE], account_id=account)
            docs.append(capture_doc(image, WS_NONE, f"Image {image}", share_with=[OUTSIDE]))
        f.add_bundle(
            REGION, BUNDLE, image_id, description=f"Bundle {BUNDLE}", tags=OWN,
            account_id=account,
        )  # fmt: skip
        docs.append(bundle_doc(BUNDLE, image="golden-2"))
        specs_dir.write(f"{name}/specs.yaml", *docs)
    endpoint.calls.clear()
    plan = plan_json(run_reconciler, specs_dir, endpoint, check_exit=0)
    assert {i["action"] for i in plan.json()["items"]} == {"no-op"}

    one = plan_budget({REGION: Reads(images=3, owned=4, bundles=1, shares=(1, 1, 1))})
    one[("GetCallerIdentity", REGION)] = 1  # proving the account
    for account in (IMAGES, FINANCE):
        made = Counter(
            (c.operation, c.region) for c in endpoint.calls.all() if c.account == account
        )
        assert made == one, account
    base = Counter(c.operation for c in endpoint.calls.all() if c.account == BASE)
    assert base == Counter({"AssumeRole": 2})
    assert endpoint.calls.throttled() == 0
