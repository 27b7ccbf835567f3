"""Tags in bulk: `aws.TagReader` and the inventory's discovery, in-process against moto with
the fidelity layer (which serves the Resource Groups Tagging API like the real one).

GetResources calls are counted with botocore's own event hook on the reader's client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import OWNERSHIP_TAG_KEY
from reconciler.aws import (
    IMAGE_RESOURCE,
    TAGGING_THROTTLE_CODES,
    AwsSettings,
    Clients,
    TaggingDenied,
    TagReader,
    arn_kind_and_id,
    resource_arn,
)
from reconciler.inventory import discover, read_region
from reconciler.kinds import image as image_kind
from reconciler.kinds.base import Reading
from reconciler.plan import Action, Desired
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity, FidelityConfig
from tests.inprocess import REGION, spec

OTHER = "us-east-1"
OWN = {OWNERSHIP_TAG_KEY: "true"}
WS = "ws-0a1b2c3d4"


@pytest.fixture
def notes() -> list[str]:
    return []


@pytest.fixture
def clients(fidelity: Fidelity, notes: list[str]) -> Iterator[Clients]:
    """Unpaced clients whose notes for stderr are kept in `notes`."""
    made = Clients(AwsSettings(region=REGION, api_rate=0, tagging_rate=0), notify=notes.append)
    try:
        yield made
    finally:
        made.close()


def count_calls(reader: TagReader) -> Counter[str]:
    """GetResources calls made through `reader` from now on, by kind of query."""
    calls: Counter[str] = Counter()

    def count(params: dict[str, Any], **_: Any) -> None:
        calls["arns" if "ResourceARNList" in params else "filter"] += 1

    reader.client.meta.events.register(
        "before-parameter-build.resource-groups-tagging-api.GetResources", count
    )
    return calls


def plan_specs(tmp_path: Path, clients: Clients, *docs: dict[str, Any], **options: Any) -> Any:
    import yaml

    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    (folder / "images.yaml").write_text(
        "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs), encoding="utf-8"
    )
    plan, _ = build_plan(PlanOptions(specs_dir=str(folder), **options), clients)
    return plan


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_an_image_arn_takes_the_partition_of_its_region_from_botocore(
    clients: Clients, region: str, partition: str
) -> None:
    arn = f"arn:{partition}:workspaces:{region}:123456789012:workspaceimage/wsi-abc"
    assert (
        resource_arn(clients.partition(region), region, "123456789012", IMAGE_RESOURCE, "wsi-abc")
        == arn
    )
    assert arn_kind_and_id(arn) == ("workspaceimage", "wsi-abc")


def test_a_region_unknown_to_botocore_is_in_the_main_partition(clients: Clients) -> None:
    assert clients.partition("xx-future-1") == "aws"


def test_arn_kind_and_id_read_workspaces_arns_only() -> None:
    bundle = "arn:aws:workspaces:eu-west-1:123456789012:workspacebundle/wsb-1"
    assert arn_kind_and_id(bundle) == ("workspacebundle", "wsb-1")
    assert arn_kind_and_id("arn:aws:ec2:eu-west-1:123456789012:instance/i-1") == ("", "")
    assert arn_kind_and_id("not an arn") == ("", "")


def test_the_workspaces_regions_are_botocores_for_the_home_partition(clients: Clients) -> None:
    regions = clients.workspaces_regions(REGION)
    assert REGION in regions
    assert OTHER in regions
    assert all(not r.startswith(("cn-", "us-gov-")) for r in regions)
    assert clients.workspaces_regions("cn-northwest-1") == ["cn-northwest-1"]


def test_150_images_tags_take_two_calls_and_an_untagged_image_has_none(
    fidelity: Fidelity, clients: Clients
) -> None:
    ids = [fidelity.add_image(REGION, f"img-{n:03d}", tags={"n": str(n)}) for n in range(149)]
    bare = fidelity.add_image(REGION, "bare")
    reader = clients.tag_reader(REGION)
    assert reader is not None
    calls = count_calls(reader)
    arns = [reader.arn(IMAGE_RESOURCE, "123456789012", i) for i in [*ids, bare]]
    done: list[int] = []
    found = reader.tags(arns, done.append)
    assert calls == {"arns": 2}
    assert sorted(done) == [50, 100]
    assert [found[a] for a in arns[:149]] == [{"n": str(n)} for n in range(149)]
    assert arns[-1] not in found  # no tags: left out of the answer


@pytest.mark.parametrize("fidelity_config", [FidelityConfig(tagging_page_size=2)])
def test_owned_follows_every_page_and_finds_only_the_ownership_tag(
    fidelity: Fidelity, clients: Clients
) -> None:
    owned = [fidelity.add_image(REGION, f"ours-{n}", tags={**OWN, "n": str(n)}) for n in range(5)]
    fidelity.add_image(REGION, "theirs", tags={"team": "x"})
    fidelity.add_image(REGION, "disowned", tags={OWNERSHIP_TAG_KEY: "false"})
    reader = clients.tag_reader(REGION)
    assert reader is not None
    calls = count_calls(reader)
    found = reader.owned()
    assert calls == {"filter": 3}  # pages of 2
    assert {arn_kind_and_id(a)[1]: t["n"] for a, t in found.items()} == {
        image_id: str(n) for n, image_id in enumerate(owned)
    }


def test_a_denied_tagging_api_raises_tagging_denied(fidelity: Fidelity, clients: Clients) -> None:
    fidelity.deny_tagging()
    reader = clients.tag_reader(REGION)
    assert reader is not None
    with pytest.raises(TaggingDenied):
        reader.owned()


def test_the_tagging_api_has_its_own_bucket_that_slows_when_throttled(fidelity: Fidelity) -> None:
    made = Clients(AwsSettings(region=REGION, api_rate=2.0, tagging_rate=5.0))
    try:
        reader = made.tag_reader(REGION)
        assert reader is not None
        assert reader.bucket is not made.region(REGION).bucket
        assert reader.bucket.base_rate == 5.0
        assert "ThrottledException" in TAGGING_THROTTLE_CODES  # the tagging API's code
        service = reader.client.meta.service_model.service_id.hyphenize()
        reader.client.meta.events.emit(  # as botocore does when a reply arrives
            f"response-received.{service}.GetResources",
            parsed_response={"Error": {"Code": "ThrottledException"}},
            exception=None,
        )
        assert reader.bucket.rate == 2.5
        assert made.region(REGION).bucket.rate == 2.0
    finally:
        made.close()


def test_read_images_reads_every_judged_images_tags_in_one_call_after_the_listing(
    fidelity: Fidelity, clients: Clients
) -> None:
    fidelity.add_image(REGION, "ours", tags={**OWN, "team": "a"})
    theirs = fidelity.add_image(REGION, "theirs", tags={"team": "b"})
    fidelity.add_image(REGION, "bare")
    reader = clients.tag_reader(REGION)
    assert reader is not None
    calls = count_calls(reader)
    inv = read_region(
        Reading(clients.region(REGION), Desired(()), False, frozenset), lambda: reader
    )
    assert calls == {"arns": 1}
    assert image_kind.live_of(inv).images["ours"].tags == {**OWN, "team": "a"}
    assert image_kind.live_of(inv).images["theirs"].tags == {"team": "b"}
    assert image_kind.live_of(inv).images["theirs"].image_id == theirs
    assert image_kind.live_of(inv).images["bare"].tags == {}
    assert image_kind.live_of(inv).image_count == 3


def test_images_listed_without_their_owner_account_are_read_in_bulk_as_the_callers(
    fidelity: Fidelity, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older DescribeWorkspaceImages answers lack `OwnerAccountId`: the listing is of the
    caller's own images, so the caller's account (one sts:GetCallerIdentity) builds their
    ARNs, and their tags come in bulk, not one DescribeTags each."""
    fidelity.add_image(REGION, "img", tags={"team": "a"})
    fidelity.add_image(REGION, "other", tags={**OWN})
    region = clients.region(REGION)
    listed = [{k: v for k, v in i.items() if k != "OwnerAccountId"} for i in region.images()]
    monkeypatch.setattr(region, "images", lambda: iter(listed))
    described: list[str] = []
    real_tags = region.tags
    monkeypatch.setattr(region, "tags", lambda i: described.append(i) or real_tags(i))
    asked: list[str] = []

    def account() -> str:
        asked.append("GetCallerIdentity")
        return clients.account()

    reader = clients.tag_reader(REGION)
    assert reader is not None
    calls = count_calls(reader)
    inv = read_region(
        Reading(region, Desired(()), False, frozenset, account=account), lambda: reader
    )
    assert described == []
    assert calls == {"arns": 1}
    assert asked == ["GetCallerIdentity"]
    assert image_kind.live_of(inv).images["img"].tags == {"team": "a"}
    assert image_kind.live_of(inv).images["other"].tags == OWN


