"""The reader against real AWS answers, as Cloud Custodian recorded them (its placebo data,
tests/data/placebo/test_workspaces_bundle_tag in cloud-custodian/cloud-custodian).

In that recording the tagging API's GetResources answered nothing for a bundle that
DescribeTags showed with two tags: the answers below are transcribed from it (only the
fields the reconciler reads), and replayed at botocore's boundary with its own Stubber, in
the order the reconciler makes the calls. The bundle must come out with its tags, read with
DescribeTags, not as an untagged bundle.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from reconciler.aws import AwsSettings, Clients
from reconciler.inventory import read_region
from reconciler.kinds import bundle as bundle_kind
from reconciler.kinds.base import Reading
from reconciler.plan import Desired
from reconciler.specs.models import BundleSpec

REGION = "us-east-1"
ACCOUNT = "644160558196"
BUNDLE_ID = "wsb-fpy0tzxgc"

# workspaces.DescribeWorkspaceBundles_1.json
RECORDED_BUNDLE = {
    "BundleId": BUNDLE_ID,
    "Name": "c7ntest",
    "Owner": ACCOUNT,
    "Description": "testing",
    "ImageId": "wsi-8ty9127vz",
    "RootStorage": {"Capacity": "80"},
    "UserStorage": {"Capacity": "10"},
    "ComputeType": {"Name": "VALUE"},
    "State": "AVAILABLE",
    "BundleType": "REGULAR",
}
# tagging.GetResources_1.json
RECORDED_GET_RESOURCES = {"PaginationToken": "", "ResourceTagMappingList": []}
# workspaces.DescribeTags_1.json
RECORDED_TAGS = {
    "TagList": [{"Key": "test", "Value": "testval"}, {"Key": "Owner", "Value": "aj@stacklet.io"}]
}


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients(AwsSettings(region=REGION, api_rate=0, tagging_rate=0))
    try:
        yield made
    finally:
        made.close()


def bundle_spec() -> BundleSpec:
    return BundleSpec(
        name="c7ntest",
        description="testing",
        image=None,
        image_id="wsi-8ty9127vz",
        compute_type="VALUE",
        user_volume_gib=10,
        root_volume_gib=80,
        region=REGION,
        tags={"test": "testval", "Owner": "aj@stacklet.io"},
        ignore_tag_keys=frozenset(),
        ignore_tag_prefixes=(),
        file="b.yaml",
        line=1,
        image_line=4,
    )


def test_a_bundle_the_recorded_tagging_answer_left_out_is_read_with_describe_tags(
    clients: Clients,
) -> None:
    region = clients.region(REGION)
    reader = clients.tag_reader(REGION)
    assert reader is not None
    arn = f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspacebundle/{BUNDLE_ID}"
    with Stubber(region.reads) as workspaces, Stubber(reader.client) as tagging:
        workspaces.add_response(
            "describe_workspace_images", {"Images": []}, {"ImageType": "OWNED", "MaxResults": 25}
        )
        workspaces.add_response("describe_workspace_bundles", {"Bundles": [RECORDED_BUNDLE]}, {})
        tagging.add_response("get_resources", RECORDED_GET_RESOURCES, {"ResourceARNList": [arn]})
        workspaces.add_response("describe_tags", RECORDED_TAGS, {"ResourceId": BUNDLE_ID})
        # The spec's image is read by id, as for any `image_id` the owned listing lacks.
        workspaces.add_response(
            "describe_workspace_images",
            {"Images": [{"ImageId": "wsi-8ty9127vz", "Name": "x", "State": "AVAILABLE"}]},
            {"ImageIds": ["wsi-8ty9127vz"]},
        )
        inv = read_region(
            Reading(region, Desired((), (bundle_spec(),), REGION), False, lambda: set()),
            lambda: reader,
        )
        workspaces.assert_no_pending_responses()
        tagging.assert_no_pending_responses()
    bundles = bundle_kind.live_of(inv)
    assert bundles.bundles is not None
    assert dict(bundles.bundles["c7ntest"].tags) == {"test": "testval", "Owner": "aj@stacklet.io"}
    assert bundles.bundle_count == 1
