"""Properties of the planner and apply, for random specs and random live states.

In-process, against moto with the fidelity layer (a fresh `mock_aws()` per example, so
every example starts from an empty account). Plans are built the real way, from spec files
(`build_plan`), and applied with `apply_plan`; the region client's write methods are
wrapped to record every write call the reconciler sends.

Properties, for every example:

1. Convergence: after one apply, a fresh plan shows no change for every item that apply
   did not defer and that was not blocked or in conflict; and no apply result is `failed`
   (no fault is injected, so a failure would be the reconciler's).
2. No image is created twice: every successful CreateWorkspaceImage is for a name absent
   before; no name exists twice; and a second apply creates nothing that exists.
3. An image without the ownership tag is never deleted, and never retagged except by a
   planned `adopt` of that very image (which then carries the declared tags and ours).
   Owned images are deleted only by `--prune`, and only if listed as unmanaged.
4. A saved plan deletes exactly the deletions it showed, never one more: when the
   unmanaged resources change between plan and apply (kept, deleted, appeared, gone, made
   again under their name), one that now calls for another decision makes it stale.
   (Pure: `make_plan` and `planfile.settle`, no account.)
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.apply import Applied, ApplyOptions, Result, apply_plan
from reconciler.aws import AwsSettings, Clients
from reconciler.plan import Action, Plan
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity, installed

REGION = "eu-west-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}
NAMES = [f"img-{n}" for n in range(6)]
OTHER_NAMES = ["other-0", "other-1"]  # live images no spec can declare
SOURCES = [f"ws-{n:09d}" for n in range(4)]


@pytest.fixture(autouse=True, scope="module")
def _aws_env() -> Iterator[None]:
    """Dummy credentials and no AWS_* of the caller's (module-wide: hypothesis runs every
    example inside one call of the test function)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(saved)


# --- strategies -----------------------------------------------------------------------------

tag_sets = st.dictionaries(
    st.sampled_from(["team", "owner", "cost", "env"]), st.sampled_from(["a", "b", ""]), max_size=3
)
spec_sets = st.dictionaries(
    st.sampled_from(NAMES),
    st.fixed_dictionaries({"source": st.sampled_from(SOURCES), "tags": tag_sets}),
    max_size=len(NAMES),
)
# "missing": no such WorkSpace. STOPPED, TERMINATED and ERROR block; SUSPENDED and
# REBOOTING are busy (deferred).
source_states = st.lists(
    st.sampled_from(
        [
            *("AVAILABLE", "AVAILABLE", "AVAILABLE", "missing", "STOPPED", "SUSPENDED"),
            *("REBOOTING", "TERMINATED", "ERROR"),
        ]
    ),
    min_size=len(SOURCES),
    max_size=len(SOURCES),
)


@st.composite
def live_images(draw: st.DrawFn, specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Images that exist before the run: about half of the names, owned or not, in any
    state; their tags are often the spec's own (so that no-op and adopt-without-change
    happen), else random; their description is now and then someone else's."""
    live = {}
    for name in NAMES + OTHER_NAMES:
        if not draw(st.booleans()):
            continue
        declared = specs.get(name, {}).get("tags")
        same_tags = declared is not None and draw(st.booleans())
        live[name] = {
            "owned": draw(st.booleans()),
            "tags": dict(declared) if same_tags else draw(tag_sets),
            "state": draw(st.sampled_from(["AVAILABLE", "AVAILABLE", "PENDING", "ERROR"])),
            "same_description": draw(st.sampled_from([True, True, True, False])),
        }
    return live


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    specs = draw(spec_sets)
    return specs, draw(source_states), draw(live_images(specs))


# --- the account, and what the reconciler sends to it ------------------------------------------