def test_an_image_listed_without_its_owner_account_is_read_with_describe_tags(
    fidelity: Fidelity, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the caller's account (a reader given none), one DescribeTags each."""
    fidelity.add_image(REGION, "img", tags={"team": "a"})
    region = clients.region(REGION)
    listed = [{k: v for k, v in i.items() if k != "OwnerAccountId"} for i in region.images()]
    monkeypatch.setattr(region, "images", lambda: iter(listed))
    described: list[str] = []
    real_tags = region.tags
    monkeypatch.setattr(region, "tags", lambda i: described.append(i) or real_tags(i))
    inv = read_region(
        Reading(region, Desired(()), False, frozenset), lambda: clients.tag_reader(REGION)
    )
    assert described == [listed[0]["ImageId"]]
    assert image_kind.live_of(inv).images["img"].tags == {"team": "a"}


def test_a_plan_finds_an_owned_image_in_a_region_that_no_spec_names(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, notes: list[str]
) -> None:
    """Issue 10 item 4: a spec moved to another region leaves its old image behind."""
    fidelity.add_image(REGION, "moved", description="Image moved", tags=OWN)
    left = fidelity.add_image(OTHER, "moved", description="Image moved", tags=OWN)
    fidelity.add_image("ap-south-1", "not-ours", tags={"team": "x"})
    plan = plan_specs(tmp_path, clients, spec("moved", WS))
    assert [(i.region, i.action) for i in plan.items] == [(REGION, Action.NO_OP)]
    assert [(u.region, u.image_id) for u in plan.unmanaged] == [(OTHER, left)]
    assert notes == []


def test_a_target_run_discovers_nothing_and_reads_its_tags_by_arn(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    fidelity.add_image(REGION, "a", description="Image a", tags={**OWN, "k": "v"})
    fidelity.add_image(OTHER, "left", tags=OWN)
    reader = clients.tag_reader(REGION)
    assert reader is not None
    calls = count_calls(reader)
    plan = plan_specs(tmp_path, clients, spec("a", WS, {"k": "v"}), targets=("a",))
    assert [i.action for i in plan.items] == [Action.NO_OP]
    assert plan.unmanaged == ()
    assert calls == {"arns": 1}
    assert clients.tag_reader(OTHER) is not None  # made only now: never asked before


def test_a_region_that_refuses_is_skipped_with_one_note(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, notes: list[str]
) -> None:
    fidelity.add_image(REGION, "a", description="Image a", tags=OWN)
    fidelity.disable_region("ap-south-1")
    fidelity.deny_tagging(region="ca-central-1")  # an organisation policy, say
    plan = plan_specs(tmp_path, clients, spec("a", WS))
    assert [i.action for i in plan.items] == [Action.NO_OP]
    assert len(notes) == 1, notes
    assert "ap-south-1 (UnrecognizedClientException)" in notes[0]
    assert "ca-central-1 (AccessDeniedException)" in notes[0]
    assert not clients.tagging_denied  # the role may call it: only those regions refused


def test_a_denied_tagging_api_reads_tags_one_by_one_in_the_named_regions_and_says_so(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, notes: list[str]
) -> None:
    fidelity.deny_tagging()
    fidelity.add_image(REGION, "a", description="Image a", tags={**OWN, "k": "old"})
    fidelity.add_image(OTHER, "b", description="Image b", tags=OWN)
    fidelity.add_image("ap-south-1", "left", tags=OWN)  # no spec names its region
    plan = plan_specs(
        tmp_path, clients, spec("a", WS, {"k": "new"}), {**spec("b", WS), "region": OTHER}
    )
    assert [(i.name, i.action) for i in plan.items] == [
        ("a", Action.UPDATE_TAGS),
        ("b", Action.NO_OP),
    ]
    assert plan.unmanaged == ()  # not looked for where it is
    assert clients.tagging_denied
    assert len(notes) == 2, notes
    assert "tag:GetResources" in notes[0]
    assert "DescribeTags" in notes[0]
    unchecked = notes[1]
    assert "ap-south-1" in unchecked
    assert "regions:" in unchecked
    assert REGION not in unchecked
    assert OTHER not in unchecked


def test_the_fallback_note_is_said_once_however_often_it_is_refused(
    clients: Clients, notes: list[str]
) -> None:
    for _ in range(3):
        clients.tagging_refused()
    assert len(notes) == 1
    assert clients.tag_reader(REGION) is None


def test_an_owned_image_gone_before_its_tag_read_in_bulk_is_never_unmanaged(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tags are read after the listing, so an image deleted in between is left out of the
    owned ones: the tagging API answers nothing for it, as for an untagged image."""
    keep = fidelity.add_image(REGION, "keep", "Image keep", tags=OWN)
    gone = fidelity.add_image(REGION, "gone", tags=OWN)
    region = clients.region(REGION)
    real_images = region.images

    def images() -> Iterator[Any]:
        listed = list(real_images())
        fidelity.backend(REGION).workspace_images.pop(gone)  # deleted after the listing
        yield from listed

    monkeypatch.setattr(region, "images", images)
    plan = plan_specs(tmp_path, clients, spec("keep", WS))
    assert [(i.image_id, i.action) for i in plan.items] == [(keep, Action.NO_OP)]
    assert plan.unmanaged == ()


def test_discover_finds_the_regions_holding_owned_images_and_those_that_refused(
    fidelity: Fidelity, clients: Clients
) -> None:
    fidelity.add_image(OTHER, "ours", tags=OWN)
    fidelity.add_image("eu-west-2", "theirs", tags={"team": "x"})
    fidelity.disable_region("ap-south-1")
    fidelity.deny_tagging(region="ca-central-1")
    found = discover(clients, REGION)
    assert found.regions == {OTHER}
    assert found.refused == {
        "ap-south-1": "UnrecognizedClientException",
        "ca-central-1": "AccessDeniedException",
    }
    assert not found.denied
    assert set(found.owned) == set(clients.workspaces_regions(REGION)) - set(found.refused)


def test_discover_asks_nothing_more_when_the_home_region_refuses(
    fidelity: Fidelity, clients: Clients, notes: list[str]
) -> None:
    fidelity.deny_tagging()
    found = discover(clients, REGION)
    assert found.denied
    assert found.owned == {}
    assert clients.tagging_denied
    assert len(notes) == 1


# --- `regions:` of the root defaults: the regions a run reads besides those named -------


def write(folder: Path, relative: str, text: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_root_defaults_regions_are_the_spec_sets_regions(tmp_path: Path) -> None:
    from reconciler.specs import load_specs

    write(tmp_path, "defaults.yaml", "defaults:\n  regions: [us-east-1, ap-south-1]\n")
    write(tmp_path, "a/images.yaml", "name: a\ndescription: A\nsource_workspace_id: ws-0a1b2c3d4\n")
    assert load_specs(tmp_path).regions == ("us-east-1", "ap-south-1")
    assert load_specs(tmp_path / "a").regions == ()


def test_regions_in_a_folders_defaults_is_an_error_at_its_line(tmp_path: Path) -> None:
    from reconciler.errors import SpecError
    from reconciler.specs import load_specs

    write(
        tmp_path, "team/defaults.yaml", "defaults:\n  region: eu-west-1\n  regions: [us-east-1]\n"
    )
    write(tmp_path, "team/x.yaml", "name: a\ndescription: A\nsource_workspace_id: ws-0a1b2c3d4\n")
    with pytest.raises(SpecError) as raised:
        load_specs(tmp_path, shown_root="specs")
    (problem,) = raised.value.problems
    assert (problem.file, problem.line, problem.column) == ("specs/team/defaults.yaml", 3, 3)
    assert problem.field == "defaults.regions"
    assert "root defaults" in problem.message


@pytest.mark.parametrize("bad", ["[EU-WEST-1]", "eu-west-1", "[1]"])
def test_regions_must_be_a_list_of_region_codes(tmp_path: Path, bad: str) -> None:
    from reconciler.errors import SpecError
    from reconciler.specs import load_specs

    write(tmp_path, "defaults.yaml", f"defaults:\n  regions: {bad}\n")
    write(tmp_path, "x.yaml", "name: a\ndescription: A\nsource_workspace_id: ws-0a1b2c3d4\n")
    with pytest.raises(SpecError) as raised:
        load_specs(tmp_path)
    fields = [p.field for p in raised.value.problems]
    assert fields
    assert all(f.startswith("defaults.regions") for f in fields), fields


def test_a_denied_run_also_reads_the_root_defaults_regions(
    fidelity: Fidelity, clients: Clients, tmp_path: Path, notes: list[str]
) -> None:
    fidelity.deny_tagging()
    fidelity.add_image(REGION, "a", description="Image a", tags=OWN)
    left = fidelity.add_image("ap-south-1", "left", tags=OWN)
    folder = tmp_path / "specs"
    write(folder, "defaults.yaml", "defaults:\n  regions: [ap-south-1]\n")
    plan = plan_specs(tmp_path, clients, spec("a", WS))
    assert [(u.region, u.image_id) for u in plan.unmanaged] == [("ap-south-1", left)]
    assert "ap-south-1" not in notes[-1]  # read, so not among the unchecked


def test_a_region_where_workspaces_is_not_offered_in_regions_stops_the_run(
    fidelity: Fidelity, clients: Clients, tmp_path: Path
) -> None:
    from reconciler.errors import ConfigError

    write(tmp_path / "specs", "defaults.yaml", "defaults:\n  regions: [us-west-1]\n")
    with pytest.raises(ConfigError, match=r"`regions:`.*WorkSpaces is not offered in us-west-1"):
        plan_specs(tmp_path, clients, spec("a", WS))
