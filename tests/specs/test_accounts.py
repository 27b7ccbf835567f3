"""Many accounts in the specs: the account map resolved into the specs, the import that
names a retired source (a warning offline, an error for a plan that must create it), the
checks that wait for the default region, and the commands that stop until the engine has
accounts.

The offline errors themselves are cases of the validation corpus (test_invalid_corpus.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ProblemKind
from reconciler.specs import SpecSet, load_specs, plan_time_problems
from reconciler.specs.accounts import missing_source_problems
from reconciler.specs.models import Account, SourceImage
from tests.specs.test_invalid_corpus import MAP, NAME, invoke, spec, write_tree

IMAGES, FINANCE, VENDOR = "111111111111", "222222222222", "999999999999"

ORGANISATION = {
    "defaults.yaml": MAP,
    "images/defaults.yaml": "defaults:\n  account: images\n  share_with: [finance]\n",
    "images/a.yaml": spec("copies: [us-east-1]\n"),
    "images/b.yaml": spec("share_with: [finance, '999999999999']\n", name="other"),
    "finance/defaults.yaml": "defaults:\n  account: finance\n",
    # The same name as the images account's image: another account, another image.
    "finance/a.yaml": f"name: {NAME}\ndescription: Imported\n"
    "source_image:\n  account: images\n  name: finance-win11\n  region: us-east-1\n"
    "---\n"
    "kind: bundle\nname: finance-standard\ndescription: Finance desktop\n"
    f"image: {NAME}\ncompute_type: STANDARD\nuser_volume_gib: 50\n",
    "finance/vendor.yaml": "name: vendor-image\ndescription: From a vendor\n"
    f"source_image:\n  account: '{VENDOR}'\n  name: their-image\n",
    # A spec's own account: beats its folder's.
    "finance/audit.yaml": spec("account: images\n", name="audit-image"),
}


@pytest.fixture
def organisation(tmp_path: Path) -> SpecSet:
    write_tree(tmp_path / "specs", dict(ORGANISATION))
    return load_specs(tmp_path / "specs")


def by_file(spec_set: SpecSet) -> dict[str, object]:
    return {s.file: s for s in (*spec_set.specs, *spec_set.bundles)}


def test_the_map_is_read_in_file_order_with_where_each_account_is(
    organisation: SpecSet,
) -> None:
    images, finance = organisation.accounts
    assert images == Account(
        "images",
        IMAGES,
        "arn:aws:iam::111111111111:role/workspaces-reconciler",
        None,
        "defaults.yaml",
        4,
        id_line=5,
        role_line=6,
    )
    assert (finance.name, finance.id, finance.role, finance.line) == ("finance", FINANCE, None, 7)


def test_each_spec_resolves_to_its_nearest_account(organisation: SpecSet) -> None:
    accounts = {(s.file, s.name): (s.account, s.account_name) for s in organisation.specs}
    assert accounts == {
        ("images/a.yaml", NAME): (IMAGES, "images"),
        ("images/b.yaml", "other"): (IMAGES, "images"),
        ("finance/a.yaml", NAME): (FINANCE, "finance"),
        ("finance/vendor.yaml", "vendor-image"): (FINANCE, "finance"),
        ("finance/audit.yaml", "audit-image"): (IMAGES, "images"),
    }
    (bundle,) = organisation.bundles
    assert (bundle.account, bundle.account_name) == (FINANCE, "finance")
    assert (bundle.account_file, bundle.account_line) == ("finance/defaults.yaml", 2)


def test_share_with_names_resolve_to_ids_and_keep_what_was_written(
    organisation: SpecSet,
) -> None:
    specs = {s.name: s for s in organisation.specs}
    assert specs[NAME].share_with == (FINANCE,)
    assert specs[NAME].share_with_written == ("finance",)
    assert specs["other"].share_with == (FINANCE, VENDOR)
    assert specs["other"].share_with_written == ("finance", VENDOR)


def test_an_import_resolves_its_source_account(organisation: SpecSet) -> None:
    imports = {s.name: s for s in organisation.specs if s.source_image is not None}
    assert imports[NAME].source_workspace_id is None
    assert imports[NAME].source_image == SourceImage(
        IMAGES, "images", NAME, "us-east-1", 3, account_line=4, name_line=5
    )
    vendor = imports["vendor-image"].source_image
    assert vendor is not None
    assert (vendor.account, vendor.account_name, vendor.region) == (VENDOR, None, None)


def test_the_organisation_validates_without_warning(tmp_path: Path) -> None:
    write_tree(tmp_path / "specs", dict(ORGANISATION))
    outcome = invoke(["validate", str(tmp_path / "specs")])
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stderr == ""


def test_without_a_map_specs_resolve_to_no_account(tmp_path: Path) -> None:
    write_tree(tmp_path / "specs", {"a.yaml": spec("share_with: ['111122223333']\n")})
    (only,) = load_specs(tmp_path / "specs").specs
    assert (only.account, only.account_name, only.source_image) == (None, None, None)
    assert only.share_with == ("111122223333",)


def test_an_import_from_an_id_needs_no_map(tmp_path: Path) -> None:
    files = {
        "a.yaml": f"name: {NAME}\ndescription: x\n"
        f"source_image:\n  account: '{VENDOR}'\n  name: theirs\n"
    }
    write_tree(tmp_path / "specs", files)
    (only,) = load_specs(tmp_path / "specs").specs
    assert only.source_image is not None
    assert (only.account, only.source_image.account) == (None, VENDOR)


def test_a_name_declared_once_in_each_of_two_accounts_is_valid(tmp_path: Path) -> None:
    files = {
        "defaults.yaml": MAP,
        "a.yaml": spec("account: images\n"),
        "b.yaml": spec("account: finance\n"),
    }
    write_tree(tmp_path / "specs", files)
    assert len(load_specs(tmp_path / "specs").specs) == 2


# ---------------------------------------------------------------------------------------
# A source retired: a warning offline, an error for the plan that must create the import
# ---------------------------------------------------------------------------------------

RETIRED = {
    "defaults.yaml": MAP,
    "images/a.yaml": spec("account: images\nshare_with: [finance]\n", name="finance-win12"),
    "finance/a.yaml": f"name: {NAME}\ndescription: Imported\naccount: finance\n"
    f"source_image:\n  account: images\n  name: {NAME}\n",
}
RETIRED_WARNING = (
    "specs/finance/a.yaml:6:1: source_image.name: warning: names no image spec of account "
    "images: 'finance-win11' (did you mean 'finance-win12'?); valid while image "
    "'finance-win11' exists already (its source retired), but a plan that has to import it "
    "stops: fix the name, or declare that image in account images"
)


def test_an_import_whose_source_spec_is_gone_validates_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", dict(RETIRED))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stderr.splitlines() == [RETIRED_WARNING]


def test_the_plan_turns_it_into_an_error_for_an_import_to_create(tmp_path: Path) -> None:
    write_tree(tmp_path / "specs", dict(RETIRED))
    spec_set = load_specs(tmp_path / "specs")
    imports = [s for s in spec_set.specs if s.source_image is not None]
    (problem,) = missing_source_problems(imports, spec_set.specs, "specs", to_create=True)
    assert (problem.file, problem.line, problem.field) == (
        "specs/finance/a.yaml",
        6,
        "source_image.name",
    )
    assert "is yet to be imported; fix the name" in problem.message
    assert problem.kind is ProblemKind.UNKNOWN_REFERENCE  # offline: missing-import-source
    assert missing_source_problems([], spec_set.specs, "specs", to_create=True) == []


def test_an_import_from_outside_the_map_is_never_judged_offline(tmp_path: Path) -> None:
    files = {
        "defaults.yaml": MAP,
        "a.yaml": f"name: {NAME}\ndescription: x\naccount: finance\n"
        f"source_image:\n  account: '{VENDOR}'\n  name: theirs\n",
    }
    write_tree(tmp_path / "specs", files)
    assert load_specs(tmp_path / "specs").warnings == ()


# ---------------------------------------------------------------------------------------
# What waits for the default region
# ---------------------------------------------------------------------------------------


def test_a_source_region_known_only_at_plan_time_is_checked_then(tmp_path: Path) -> None:
    files = {
        "defaults.yaml": MAP.replace("  region: eu-west-1\n", ""),
        "a.yaml": spec("account: images\nregion: eu-west-1\nshare_with: [finance]\n"),
        "b.yaml": f"name: {NAME}\ndescription: x\naccount: finance\n"
        f"source_image:\n  account: images\n  name: {NAME}\n",
    }
    write_tree(tmp_path / "specs", files)
    spec_set = load_specs(tmp_path / "specs")
    assert plan_time_problems(spec_set, default_region="eu-west-1", shown_root="specs") == []
    (problem,) = plan_time_problems(spec_set, default_region="us-east-1", shown_root="specs")
    assert (problem.file, problem.line, problem.field) == ("specs/b.yaml", 4, "source_image")
    assert "is not in us-east-1, the source region" in problem.message


def test_a_defaults_entry_naming_no_account_is_reported_once(tmp_path: Path) -> None:
    files = {
        "defaults.yaml": MAP,
        "team/defaults.yaml": "defaults:\n  account: images\n  share_with: [financ]\n",
        "team/a.yaml": spec() + "---\n" + spec(name="b") + "---\n" + spec(name="c"),
    }
    write_tree(tmp_path / "specs", files)
    outcome = invoke(["validate", str(tmp_path / "specs")])
    assert outcome.exit_code == 1
    assert outcome.stderr.count("did you mean 'finance'?") == 1, outcome.stderr