class Writes:
    """Every write call the region client sends: (operation, name or resource id, outcome)."""

    def __init__(self, clients: Clients) -> None:
        self.calls: list[tuple[str, str, str]] = []
        region = clients.region(REGION)
        self._wrap(region.creates, "create_workspace_image", "Name")
        for method in ("create_tags", "delete_tags"):
            self._wrap(region.reads, method, "ResourceId")
        self._wrap(region.reads, "delete_workspace_image", "ImageId")

    def _wrap(self, client: Any, method: str, key: str) -> None:
        real = getattr(client, method)

        def call(**kwargs: Any) -> Any:
            try:
                reply = real(**kwargs)
            except botocore.exceptions.ClientError as err:
                self.calls.append((method, kwargs[key], err.response["Error"]["Code"]))
                raise
            self.calls.append((method, kwargs[key], "ok"))
            return reply

        setattr(client, method, call)

    def created(self) -> list[str]:
        return [
            target for m, target, ok in self.calls if m == "create_workspace_image" and ok == "ok"
        ]

    def touched(self) -> set[str]:
        """Image ids whose tags were written or that were deleted."""
        return {target for m, target, _ in self.calls if m != "create_workspace_image"}

    def clear(self) -> None:
        self.calls.clear()


def seed(fidelity: Fidelity, states: list[str], live: dict[str, dict[str, Any]]) -> None:
    for workspace_id, state in zip(SOURCES, states, strict=True):
        if state != "missing":
            fidelity.add_workspace(REGION, workspace_id, state=state)
    for name, image in live.items():
        description = f"Image {name}" if image["same_description"] else "Made in the console"
        tags = {**image["tags"], **(OWN if image["owned"] else {})}
        fidelity.add_image(REGION, name, description, tags=tags, state=image["state"])


def write_specs(folder: Path, specs: dict[str, dict[str, Any]]) -> None:
    docs = [
        {
            "name": name,
            "description": f"Image {name}",
            "source_workspace_id": spec["source"],
            "tags": spec["tags"],
        }
        for name, spec in specs.items()
    ]
    if docs:  # no spec at all: an empty folder (allow_empty), as when retiring every image
        text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
        (folder / "images.yaml").write_text(text, encoding="utf-8")


def account(fidelity: Fidelity) -> dict[str, dict[str, Any]]:
    """The region's images by id; fails if a name exists twice."""
    images = fidelity.images(REGION)
    twice = [n for n, count in Counter(i["name"] for i in images).items() if count > 1]
    assert not twice, f"created twice: {twice}"
    return {i["id"]: i for i in images}


@contextmanager
def scenario_account(
    specs: dict[str, dict[str, Any]], states: list[str], live: dict[str, dict[str, Any]]
) -> Iterator[tuple[Path, Fidelity, Clients]]:
    """A fresh account holding the scenario's WorkSpaces and images, its specs folder, and
    unpaced clients."""
    with tempfile.TemporaryDirectory() as tmp, mock_aws(), installed() as fidelity:
        folder = Path(tmp)
        write_specs(folder, specs)
        seed(fidelity, states, live)
        clients = Clients(AwsSettings(region=REGION, api_rate=0))
        try:
            yield folder, fidelity, clients
        finally:
            clients.close()


# --- the properties -------------------------------------------------------------------------------


def check_convergence(applied: Applied, after: Plan) -> None:
    fresh = {i.name: i for i in after.items}
    for item in applied.items:
        assert item.result is not Result.FAILED, (item.name, item.error)
        again = fresh[item.name]
        if item.result is Result.DEFERRED:
            assert again.action is Action.CREATE, (item.name, again.action)
        elif item.is_error:  # blocked or conflict: left as it was
            assert item.result is Result.SKIPPED
            assert again.action is item.action, (item.name, again.action)
        else:
            assert again.action is Action.NO_OP, (item.name, item.action, again)


def check_no_duplicate(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], created: list[str]
) -> None:
    existing = {i["name"] for i in before.values()}
    assert len(created) == len(set(created)), created
    assert not set(created) & existing, "a create for a name that exists"
    new = {i["name"] for image_id, i in after.items() if image_id not in before}
    assert new == set(created)


