"""Updated images in the specs (`updated_from: NAME`): the resolved spec, what validate only
warns about (a source retired, a region only the default region settles), the error the plan
makes of a retired source for an image still to create, and a whole rollout that validates.

The offline errors themselves are cases of the validation corpus (test_invalid_corpus.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ProblemKind
from reconciler.specs import SpecSet, load_specs, plan_time_problems
from reconciler.specs.updates import missing_update_source_problems
from tests.specs.test_invalid_corpus import (
    DEFAULTS_OK,
    MAP,
    NAME,
    UPDATE,
    bundle,
    invoke,
    spec,
    updated,
    write_tree,
)

FINANCE = "222222222222"


def loaded(tmp_path: Path, files: dict[str, str]) -> SpecSet:
    write_tree(tmp_path / "specs", dict(files))
    return load_specs(tmp_path / "specs", shown_root="specs")


def validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> str:
    """`validate specs`, which must pass; its stderr (the warnings)."""
    write_tree(tmp_path / "specs", dict(files))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 0, outcome.stderr
    return outcome.stderr


# ---------------------------------------------------------------------------------------
# A rollout that validates: the updated image, its copies and sharing, bundles naming it
# ---------------------------------------------------------------------------------------

ROLLOUT = {
    "defaults.yaml": MAP,
    "images/defaults.yaml": "defaults:\n  account: images\n  share_with: [finance]\n",
    "images/2026-11.yaml": spec("copies: [us-east-1]\n"),
    "images/2026-12.yaml": updated("copies: [us-east-1]\n"),
    "images/2027-01.yaml": updated(name="finance-win11-2027-01", source=UPDATE),
    "images/bundles.yaml": bundle("account: images\n", image=f"image: {UPDATE}")
    + "---\n"
    + bundle("region: us-east-1\naccount: images\n", image=f"image: {UPDATE}"),
    # Another account's image of the same names: another resource, no source of these.
    "finance/a.yaml": f"name: {UPDATE}\ndescription: Imported\naccount: finance\n"
    f"source_image:\n  account: images\n  name: {UPDATE}\n",
}


def test_a_rollout_of_updated_images_validates_without_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert validated(tmp_path, monkeypatch, ROLLOUT) == ""


def test_an_updated_image_resolves_its_source_and_where_it_is_written(tmp_path: Path) -> None:
    specs = {(s.account_name, s.name): s for s in loaded(tmp_path, ROLLOUT).specs}
    december = specs[("images", UPDATE)]
    assert (december.updated_from, december.updated_from_line) == (NAME, 3)
    assert (december.source_workspace_id, december.source_image) == (None, None)
    assert (december.region, december.copies) == ("eu-west-1", ("us-east-1",))
    assert december.share_with == (FINANCE,)  # the folder's share_with applies as to any image
    capture = specs[("images", NAME)]
    assert (capture.updated_from, capture.updated_from_line) == (None, 0)
    assert specs[("finance", UPDATE)].updated_from is None


def test_a_spec_with_updated_from_and_another_source_is_not_loaded(tmp_path: Path) -> None:
    files = {"a.yaml": spec(), "b.yaml": updated("source_workspace_id: ws-0a1b2c3d4\n")}
    write_tree(tmp_path / "specs", files)
    outcome = invoke(["validate", str(tmp_path / "specs")])
    assert outcome.exit_code == 1
    assert outcome.stderr.count("not both") == 1, outcome.stderr


# ---------------------------------------------------------------------------------------
# Loops: every spec of the loop, each read from itself
# ---------------------------------------------------------------------------------------


def test_every_spec_of_a_loop_is_reported_at_its_updated_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "a.yaml": updated(name="a", source="b"),
        "b.yaml": updated(name="b", source="c"),
        "c.yaml": updated(name="c", source="a"),
        # Leads into the loop without being on it: its own problem is the loop's.
        "d.yaml": updated(name="d", source="a"),
    }
    write_tree(tmp_path / "specs", files)
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 1
    assert [line for line in outcome.stderr.splitlines() if "loops" in line] == [
        f"specs/{first}.yaml:3:1: updated_from: the chain of updated_from loops ({chain}): an "
        "updated image is made from an image that exists first; give one of them "
        "source_workspace_id or source_image instead"
        for first, chain in [
            ("a", "a -> b -> c -> a"),
            ("b", "b -> c -> a -> b"),
            ("c", "c -> a -> b -> c"),
        ]
    ]


def test_a_chain_that_ends_in_a_capture_is_no_loop(tmp_path: Path) -> None:
    files = {
        "a.yaml": spec(),
        "b.yaml": updated(name="b"),
        "c.yaml": updated(name="c", source="b"),
        "d.yaml": updated(name="d", source="b"),  # two updates of one image: no loop either
    }
    assert loaded(tmp_path, files).warnings == ()


def test_one_name_in_two_regions_is_no_loop(tmp_path: Path) -> None:
    """b (eu-west-1) -> a (eu-west-1) and a (us-east-1) -> b (us-east-1): two chains."""
    files = {
        "eu/defaults.yaml": "defaults:\n  region: eu-west-1\n",
        "eu/a.yaml": spec(name="a"),
        "eu/b.yaml": updated(name="b", source="a"),
        "us/defaults.yaml": "defaults:\n  region: us-east-1\n",
        "us/b.yaml": spec(name="b"),
        "us/a.yaml": updated(name="a", source="b"),
    }
    assert loaded(tmp_path, files).warnings == ()


# ---------------------------------------------------------------------------------------
# A source retired: a warning offline, an error for the plan that must create the image
# ---------------------------------------------------------------------------------------

RETIRED = {"a.yaml": spec(name="finance-win12"), "b.yaml": updated()}
RETIRED_WARNING = (
    "specs/b.yaml:3:1: updated_from: warning: names no image spec: 'finance-win11' (did you "
    f"mean 'finance-win12'?); valid while image '{UPDATE}' exists already (its source "
    "retired), but a plan that has to create it stops: fix the name, or declare image "
    "'finance-win11'"
)


def test_an_updated_image_whose_source_spec_is_gone_validates_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert validated(tmp_path, monkeypatch, RETIRED).splitlines() == [RETIRED_WARNING]


def test_a_source_only_in_another_account_is_a_retired_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monthly flow with imports of the same names: images retires last month's spec,
    finance keeps its import of it; images' update of it must stay valid."""
    files = {
        "defaults.yaml": MAP,
        "images/defaults.yaml": "defaults:\n  account: images\n  share_with: [finance]\n",
        "images/2026-12.yaml": updated(),
        "finance/defaults.yaml": "defaults:\n  account: finance\n",
        "finance/a.yaml": spec(),
    }
    (warning,) = validated(tmp_path, monkeypatch, files).splitlines()
    assert warning.startswith(
        "specs/images/2026-12.yaml:3:1: updated_from: warning: names no image spec of account "
        "images: 'finance-win11'; the image spec of that name at specs/finance/a.yaml:1 is in "
        "account finance, and an image is updated in its own account; valid while image "
    ), warning
    assert warning.endswith("fix the name, or declare image 'finance-win11' in account images")


