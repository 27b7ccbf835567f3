"""`plan_time_problems`: the checks that wait for the default region.

`validate` runs offline, so a spec or bundle without a region can't be compared with one
that has a region. Once a plan knows the default region, the same rules apply, with file,
line and field, before any AWS call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import SpecProblem
from reconciler.specs import SpecSet, load_specs, plan_time_problems
from tests.specs.test_invalid_corpus import bundle, spec, write_tree

NAME = "finance-win11"


def problems(tmp_path: Path, files: dict[str, str], default_region: str) -> list[SpecProblem]:
    write_tree(tmp_path / "specs", dict(files))
    spec_set = load_specs(tmp_path / "specs", shown_root="specs")  # valid offline
    return plan_time_problems(spec_set, default_region=default_region, shown_root="specs")


def where(problem: SpecProblem) -> tuple[str, int, str]:
    return problem.file, problem.line, problem.field


def test_a_valid_set_has_no_plan_time_problem(tmp_path: Path) -> None:
    files = {
        "a.yaml": spec("copies: [us-east-1]\nshare_with: []\n") + "---\n" + bundle(),
        "b.yaml": bundle("region: us-east-1\n", name="us-desktops"),
    }
    assert problems(tmp_path, files, "eu-west-1") == []


def test_a_copy_to_the_default_region_of_a_spec_without_region(tmp_path: Path) -> None:
    files = {"a.yaml": spec("copies: [us-east-1, ap-south-1]\n")}
    assert problems(tmp_path, files, "eu-west-1") == []
    (problem,) = problems(tmp_path / "again", files, "us-east-1")
    assert where(problem) == ("specs/a.yaml", 4, "copies")
    assert problem.message == (
        f"lists us-east-1, the region of image '{NAME}' itself (specs/a.yaml:1, which has no "
        "region: the default region (--region, AWS_REGION or AWS config) is us-east-1); an "
        "image is not copied to its own region: remove us-east-1 from copies"
    )


def test_a_defaults_copies_list_is_reported_where_it_is_written(tmp_path: Path) -> None:
    files = {
        "team/defaults.yaml": "# the team's copies\ndefaults:\n  copies: [us-east-1]\n",
        "team/a.yaml": spec(),
    }
    (problem,) = problems(tmp_path, files, "us-east-1")
    assert where(problem) == ("specs/team/defaults.yaml", 3, "copies")
    assert "(specs/team/a.yaml:1, which has no region" in problem.message
    assert problem.message.endswith("or give that spec a copies list of its own")


def test_a_bundle_in_the_default_region_where_its_image_is_not(tmp_path: Path) -> None:
    files = {"a.yaml": spec("region: eu-west-1\ncopies: [ap-south-1]\n") + "---\n" + bundle()}
    assert problems(tmp_path, files, "ap-south-1") == []
    (problem,) = problems(tmp_path / "again", files, "us-east-1")
    assert where(problem) == ("specs/a.yaml", 10, "image")
    assert problem.message.startswith(
        f"image '{NAME}' is not in us-east-1, the default region (--region, AWS_REGION or AWS "
        "config): its spec is not in us-east-1 and does not copy to it (specs/a.yaml:1: "
        "eu-west-1, copies to ap-south-1)"
    )


def test_a_bundle_whose_image_is_in_the_default_region_elsewhere(tmp_path: Path) -> None:
    files = {"a.yaml": spec() + "---\n" + bundle("region: ap-south-1\n")}
    assert problems(tmp_path, files, "ap-south-1") == []
    (problem,) = problems(tmp_path / "again", files, "eu-west-1")
    assert where(problem) == ("specs/a.yaml", 8, "image")
    assert "(specs/a.yaml:1: eu-west-1, the default region, no copies)" in problem.message


def test_a_bundle_and_its_image_both_without_region_meet(tmp_path: Path) -> None:
    files = {"a.yaml": spec() + "---\n" + bundle()}
    assert problems(tmp_path, files, "eu-west-1") == []


def test_a_bundle_by_image_id_needs_no_image_spec(tmp_path: Path) -> None:
    files = {"a.yaml": bundle(image="image_id: wsi-0a1b2c3d4e")}
    assert problems(tmp_path, files, "eu-west-1") == []


def test_a_bundle_name_declared_twice_once_the_region_is_known(tmp_path: Path) -> None:
    files = {
        "a.yaml": bundle("region: us-east-1\n", image="image_id: wsi-0a1b2c3d4e"),
        "b.yaml": bundle(image="image_id: wsi-0a1b2c3d4e"),
    }
    assert problems(tmp_path, files, "eu-west-1") == []
    (problem,) = problems(tmp_path / "again", files, "us-east-1")
    assert where(problem) == ("specs/b.yaml", 1, "name")
    assert problem.message == (
        "bundle 'finance-standard' is declared twice for us-east-1 (also at specs/a.yaml:1); "
        "keep one or rename"
    )


@pytest.mark.parametrize(
    ("first", "second", "reported", "words"),
    [
        (
            "region: eu-west-1\ncopies: [us-east-1]\n",
            "",
            ("specs/b.yaml", 1, "name"),
            "is declared for us-east-1, where it also exists (copied there by the spec at "
            "specs/a.yaml:1); one image per name and region",
        ),
        (
            "",
            "region: eu-west-1\ncopies: [us-east-1]\n",
            ("specs/b.yaml", 5, "copies"),
            "copies image 'finance-win11' to us-east-1, where it also exists (at "
            "specs/a.yaml:1); one image per name and region",
        ),
        (
            "region: us-east-1\n",
            "",
            ("specs/b.yaml", 1, "name"),
            "image 'finance-win11' is declared twice for us-east-1 (also at specs/a.yaml:1)",
        ),
    ],
    ids=["copy-then-default", "default-then-copy", "region-then-default"],
)
def test_an_image_name_twice_in_the_default_region_counting_copies(
    tmp_path: Path, first: str, second: str, reported: tuple[str, int, str], words: str
) -> None:
    files = {"a.yaml": spec(first), "b.yaml": spec(second)}
    assert problems(tmp_path, files, "ap-south-1") == []
    (problem,) = problems(tmp_path / "again", files, "us-east-1")
    assert where(problem) == reported
    assert words in problem.message


def test_what_validate_warned_about_is_the_plan_time_problem(tmp_path: Path) -> None:
    files = {"a.yaml": bundle("region: us-east-1\n", image="image_id: wsi-0a1b2c3d4e")}
    files["b.yaml"] = bundle(image="image_id: wsi-0a1b2c3d4e")
    write_tree(tmp_path / "specs", files)
    spec_set = load_specs(tmp_path / "specs", shown_root="specs")
    (warning,) = spec_set.warnings
    (problem,) = plan_time_problems(spec_set, default_region="us-east-1", shown_root="specs")
    assert where(warning) == where(problem)


def test_every_problem_at_once_and_paths_under_the_shown_root(tmp_path: Path) -> None:
    files = {
        "a.yaml": spec("copies: [us-east-1]\n") + "---\n" + bundle("region: ap-south-1\n"),
        "b.yaml": bundle("region: us-east-1\n", name="twice", image="image_id: wsi-0a1b2c3d4e")
        + "---\n"
        + bundle(name="twice", image="image_id: wsi-0a1b2c3d4e"),
    }
    write_tree(tmp_path / "specs", files)
    spec_set = load_specs(tmp_path / "specs")
    assert isinstance(spec_set, SpecSet)
    found = plan_time_problems(spec_set, default_region="us-east-1", shown_root="./specs/")
    assert sorted(where(p) for p in found) == [
        ("./specs/a.yaml", 4, "copies"),
        ("./specs/a.yaml", 9, "image"),
        ("./specs/b.yaml", 9, "name"),
    ]