def check_ownership(
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    plan: Plan,
    writes: Writes,
    prune: bool,
) -> None:
    adopted = {i.image_id: i for i in plan.items if i.action is Action.ADOPT}
    unmanaged = {u.image_id for u in plan.unmanaged}
    for image_id, image in before.items():
        owned = image["tags"].get(OWNERSHIP_TAG_KEY) == "true"
        if image_id not in after:
            assert owned, f"an image not ours was deleted: {image}"
            assert prune, f"deleted without --prune: {image}"
            assert image_id in unmanaged, f"deleted, not listed as unmanaged: {image}"
            continue
        if owned:
            continue
        if image_id in adopted:
            declared = {c.key: c.after for c in adopted[image_id].tag_changes}
            kept = {k: v for k, v in image["tags"].items() if k not in declared}
            wanted = {**kept, **declared}
            assert after[image_id]["tags"] == {
                **{k: v for k, v in wanted.items() if v is not None},
                **OWN,
            }
        else:
            assert image_id not in writes.touched(), f"an image not ours was written: {image}"
            assert after[image_id]["tags"] == image["tags"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(), prune=st.booleans())
def test_apply_converges_creates_nothing_twice_and_touches_only_what_is_ours(
    scenario: tuple[dict[str, dict[str, Any]], list[str], dict[str, dict[str, Any]]],
    prune: bool,
) -> None:
    specs, states, live = scenario
    with scenario_account(specs, states, live) as (folder, fidelity, clients):
        writes = Writes(clients)
        options = PlanOptions(specs_dir=str(folder), allow_empty=True)
        before = account(fidelity)

        plan, _ = build_plan(options, clients)
        applied = apply_plan(plan.model_copy(update={"prune": prune}), clients)
        after = account(fidelity)
        again, _ = build_plan(options, clients)

        for item in applied.items:
            event(f"{item.action.value} -> {item.result.value}")
        for gone in applied.unmanaged:
            event(f"unmanaged -> {gone.result.value}")
        check_convergence(applied, again)
        check_no_duplicate(before, after, writes.created())
        check_ownership(before, after, plan, writes, prune)

        # A second apply of the fresh plan creates nothing that exists and converges too.
        writes.clear()
        reapplied = apply_plan(again.model_copy(update={"prune": prune}), clients)
        final = account(fidelity)
        check_no_duplicate(after, final, writes.created())
        check_ownership(after, final, again, writes, prune)
        assert all(i.result is not Result.FAILED for i in reapplied.items)
        assert not [i for i in again.items if i.action is Action.ADOPT], "adopted twice"


# --- deletions: only what the plan showed, only what is owned at the time of the call -------