def test_the_plan_turns_a_retired_source_into_an_error_for_an_image_to_create(
    tmp_path: Path,
) -> None:
    spec_set = loaded(tmp_path, RETIRED)
    updates = [s for s in spec_set.specs if s.updated_from is not None]
    (problem,) = missing_update_source_problems(updates, spec_set.specs, "specs", to_create=True)
    assert (problem.file, problem.line, problem.column, problem.field) == (
        "specs/b.yaml",
        3,
        1,
        "updated_from",
    )
    assert problem.message == (
        "names no image spec: 'finance-win11' (did you mean 'finance-win12'?), and image "
        f"'{UPDATE}' is yet to be created; fix the name, or declare image 'finance-win11'"
    )
    assert problem.kind is ProblemKind.UNKNOWN_REFERENCE  # offline: missing-update-source
    assert missing_update_source_problems([], spec_set.specs, "specs", to_create=True) == []


def test_an_image_to_create_from_another_account_s_spec_is_unavailable(tmp_path: Path) -> None:
    files = {
        "defaults.yaml": MAP,
        "a.yaml": spec("account: images\n"),
        "b.yaml": updated("account: finance\n"),
    }
    spec_set = loaded(tmp_path, files)
    (problem,) = missing_update_source_problems(
        spec_set.specs, spec_set.specs, "specs", to_create=True
    )
    assert problem.kind is ProblemKind.UNAVAILABLE_REFERENCE
    assert "is in account images, and an image is updated in its own account" in problem.message


