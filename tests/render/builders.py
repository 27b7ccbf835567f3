"""Plans and apply results for the renderer tests, built the way the reconciler builds them
(specs and live images through `make_plan`) or item by item where a test needs an exact
shape; and, independently of the renderer, what kind of row each item should get."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import Applied, AppliedItem, AppliedUnmanaged, Result
from reconciler.live import Inventory, LiveImage, RegionInventory, SourceWorkspace
from reconciler.plan import Action, Plan, PlanItem, TagChange, Unmanaged, make_plan
from reconciler.specs import Spec

REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS_OK, WS_STOPPED, WS_BUSY = "ws-0a1b2c3d4", "ws-0b1b2c3d4", "ws-0c1b2c3d4"
FIRST_TIER = {Action.CONFLICT, Action.BLOCKED}
# The order a reviewer needs: errors, deletions and replacements, changes to existing
# images, creates. (Unchanged items are in the collapsed list, not the table.)
TIER = {
    "conflict": 0,
    "blocked": 0,
    "failed": 0,
    "replace": 1,
    "delete": 1,
    "unmanaged": 1,
    "update-tags": 2,
    "adopt": 2,
    "stuck": 2,
    "create": 3,
}


def spec(
    name: str,
    *,
    source: str = WS_OK,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    file: str = "finance/images.yaml",
    line: int = 1,
) -> Spec:
    return Spec(
        name=name,
        description=description or f"Golden image {name}",
        source_workspace_id=source,
        region=None,
        tags=tags or {},
        ignore_tag_keys=frozenset(),
        ignore_tag_prefixes=(),
        file=file,
        line=line,
    )


def live(
    name: str,
    number: int,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    state: str = "AVAILABLE",
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
) -> LiveImage:
    return LiveImage(
        image_id=f"wsi-{number:09d}",
        name=name,
        description=f"Golden image {name}" if description is None else description,
        state=state,
        tags=OWNED if tags is None else tags,
        created=created,
        error_code=error[0] if error else None,
        error_message=error[1] if error else None,
    )


def plan_from(
    specs: Sequence[Spec],
    images: Iterable[LiveImage] = (),
    sources: dict[str, str | None] | None = None,
    *,
    prune: bool = False,
    replace_failed: bool = False,
) -> Plan:
    found = list(images)
    states = sources or {WS_OK: "AVAILABLE", WS_STOPPED: "STOPPED", WS_BUSY: "SUSPENDED"}
    inventory = RegionInventory(
        REGION,
        {i.name: i for i in found},
        len(found),
        sources={ws: SourceWorkspace(ws, state) for ws, state in states.items()},
    )
    return make_plan(
        specs,
        Inventory({REGION: inventory}),
        specs_digest="sha256:" + "ab" * 32,
        default_region=REGION,
        image_quota=10_000,
        now=NOW,
        prune=prune,
        replace_failed=replace_failed,
    )


def every_action_plan(*, prune: bool = False, replace_failed: bool = False) -> Plan:
    """One item of each action and situation, plus an owned image no spec declares."""
    specs = [
        spec("finance-win11-2026-11", tags={"team": "finance", "cost-center": "4410"}),
        spec("hr-win11-2026-11", tags={"team": "people", "owner": "platform"}, line=9),
        spec("ops-win11-2026-10", tags={"team": "ops"}, line=17),
        spec("legal-win11-2026-11", description="Legal golden image v2", line=23),
        spec("dev-win11-2026-11", source=WS_STOPPED, file="dev/images.yaml"),
        spec("sales-win11-2026-11", tags={"team": "sales"}, file="sales/images.yaml"),
        spec("qa-win11-2026-11", source=WS_BUSY, file="qa/images.yaml"),
        spec("data-win11-2026-09", tags={"team": "data"}, file="data/images.yaml"),
        spec("ml-win11-2026-11", file="ml/images.yaml"),
        spec("eng-win11-2026-11", file="eng/images.yaml"),
    ]
    images = [
        live("hr-win11-2026-11", 1, tags={**OWNED, "team": "hr", "legacy-code": "HR-7"}),
        live("ops-win11-2026-10", 2, tags={"ManagedBy": "console"}),
        live("legal-win11-2026-11", 3, description="Legal golden image"),
        live("sales-win11-2026-11", 4, tags={**OWNED, "team": "sales"}),
        live("data-win11-2026-09", 5, state="ERROR", error=("InternalError", "disk full")),
        live("ml-win11-2026-11", 6, state="PENDING", created=NOW - timedelta(hours=3)),
        live("eng-win11-2026-11", 7, state="PENDING", created=NOW - timedelta(minutes=20)),
        live("finance-win10-2025-01", 8),  # owned, no spec: unmanaged
    ]
    return plan_from(specs, images, prune=prune, replace_failed=replace_failed)


def applied(plan: Plan, results: dict[str, tuple[Result, str | None]]) -> Applied:
    """The apply document of `plan`, with the given results (others: unchanged/skipped)."""
    items = []
    for item in plan.items:
        default = (Result.SKIPPED, item.reason) if item.is_error else (Result.UNCHANGED, None)
        result, error = results.get(item.name, default)
        data = item.model_dump(include=set(PlanItem.model_fields))
        items.append(AppliedItem(**data, result=result, error=error))
    unmanaged = []
    for u in plan.unmanaged:
        result, error = results.get(u.name, (Result.UNCHANGED, None))
        unmanaged.append(AppliedUnmanaged(**u.model_dump(), result=result, error=error))
    return Applied(specs_digest=plan.specs_digest, items=tuple(items), unmanaged=tuple(unmanaged))


def item(action: Action, name: str, **fields: object) -> PlanItem:
    exists = action not in (Action.CREATE, Action.BLOCKED)
    base: dict[str, object] = {
        "action": action,
        "name": name,
        "region": REGION,
        "image_id": "wsi-000000001" if exists else None,
        "state": "AVAILABLE" if exists else None,
        "owned": True if exists else None,
        "spec_file": "a.yaml",
        "spec_line": 1,
        "source_workspace_id": WS_OK,
        "reason": "because" if action in FIRST_TIER else None,
    }
    return PlanItem(**{**base, **fields})


# --- what each item should look like, decided here and not by the renderer -------------------


def kind_of(document: Plan, name: str) -> str:
    """The kind of row (or "unchanged") the item or unmanaged image of this name gets."""
    for i in document.items:
        if one_name(i.name) == name:
            return _item_kind(document, i)
    for u in document.unmanaged:
        if one_name(u.name) == name:
            if isinstance(u, AppliedUnmanaged):
                return "unmanaged" if u.result is Result.UNCHANGED else "delete"
            return "delete" if document.prune else "unmanaged"
    raise AssertionError(f"no item {name!r}")


def tier_of(document: Plan, name: str) -> int:
    for u in document.unmanaged:
        if one_name(u.name) == name and getattr(u, "result", None) is Result.FAILED:
            return 0
    for i in document.items:
        if one_name(i.name) == name and getattr(i, "result", None) is Result.FAILED:
            return 0
    return TIER[kind_of(document, name)]


def _item_kind(document: Plan, i: PlanItem) -> str:
    replaced = (
        i.is_error and i.result is not Result.SKIPPED
        if isinstance(i, AppliedItem)
        else document.replaces(i)
    )
    if replaced:
        return "replace"
    if i.action is Action.NO_OP:
        return "stuck" if i.stuck else "unchanged"
    return i.action.value


def one_name(text: str) -> str:
    return " ".join(text.splitlines()) or " "


# --- large plans ---------------------------------------------------------------------------


def big_plan(
    seed: int = 600, *, prune: bool = False, replace_failed: bool = False, failed: int = 0
) -> Plan:
    """600 specs, every action, long tag lists with long values; 20 unmanaged images;
    `failed` owned images in ERROR (replacements with `replace_failed`) among the creates."""
    rnd = random.Random(seed)
    mix = (
        [Action.CONFLICT] * 25
        + [Action.BLOCKED] * 25
        + [Action.CREATE] * (200 - failed)
        + [None] * failed  # an owned image in ERROR
        + [Action.UPDATE_TAGS] * 150
        + [Action.ADOPT] * 50
        + [Action.NO_OP] * 150
    )
    rnd.shuffle(mix)
    specs, images = [], []
    for n, action in enumerate(mix):
        word = action.value if action else "failed"
        name = f"{word}-win11-{n:03d}-" + "x" * rnd.randint(0, 40)
        tags = {
            f"team-{k:02d}": f"value {k} @org/team: " + "v" * rnd.randint(20, 200)
            for k in range(rnd.randint(10, 49))
        }
        source = WS_STOPPED if action is Action.BLOCKED else WS_OK
        specs.append(spec(name, source=source, tags=tags, line=n + 1))
        if action is None:
            images.append(live(name, n, state="ERROR", error=("InternalError", "disk full")))
            continue
        if action is Action.CREATE or action is Action.BLOCKED:
            continue
        live_tags = {**OWNED, **tags}
        if action is Action.UPDATE_TAGS:
            live_tags = {**OWNED, **{k: "old " + v for k, v in tags.items()}, "stale": "1"}
        elif action is Action.ADOPT:
            live_tags = {}
        description = "Other description" if action is Action.CONFLICT else None
        images.append(live(name, n, tags=live_tags, description=description))
    images += [live(f"orphan-{n:02d}", 1000 + n) for n in range(20)]
    plan = plan_from(specs, images, prune=prune, replace_failed=replace_failed)
    counts = [plan.summary[a.value] for a in Action]
    assert counts == [200 - failed, 150, 150, 50, 25 + failed, 25], counts
    return plan


def creates_and_tag_updates(seed: int = 13) -> Plan:
    """Issue 10's pull request: 595 new images and 5 tag updates to existing ones, the
    updates last in spec order (and so last in any order that follows the specs)."""
    rnd = random.Random(seed)
    specs, images = [], []
    for n in range(600):
        name = f"team-{n:03d}-win11-2026-11"
        tags = {f"cost-{k:02d}": f"value {k} " + "v" * rnd.randint(20, 120) for k in range(30)}
        specs.append(spec(name, tags=tags, line=n * 9 + 1))
        if n >= 595:  # every tag changed: an update's row is as long as a create's
            old = {**OWNED, **{k: "old " + v for k, v in tags.items()}}
            images.append(live(name, n, tags=old))
    plan = plan_from(specs, images)
    assert plan.summary["create"] == 595
    assert plan.summary["update-tags"] == 5
    return plan


_CHARS = [*list("abcxyz019-_./() "), "@", "|", "<", ">", "`", "&", "\n", "#", "*", "\\"]


def random_plan(rnd: random.Random) -> Plan:
    """A plan of 0-150 items of any action, names and values with characters to escape,
    up to 50 tag changes of up to 255 characters, owned and unowned images in ERROR,
    0-30 unmanaged images, with or without --prune and --replace-failed."""

    def text(size: int) -> str:
        return "".join(rnd.choices(_CHARS, k=rnd.randint(0, size)))

    items = []
    for n in range(rnd.randint(0, 150)):
        action = rnd.choice(list(Action))
        size = rnd.choice([5, 60, 255])
        changes = tuple(
            TagChange(
                key=f"k{k}-{text(20)}", before=rnd.choice([None, text(size)]), after=text(size)
            )
            for k in range(rnd.randint(0, rnd.choice([3, 50])))
        )
        fields: dict[str, object] = {"tag_changes": changes}
        if action is Action.NO_OP and rnd.random() < 0.2:
            fields.update(stuck=True, reason="capture PENDING since 2026-11-27 09:00 UTC; stuck?")
        if action in FIRST_TIER:
            fields["reason"] = text(300)
        if action is Action.CONFLICT and rnd.random() < 0.5:
            fields.update(state="ERROR", owned=rnd.random() < 0.8)
        items.append(item(action, f"{n}-{text(64)}", **fields))
    unmanaged = tuple(
        Unmanaged(name=f"orphan-{n}-{text(64)}", region=REGION, image_id=f"wsi-{n:09d}")
        for n in range(rnd.randint(0, 30))
    )
    return Plan(
        specs_digest="sha256:x",
        items=tuple(items),
        unmanaged=unmanaged,
        prune=rnd.random() < 0.5,
        replace_failed=rnd.random() < 0.5,
    )


def random_applied(plan: Plan, rnd: random.Random) -> Applied:
    """An apply result of `plan` as apply could end it: any result for a change, a skipped
    or attempted replacement for an owned failed image, deletions tried when pruning."""
    results: dict[str, tuple[Result, str | None]] = {}
    for i in plan.items:
        if plan.replaces(i) or i.changes:
            outcome = rnd.choice([Result.CREATED, Result.DEFERRED, Result.FAILED, Result.SKIPPED])
            if i.action in (Action.UPDATE_TAGS, Action.ADOPT) and outcome is Result.CREATED:
                outcome = Result.TAGS_UPDATED
            results[i.name] = (
                outcome,
                "AccessDenied @org #1 | `x`" if rnd.random() < 0.5 else None,
            )
    for u in plan.unmanaged:
        if plan.prune:
            outcome = rnd.choice([Result.DELETED, Result.FAILED, Result.SKIPPED])
            results[u.name] = (outcome, None if outcome is Result.DELETED else "in use <b>")
    return applied(plan, results)