class DeleteGuard:
    """Wraps DeleteWorkspaceImage: records each call's image id and whether the image carried
    the ownership tag in the account at the moment the call was sent."""

    def __init__(self, clients: Clients, fidelity: Fidelity) -> None:
        self.calls: list[tuple[str, bool]] = []
        reads = clients.region(REGION).reads
        real = reads.delete_workspace_image

        def delete_workspace_image(**kwargs: Any) -> Any:
            image_id = kwargs["ImageId"]
            tags = {i["id"]: i["tags"] for i in fidelity.images(REGION)}.get(image_id, {})
            self.calls.append((image_id, tags.get(OWNERSHIP_TAG_KEY) == "true"))
            return real(**kwargs)

        setattr(reads, "delete_workspace_image", delete_workspace_image)  # noqa: B010


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    scenario=scenarios(),
    prune=st.booleans(),
    replace_failed=st.booleans(),
    saved=st.booleans(),
    disown=st.sets(st.sampled_from(NAMES + OTHER_NAMES)),
)
def test_no_image_is_deleted_unless_the_plan_showed_it_and_it_is_owned_at_the_call(
    scenario: tuple[dict[str, dict[str, Any]], list[str], dict[str, dict[str, Any]]],
    prune: bool,
    replace_failed: bool,
    saved: bool,
    disown: set[str],
) -> None:
    """Random specs, live images, flags, a saved plan or not, and an out-of-band removal of
    the ownership tag from some images between the plan and the apply."""
    from reconciler.planfile import load_plan, save_plan

    specs, states, live = scenario
    with scenario_account(specs, states, live) as (folder, fidelity, clients):
        options = PlanOptions(
            specs_dir=str(folder),
            allow_empty=True,
            prune=prune,
            recapture_failed=replace_failed,
        )
        plan, replan = build_plan(options, clients)
        if saved:
            save_plan(plan, folder / "plan.json")
            plan = load_plan(folder / "plan.json")
        shown = {u.image_id for u in plan.deletions} | {
            i.image_id for i in plan.items if plan.replaces(i)
        }
        for image in fidelity.images(REGION):  # someone takes images back meanwhile
            if image["name"] in disown and OWNERSHIP_TAG_KEY in image["tags"]:
                clients.region(REGION).reads.delete_tags(
                    ResourceId=image["id"], TagKeys=[OWNERSHIP_TAG_KEY]
                )
        guard = DeleteGuard(clients, fidelity)
        apply_plan(plan, clients, ApplyOptions(replan=replan))
        for image_id, owned in guard.calls:
            event("delete")
            assert image_id in shown, f"deleted, not shown as a deletion: {image_id}"
            assert owned, f"deleted without the ownership tag at the call: {image_id}"


# --- saved plans whose unmanaged resources change between plan and apply -------------------
#
# Pure: plans made by `make_plan` from two live states (the one reviewed, the one met at
# apply), the reviewed one saved and loaded as `plan --out` and `apply --plan-file` do, then
# `planfile.settle`. The rule: a saved plan deletes exactly the deletions it showed, never
# one more; an unmanaged resource it showed deleted, kept or listed (or did not show at all)
# that now calls for something else makes it stale, before any change.

UNMANAGED_IMAGES = ["old-0", "old-1", "old-2"]  # owned images no image spec declares
HAND_MADE = ["console-0", "console-1"]  # bundles without the ownership tag: they keep images
OUR_BUNDLES = ["orphan-0"]  # owned bundles no spec declares: pruned first, they keep nothing
DECLARED = "std"  # a declared bundle on `old-0` (its first id), by image_id
PLAN_DIGEST = "sha256:" + "5" * 64
PLAN_NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)

# An image: absent (None) or (version, owned); a new version is the name made again (a new
# id). A bundle: absent, or (the image name it uses, version); a bundle on an absent image
# uses an id that no longer exists.
image_states = st.sampled_from([None, (1, True), (1, True), (2, True), (1, False)])
bundle_states = st.sampled_from(
    [None, *((image, version) for image in UNMANAGED_IMAGES for version in (1, 2))]
)
World = dict[str, Any]


def world_entries() -> dict[str, st.SearchStrategy[Any]]:
    bundles = [*HAND_MADE, *OUR_BUNDLES, DECLARED]
    return {
        **dict.fromkeys(UNMANAGED_IMAGES, image_states),
        **dict.fromkeys(bundles, bundle_states),
    }


@st.composite
def changed_worlds(draw: st.DrawFn) -> tuple[World, World]:
    """The live state reviewed, and the one met at apply: each entry as it was, or not."""
    entries = world_entries()
    before = {name: draw(strategy) for name, strategy in entries.items()}
    after = {
        name: draw(st.one_of(st.just(before[name]), strategy)) for name, strategy in entries.items()
    }
    return before, after


def _image_id(name: str, version: int) -> str:
    return f"wsi-{UNMANAGED_IMAGES.index(name)}{version:08d}"


def _bundle_id(name: str, version: int) -> str:
    return f"wsb-{sorted(world_entries()).index(name)}{version:08d}"