def test_an_updated_image_naming_an_invalid_spec_gets_no_warning(tmp_path: Path) -> None:
    files = {"a.yaml": spec("region: Europe\n"), "b.yaml": updated()}
    write_tree(tmp_path / "specs", files)
    outcome = invoke(["validate", str(tmp_path / "specs")])
    assert outcome.exit_code == 1
    assert "updated_from" not in outcome.stderr, outcome.stderr


# ---------------------------------------------------------------------------------------
# Regions: what only the default region settles
# ---------------------------------------------------------------------------------------

DEFAULT = "the default region (--region, AWS_REGION or AWS config)"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.yaml": spec("region: eu-west-1\n"), "b.yaml": updated()},
            f"has no region, and image '{NAME}' is declared for eu-west-1 (specs/a.yaml:1); "
            f"an updated image is made in its source's region, so plan stops unless {DEFAULT} "
            "is eu-west-1: give this spec region: eu-west-1",
        ),
        (
            {"a.yaml": spec(), "b.yaml": updated("region: eu-west-1\n")},
            f"names image '{NAME}', which has no region (specs/a.yaml:1); an updated image is "
            f"made in its source's region, so plan stops unless {DEFAULT} is eu-west-1: give "
            "that spec region: eu-west-1",
        ),
    ],
    ids=["the-updated-image-without-region", "its-source-without-region"],
)
def test_one_region_unset_validates_with_a_warning(
    files: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (warning,) = validated(tmp_path, monkeypatch, files).splitlines()
    assert warning == f"specs/b.yaml:3:1: updated_from: warning: {message}"
    (loaded_warning,) = load_specs(tmp_path / "specs").warnings
    assert loaded_warning.kind is ProblemKind.UNSETTLED_REGION


@pytest.mark.parametrize(
    "files",
    [
        {"a.yaml": spec(), "b.yaml": updated()},
        {
            "defaults.yaml": DEFAULTS_OK,
            "a.yaml": spec(),
            "b.yaml": updated(),
        },
        {"a.yaml": spec("region: eu-west-1\n"), "b.yaml": updated("region: eu-west-1\n")},
    ],
    ids=["both-without-region", "both-from-the-defaults", "both-written"],
)
def test_no_warning_when_the_two_regions_are_one(files: dict[str, str], tmp_path: Path) -> None:
    assert loaded(tmp_path, files).warnings == ()


def test_the_plan_checks_the_region_once_the_default_is_known(tmp_path: Path) -> None:
    spec_set = loaded(tmp_path, {"a.yaml": spec("region: eu-west-1\n"), "b.yaml": updated()})
    assert plan_time_problems(spec_set, default_region="eu-west-1", shown_root="specs") == []
    (problem,) = plan_time_problems(spec_set, default_region="us-east-1", shown_root="specs")
    assert (problem.file, problem.line, problem.field) == ("specs/b.yaml", 3, "updated_from")
    assert problem.message.startswith(
        f"image '{NAME}' is not in us-east-1, {DEFAULT}, this image's region "
        "(specs/a.yaml:1: eu-west-1)"
    ), problem.message
    assert problem.kind is ProblemKind.UNAVAILABLE_REFERENCE


def test_the_plan_checks_a_source_without_region_too(tmp_path: Path) -> None:
    spec_set = loaded(tmp_path, {"a.yaml": spec(), "b.yaml": updated("region: eu-west-1\n")})
    assert plan_time_problems(spec_set, default_region="eu-west-1", shown_root="specs") == []
    (problem,) = plan_time_problems(spec_set, default_region="us-east-1", shown_root="specs")
    assert "(specs/a.yaml:1: us-east-1, the default region)" in problem.message
