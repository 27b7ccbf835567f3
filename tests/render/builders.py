"""Plans and apply results for the renderer tests, built the way the reconciler builds them
(specs and live images through `make_plan`) or item by item where a test needs an exact
shape; and, independently of the renderer, what kind of row each item should get."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import Applied, AppliedItem, AppliedUnmanaged, Result
from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds.bundle import BundleLive, LiveBundle
from reconciler.kinds.image import ImageLive, LiveImage, SourceWorkspace, stuck
from reconciler.kinds.share import ShareChange, ShareLive
from reconciler.live import Inventory, RegionInventory
from reconciler.plan import (
    Action,
    Kind,
    Plan,
    PlanItem,
    TagChange,
    Unmanaged,
    make_plan,
)
from reconciler.specs import BundleSpec, Spec

REGION = "eu-west-1"
COPY_REGION = "us-east-1"
ACCOUNT_A, ACCOUNT_B = "111122223333", "444455556666"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
OWNED = {OWNERSHIP_TAG_KEY: "true"}
WS_OK, WS_STOPPED, WS_BUSY = "ws-0a1b2c3d4", "ws-0b1b2c3d4", "ws-0c1b2c3d4"
FIRST_TIER = {Action.CONFLICT, Action.BLOCKED}
IMAGE_ACTIONS = set(Action) - {Action.UPDATE_SHARING, Action.UPDATE_IMAGE}
# The order a reviewer needs: errors; deletions, replacements and bundles' image changes
# (what desktops launch from); changes to existing resources; creates. (Unchanged items are
# in the collapsed list, not the table.)
TIER = {
    "conflict": 0,
    "blocked": 0,
    "failed": 0,
    "replace": 1,
    "delete": 1,
    "unmanaged": 1,
    "unmanaged-bundle": 1,
    "update-image": 1,
    "update-tags": 2,
    "update-sharing": 2,
    "adopt": 2,
    "stuck": 2,
    "create": 3,
}
# How a comment names an item of each kind, before its name.
MARKER = {Kind.IMAGE: "", Kind.BUNDLE: "bundle ", Kind.SHARE: "sharing of "}


def spec(
    name: str,
    *,
    source: str = WS_OK,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    file: str = "finance/images.yaml",
    line: int = 1,
    copies: tuple[str, ...] = (),
    share_with: tuple[str, ...] | None = None,
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
        copies=copies,
        share_with=share_with,
    )


def bundle_spec(
    name: str,
    *,
    image: str | None = None,
    image_id: str | None = None,
    compute_type: str = "STANDARD",
    user_volume_gib: int = 50,
    root_volume_gib: int | None = None,
    tags: dict[str, str] | None = None,
    line: int = 1,
) -> BundleSpec:
    return BundleSpec(
        name=name,
        description=f"Bundle {name}",
        image=image,
        image_id=image_id,
        compute_type=compute_type,
        user_volume_gib=user_volume_gib,
        root_volume_gib=root_volume_gib,
        region=None,
        tags=tags or {},
        ignore_tag_keys=frozenset(),
        ignore_tag_prefixes=(),
        file="finance/bundles.yaml",
        line=line,
        image_line=line + 3,
    )


def live_bundle(
    name: str,
    number: int,
    image_id: str,
    *,
    compute_type: str = "STANDARD",
    user_volume_gib: int = 50,
    root_volume_gib: int | None = 80,
    tags: dict[str, str] | None = None,
) -> LiveBundle:
    return LiveBundle(
        bundle_id=f"wsb-{number:09d}",
        name=name,
        description=f"Bundle {name}",
        image_id=image_id,
        compute_type=compute_type,
        user_volume_gib=user_volume_gib,
        root_volume_gib=root_volume_gib,
        state="AVAILABLE",
        tags=OWNED if tags is None else tags,
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
    inventory = RegionInventory.of(
        REGION,
        ImageLive(
            {i.name: i for i in found},
            len(found),
            sources={ws: SourceWorkspace(ws, state) for ws, state in states.items()},
        ),
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


Results = dict[object, tuple[Result, str | None]]


def lifecycle_plan(*, prune: bool = True) -> Plan:
    """The golden-image lifecycle, planned by `make_plan` from specs and live state: a new
    capture with a copy to us-east-1 (after the capture), its sharing in both regions (to
    be granted once each exists), an existing image whose sharing gains one account and
    loses one, a bundle rolled out to the new image, a new bundle, a bundle moving to an
    image named by id, a bundle using an unmanaged image (which --prune so keeps), and an
    unmanaged bundle (deleted with --prune, and with it the image only it used)."""
    specs = [
        spec(
            "finance-win11-2026-11",
            tags={"team": "finance"},
            copies=(COPY_REGION,),
            share_with=(ACCOUNT_A,),
        ),
        spec("finance-win11-2026-10", share_with=(ACCOUNT_B,), line=12),
    ]
    bundles = [
        bundle_spec("finance-standard", image="finance-win11-2026-11", tags={"team": "finance"}),
        bundle_spec(
            "finance-power",
            image="finance-win11-2026-10",
            compute_type="POWER",
            user_volume_gib=100,
            root_volume_gib=175,
            line=10,
        ),
        bundle_spec("contractors", image_id="wsi-0c0c0c0c1", line=19),
        bundle_spec("finance-basic", image_id="wsi-000000009", line=28),
    ]
    images = [
        live("finance-win11-2026-10", 10),
        live("finance-win11-2026-09", 9),  # owned, no spec; finance-basic uses it
        live("finance-win10-2025-01", 8),  # owned, no spec; only finance-legacy uses it
    ]
    found = {
        "finance-standard": live_bundle(
            "finance-standard", 1, "wsi-000000010", root_volume_gib=None
        ),
        "contractors": live_bundle("contractors", 3, "wsi-0c0c0c0c0", root_volume_gib=None),
        "finance-basic": live_bundle("finance-basic", 4, "wsi-000000009", root_volume_gib=None),
        "finance-legacy": live_bundle("finance-legacy", 5, "wsi-000000008"),
    }
    theirs = LiveImage("wsi-0c0c0c0c1", "vendor-contractors-2026", "Vendor image", "AVAILABLE", {})
    inventory = Inventory(
        {
            REGION: RegionInventory.of(
                REGION,
                ImageLive(
                    {i.name: i for i in images},
                    len(images),
                    sources={WS_OK: SourceWorkspace(WS_OK, "AVAILABLE")},
                ),
                BundleLive(found, len(found), referenced={theirs.image_id: theirs}),
                ShareLive({"wsi-000000010": frozenset({ACCOUNT_A})}),
            ),
            COPY_REGION: RegionInventory.of(COPY_REGION, ImageLive()),
        }
    )
    return make_plan(
        specs,
        inventory,
        specs_digest="sha256:" + "cd" * 32,
        default_region=REGION,
        image_quota=40,
        now=NOW,
        prune=prune,
        bundles=bundles,
    )


def lifecycle_applied(plan: Plan) -> Applied:
    """The first apply of `lifecycle_plan`: the capture starts, what waits for it is
    deferred, the rest is done; the image a bundle uses is kept."""
    waits = (
        "waits for the capture of finance-win11-2026-11 (eu-west-1) to end; run apply again "
        "later, or use --wait"
    )
    new, old = "finance-win11-2026-11", "finance-win11-2026-10"
    results: Results = {
        ("image", "", REGION, new): (Result.CREATED, None),
        ("image", "", COPY_REGION, new): (Result.DEFERRED, waits),
        ("share", "", REGION, new): (Result.DEFERRED, waits),
        ("share", "", COPY_REGION, new): (
            Result.DEFERRED,
            f"waits for its image {new} ({COPY_REGION}), deferred: {waits}",
        ),
        ("share", "", REGION, old): (Result.SHARING_UPDATED, None),
        ("bundle", "", REGION, "finance-standard"): (Result.DEFERRED, waits),
        ("bundle", "", REGION, "finance-power"): (Result.CREATED, None),
        ("bundle", "", REGION, "contractors"): (Result.IMAGE_UPDATED, None),
        ("bundle", "", REGION, "wsb-000000005"): (Result.DELETED, None),
        ("image", "", REGION, "wsi-000000008"): (Result.DELETED, None),
        ("image", "", REGION, "wsi-000000009"): (
            Result.SKIPPED,
            "kept: bundle finance-basic still uses it",
        ),
    }
    made: dict[object, dict[str, str]] = {
        ("image", "", REGION, new): {"image_id": "wsi-0fedcba98", "state": "PENDING"},
        ("bundle", "", REGION, "finance-power"): {
            "bundle_id": "wsb-0fedcba98",
            "state": "AVAILABLE",
        },
    }
    return applied(plan, results, made)


def applied(
    plan: Plan, results: Results, made: dict[object, dict[str, str]] | None = None
) -> Applied:
    """The apply document of `plan`, with the given results (others: unchanged/skipped),
    by item key (kind, region, name) or, where names are unique, by name; `made`: fields
    apply sets on an item (the new image's id and state, a new bundle's id)."""
    items = []
    for item in plan.items:
        default = (Result.SKIPPED, item.reason) if item.is_error else (Result.UNCHANGED, None)
        result, error = results.get(item.key, results.get(item.name, default))
        data = item.model_dump(include=set(PlanItem.model_fields))
        data.update((made or {}).get(item.key, {}))
        items.append(AppliedItem(**data, result=result, error=error))
    unmanaged = []
    for u in plan.unmanaged:
        result, error = results.get(u.key, results.get(u.name, (Result.UNCHANGED, None)))
        unmanaged.append(AppliedUnmanaged(**u.model_dump(), result=result, error=error))
    return Applied(
        specs_digest=plan.specs_digest,
        items=tuple(items),
        unmanaged=tuple(unmanaged),
        prune=plan.prune,
    )


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


def ident(x: PlanItem | Unmanaged) -> str:
    """An item or unmanaged resource as a comment names it: its kind when not an image, and
    its name on one line."""
    return MARKER[x.kind] + one_name(x.name)


def key_of(x: PlanItem | Unmanaged) -> str:
    """`ident (region)`: one per item, as an image and its copies share a name."""
    return f"{ident(x)} ({one_name(x.region)})"


def kind_of(document: Plan, key: str) -> str:
    """The kind of row (or "unchanged") the item or unmanaged resource of this key gets."""
    for i in document.items:
        if key_of(i) == key:
            return _item_kind(document, i)
    for u in document.unmanaged:
        if key_of(u) == key:
            kept = "unmanaged-bundle" if u.kind is Kind.BUNDLE else "unmanaged"
            if isinstance(u, AppliedUnmanaged):
                return kept if u.result is Result.UNCHANGED else "delete"
            return "delete" if document.prune and not still_used(document, u) else kept
    raise AssertionError(f"no item {key!r}")


def still_used(plan: Plan, u: Unmanaged) -> bool:
    """Whether a bundle keeps an unmanaged image from --prune: one of those using it that is
    neither pruned (an unmanaged bundle) nor moved off it by the plan, or a declared bundle
    the plan puts on it."""
    if u.kind is not Kind.IMAGE:
        return False
    pruned = {b.name for b in plan.unmanaged if b.kind is Kind.BUNDLE and b.region == u.region}
    bundles = [i for i in plan.items if i.kind is Kind.BUNDLE and i.region == u.region]
    leaving = {
        b.name
        for b in bundles
        if b.action in (Action.UPDATE_IMAGE, Action.ADOPT)
        and bundle_kind.detail_of(b).image_before == u.image_id
        and b.image_id != u.image_id
    }
    arriving = any(b.image_id == u.image_id for b in bundles)
    return arriving or bool(set(u.used_by) - pruned - leaving)


def tier_of(document: Plan, key: str) -> int:
    for x in (*document.unmanaged, *document.items):
        if key_of(x) == key and getattr(x, "result", None) is Result.FAILED:
            return 0
    return TIER[kind_of(document, key)]


def _item_kind(document: Plan, i: PlanItem) -> str:
    replaced = (
        i.is_error and i.result is not Result.SKIPPED
        if isinstance(i, AppliedItem)
        else document.replaces(i)
    )
    if replaced:
        return "replace"
    if i.action is Action.NO_OP:
        return "stuck" if stuck(i) else "unchanged"
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
    counts = {a.value: n for a, n in Counter(i.action for i in plan.items).items()}
    assert counts == {
        "create": 200 - failed,
        "no-op": 150,
        "update-tags": 150,
        "adopt": 50,
        "conflict": 25 + failed,
        "blocked": 25,
    }, counts
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
    """A plan of 0-150 items of any action and kind (images, copies, shares, bundles), names
    and values with characters to escape, up to 50 tag changes of up to 255 characters,
    owned and unowned images in ERROR, 0-30 unmanaged images and bundles (some images used
    by a bundle), with or without --prune and --replace-failed."""

    def text(size: int) -> str:
        return "".join(rnd.choices(_CHARS, k=rnd.randint(0, size)))

    items = []
    for n in range(rnd.randint(0, 150)):
        action = rnd.choice(list(Action))
        kind = _random_kind(rnd, action)
        size = rnd.choice([5, 60, 255])
        changes = tuple(
            TagChange(
                key=f"k{k}-{text(20)}", before=rnd.choice([None, text(size)]), after=text(size)
            )
            for k in range(rnd.randint(0, rnd.choice([3, 50])))
        )
        fields: dict[str, object] = {
            "kind": kind,
            "tag_changes": () if kind is Kind.SHARE else changes,
        }
        if kind is Kind.IMAGE and rnd.random() < 0.2:
            fields.update(copy_from=COPY_REGION, source_workspace_id=None)
        if kind is Kind.SHARE and action is Action.UPDATE_SHARING:
            accounts = rnd.sample(range(10**11, 10**12), rnd.randint(1, rnd.choice([2, 30])))
            fields["share_changes"] = tuple(
                ShareChange(account=str(a), before=not grant, after=grant)
                for a in accounts
                for grant in [rnd.random() < 0.5]
            )
        if kind is Kind.BUNDLE:
            fields.update(_random_bundle(rnd, action, n, text))
        if action is Action.NO_OP and kind is Kind.IMAGE and rnd.random() < 0.2:
            fields.update(stuck=True, reason="capture PENDING since 2026-11-27 09:00 UTC; stuck?")
        if action in FIRST_TIER:
            fields["reason"] = text(300)
        if action is Action.CONFLICT and kind is Kind.IMAGE and rnd.random() < 0.5:
            fields.update(state="ERROR", owned=rnd.random() < 0.8)
        items.append(item(action, f"{n}-{text(64)}", **fields))
    bundles = [i.name for i in items if i.kind is Kind.BUNDLE]
    unmanaged = []
    for n in range(rnd.randint(0, 30)):
        if rnd.random() < 0.3:
            unmanaged.append(
                Unmanaged(
                    kind=Kind.BUNDLE,
                    name=f"orphan-bundle-{n}-{text(64)}",
                    region=REGION,
                    bundle_id=f"wsb-{n:09d}",
                    image_id=f"wsi-{n:09d}",
                )
            )
            continue
        used_by = rnd.sample(bundles, min(len(bundles), rnd.choice([0, 0, 1, 2])))
        for at, b in enumerate(items):
            # Some users move off it (the plan frees it), some stay, one may move onto it.
            if b.name in used_by and rnd.random() < 0.5:
                items[at] = b.updated({"image_before": f"wsi-{n:09d}"})
            elif b.kind is Kind.BUNDLE and rnd.random() < 0.02:
                items[at] = b.model_copy(update={"image_id": f"wsi-{n:09d}"})
        unmanaged.append(
            Unmanaged(
                name=f"orphan-{n}-{text(64)}",
                region=REGION,
                image_id=f"wsi-{n:09d}",
                used_by=tuple(used_by),
            )
        )
    return Plan(
        specs_digest="sha256:x",
        items=tuple(items),
        unmanaged=tuple(unmanaged),
        prune=rnd.random() < 0.5,
        replace_failed=rnd.random() < 0.5,
    )


def _random_kind(rnd: random.Random, action: Action) -> Kind:
    if action is Action.UPDATE_SHARING:
        return Kind.SHARE
    if action is Action.UPDATE_IMAGE:
        return Kind.BUNDLE
    if action is Action.NO_OP and rnd.random() < 0.15:
        return Kind.SHARE
    return Kind.BUNDLE if rnd.random() < 0.25 else Kind.IMAGE


def _random_bundle(
    rnd: random.Random, action: Action, n: int, text: Callable[[int], str]
) -> dict[str, object]:
    """A bundle item's own fields: new (create, or blocked) or existing, moved or not."""
    fields: dict[str, object] = {
        "source_workspace_id": None,
        "image_name": text(64) if rnd.random() < 0.8 else None,
        "image_id": rnd.choice([None, f"wsi-1{n:08d}"]),
        "compute_type": rnd.choice(["STANDARD", "POWERPRO", "GRAPHICS_G4DN"]),
        "user_volume_gib": rnd.choice([10, 50, 2000]),
        "root_volume_gib": rnd.choice([None, 80, 175]),
    }
    if action is Action.CREATE or (action is Action.BLOCKED and rnd.random() < 0.5):
        return fields
    before = f"wsi-2{n:08d}"
    fields.update(bundle_id=f"wsb-1{n:08d}", image_before=before, state="AVAILABLE")
    fields["image_before_name"] = rnd.choice([None, text(64)])
    if action is not Action.UPDATE_IMAGE and rnd.random() < 0.7:
        fields["image_id"] = before  # not moved
    return fields


def random_applied(plan: Plan, rnd: random.Random) -> Applied:
    """An apply result of `plan` as apply could end it: any result for a change, a skipped
    or attempted replacement for an owned failed image, deletions tried when pruning."""
    results: Results = {}
    done = {
        Action.UPDATE_TAGS: Result.TAGS_UPDATED,
        Action.ADOPT: Result.ADOPTED,
        Action.UPDATE_SHARING: Result.SHARING_UPDATED,
        Action.UPDATE_IMAGE: Result.IMAGE_UPDATED,
    }
    for i in plan.items:
        if plan.replaces(i) or i.changes:
            outcome = rnd.choice([Result.CREATED, Result.DEFERRED, Result.FAILED, Result.SKIPPED])
            if outcome is Result.CREATED:
                outcome = done.get(i.action, outcome)
            results[i.key] = (
                outcome,
                "AccessDenied @org #1 | `x`" if rnd.random() < 0.5 else None,
            )
    for u in plan.unmanaged:
        if plan.prune:
            outcome = rnd.choice([Result.DELETED, Result.FAILED, Result.SKIPPED])
            results[u.key] = (outcome, None if outcome is Result.DELETED else "in use <b>")
    return applied(plan, results)