def _used_image(world: World, name: str) -> str:
    found = world[name]
    return _image_id(name, found[0]) if found else f"wsi-9{UNMANAGED_IMAGES.index(name):08d}"


def plan_world(world: World, prune: bool) -> Plan:
    from reconciler.kinds.bundle import BundleLive, LiveBundle
    from reconciler.kinds.image import ImageLive, LiveImage
    from reconciler.live import Inventory, RegionInventory
    from reconciler.plan import make_plan
    from reconciler.specs import BundleSpec

    images = {
        name: LiveImage(
            _image_id(name, state[0]), name, "Image", "AVAILABLE", OWN if state[1] else {}
        )
        for name, state in world.items()
        if name in UNMANAGED_IMAGES and state is not None
    }
    bundles = {
        name: LiveBundle(
            _bundle_id(name, state[1]),
            name,
            f"Bundle {name}",
            _used_image(world, state[0]),
            "STANDARD",
            50,
            80,
            "AVAILABLE",
            {} if name in HAND_MADE else OWN,
        )
        for name, state in world.items()
        if name not in UNMANAGED_IMAGES and state is not None
    }
    declared = BundleSpec(
        name=DECLARED, description=f"Bundle {DECLARED}", image=None,
        image_id=_image_id("old-0", 1), compute_type="STANDARD", user_volume_gib=50,
        root_volume_gib=None, region=REGION, tags={}, ignore_tag_keys=frozenset(),
        ignore_tag_prefixes=(), file="bundles.yaml", line=1, image_line=3,
    )  # fmt: skip
    live = RegionInventory.of(
        REGION, ImageLive(images, len(images), sources={}), BundleLive(bundles, len(bundles))
    )
    return make_plan(
        [], Inventory({REGION: live}), specs_digest=PLAN_DIGEST, default_region=REGION,
        image_quota=40, now=PLAN_NOW, prune=prune, bundles=[declared],
    )  # fmt: skip


def fates(plan: Plan) -> dict[tuple[str, str, str], str]:
    """What the plan decided for each unmanaged resource, by (kind, region, id): with
    --prune, deleted or kept (by a bundle that will still use it); without, listed."""
    deleted = set(plan.deletions)
    return {
        u.key: ("delete" if u in deleted else "keep") if plan.prune else "list"
        for u in plan.unmanaged
    }


def saved_and_loaded(plan: Plan) -> Plan:
    from reconciler.planfile import load_plan, save_plan

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        save_plan(plan, path)
        return load_plan(path)


# The finding: the plan showed old-1 kept while a bundle made by hand used it; the
# bundle is deleted; the saved plan must not delete old-1. (And the reverse: shown deleted,
# now in use.)
_KEPT = {**dict.fromkeys(world_entries()), "old-1": (1, True), "console-0": ("old-1", 1)}
_FREE = {**_KEPT, "console-0": None}


@settings(max_examples=300, deadline=None)
@example(worlds=(_KEPT, _FREE), prune=True)
@example(worlds=(_FREE, _KEPT), prune=True)
@given(worlds=changed_worlds(), prune=st.booleans())
def test_a_saved_plan_deletes_exactly_what_it_showed_or_is_stale(
    worlds: tuple[World, World], prune: bool
) -> None:
    from reconciler.errors import StalePlanError
    from reconciler.planfile import settle

    before, after = worlds
    saved = saved_and_loaded(plan_world(before, prune))
    fresh = plan_world(after, prune)
    shown, now = fates(saved), fates(fresh)
    for key in sorted(set(shown) | set(now)):
        event(f"{key[0]}: {shown.get(key, 'absent')} -> {now.get(key, 'absent')}")

    try:
        settled, _ = settle(saved, fresh)
    except StalePlanError:
        assert before != after, "an unchanged account makes no saved plan stale"
        return
    assert shown == now, "a resource now calls for another decision, and the plan was applied"
    assert {u.key for u in settled.deletions} == {u.key for u in saved.deletions}
