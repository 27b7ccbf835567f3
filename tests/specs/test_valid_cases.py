"""Valid edge cases of the spec format: `reconciler validate` accepts them (exit 0).

Where the result matters beyond "valid" (defaults, tags, regions), `load_specs` is called
directly and the resolved `Spec` values are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan import FORMAT_VERSION
from reconciler.specs import BundleSpec, Spec, SpecSet, load_specs

REPO = Path(__file__).resolve().parents[2]


def spec(extra: str = "", *, name: str = "finance-win11", workspace: str = "ws-0a1b2c3d4") -> str:
    return f"name: {name}\ndescription: Finance image\nsource_workspace_id: {workspace}\n" + extra


def bundle(extra: str = "", *, name: str = "finance-standard", image: str = "finance-win11") -> str:
    """A bundle spec naming an image spec (`image: wsi-...` lines name an id instead)."""
    source = f"image_id: {image}" if image.startswith("wsi-") else f"image: {image}"
    return (
        f"kind: bundle\nname: {name}\ndescription: Finance standard desktop\n{source}\n"
        "compute_type: STANDARD\nuser_volume_gib: 50\n" + extra
    )


def write_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def validate(specs_dir: Path, *args: str) -> tuple[int, str, str]:
    """`reconciler validate` in-process; the exit code is the command's return value, as in
    the console script (`reconciler.cli:main` runs the group with standalone_mode=False)."""
    result = CliRunner().invoke(cli, ["validate", str(specs_dir), *args], standalone_mode=False)
    assert result.exception is None, repr(result.exception)
    return result.return_value, result.stdout, result.stderr


def tags(count: int) -> str:
    return "tags:\n" + "".join(f"  key{i}: value {i}\n" for i in range(count))


VALID = {
    "name-with-parens-slash-dot-backslash": {
        "a.yaml": spec(name=r"'eng-build(win)/v2.1\x64_final'"),
    },
    "name-of-64-chars": {"a.yaml": spec(name="n" * 64)},
    "description-of-256-chars": {
        "a.yaml": "name: a\ndescription: " + "d" * 256 + "\nsource_workspace_id: ws-0a1b2c3d4\n"
    },
    "description-with-parens-and-slash": {
        "a.yaml": "name: a\ndescription: Build agent (Windows) v2/x_y.z\n"
        "source_workspace_id: ws-0a1b2c3d4\n"
    },
    "workspace-id-63-chars": {"a.yaml": spec(workspace="ws-" + "0a" * 31 + "b")},
    "quoted-numeric-tag-values": {
        "a.yaml": spec("tags:\n  cost-center: \"4410\"\n  version: '1.10'\n  backup: 'yes'\n")
    },
    "quoted-date-and-null-strings": {
        "a.yaml": spec("tags:\n  created: '2026-11-27'\n  note: 'null'\n  empty: ''\n")
    },
    "unicode-letters-in-tag-values": {
        "a.yaml": spec("tags:\n  site: Zürich\n  office: 東京\n  city: Reykjavík\n")
    },
    "unicode-letters-in-tag-keys": {"a.yaml": spec("tags:\n  Standort: Zürich\n  部署: 経理\n")},
    "tag-allowed-punctuation": {
        "a.yaml": spec("tags:\n  'team:sub/x=y+z-w@v.u_t': 'a b:c/d=e+f-g@h.i_j'\n")
    },
    "managed-by-tags-stay-free": {
        "a.yaml": spec("tags:\n  managed-by: gitops\n  ManagedBy: platform\n")
    },
    "tag-key-127-value-255": {"a.yaml": spec(f"tags:\n  {'k' * 127}: {'v' * 255}\n")},
    "exactly-49-declared-tags": {"a.yaml": spec(tags(49))},
    "49-tags-after-merging-defaults": {
        "defaults.yaml": "defaults:\n  tags:\n" + "".join(f"    d{i}: v\n" for i in range(40)),
        "a.yaml": spec("tags:\n" + "".join(f"  s{i}: v\n" for i in range(9))),
    },
    "spec-tag-overriding-default-does-not-count-twice": {
        "defaults.yaml": "defaults:\n  tags:\n" + "".join(f"    k{i}: d\n" for i in range(49)),
        "a.yaml": spec("tags:\n  k0: mine\n"),
    },
    "empty-tags-mapping": {"a.yaml": spec("tags: {}\n")},
    "null-tags-is-no-tags": {"a.yaml": spec("tags:\n")},
    "yaml-merge-key-with-anchor": {
        "a.yaml": "<<: &common\n  description: Finance image\n  source_workspace_id: ws-0a1b2c3d4\n"
        "name: finance-win11\n"
    },
    "yml-extension": {"a.yml": spec()},
    "several-documents-in-one-file": {
        "a.yaml": spec() + "---\n" + spec(name="finance-win10") + "...\n"
    },
    "leading-document-marker-and-comments": {"a.yaml": "# header\n---\n" + spec() + "# end\n"},
    "utf8-bom": {"a.yaml": "\ufeff" + spec()},
    "crlf-line-endings": {"a.yaml": spec("tags:\n  team: finance\n").replace("\n", "\r\n")},
    "no-region-anywhere": {"a.yaml": spec()},
    "same-name-in-two-regions": {
        "eu.yaml": spec("region: eu-west-1\n"),
        "us.yaml": spec("region: us-east-1\n"),
    },
    "same-name-in-two-regions-from-defaults": {
        "eu/defaults.yaml": "defaults:\n  region: eu-west-1\n",
        "eu/a.yaml": spec(),
        "us/defaults.yaml": "defaults:\n  region: us-east-1\n",
        "us/a.yaml": spec(),
    },
    "defaults-with-every-field": {
        "defaults.yaml": "defaults:\n  region: eu-west-1\n  tags: {owner: platform-team}\n"
        "  ignore_tag_keys: [aws-cost-allocation]\n  ignore_tag_prefixes: ['finops:']\n",
        "a.yaml": spec(),
    },
    "defaults-and-spec-in-one-file": {
        "a.yaml": "defaults:\n  region: eu-west-1\n---\n" + spec(),
    },
    "hidden-folder-is-skipped": {".git/bad.yaml": "Name: x\n", "a.yaml": spec()},
    "non-yaml-files-are-ignored": {"README.md": "# specs\n", "a.json": "{", "a.yaml": spec()},
    # --- format 2 ---------------------------------------------------------------------
    "kind-image": {"a.yaml": "kind: image\n" + spec()},
    "copies-and-share-with": {
        "a.yaml": spec(
            "region: eu-west-1\ncopies: [us-east-1, ap-southeast-2]\n"
            "share_with: ['111122223333', '444455556666']\n"
        )
    },
    "share-with-empty-list": {"a.yaml": spec("share_with: []\n")},
    "copies-empty-list": {"a.yaml": spec("copies: []\n")},
    "copies-and-share-with-from-defaults": {
        "defaults.yaml": "defaults:\n  region: eu-west-1\n  copies: [us-east-1]\n"
        "  share_with: ['111122223333']\n",
        "a.yaml": spec(),
    },
    "same-name-in-own-region-and-copies-of-others": {
        "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
        "b.yaml": spec("region: ap-south-1\ncopies: [ap-southeast-2]\n"),
    },
    "copies-without-region-anywhere": {"a.yaml": spec("copies: [us-east-1]\n")},
    "bundle-with-image": {"a.yaml": spec() + "---\n" + bundle()},
    "bundle-with-image-id-only": {"a.yaml": bundle(image="wsi-0a1b2c3d4e")},
    "bundle-every-field": {
        "a.yaml": spec("region: eu-west-1\n")
        + "---\n"
        + bundle("root_volume_gib: 80\nregion: eu-west-1\ntags: {team: finance}\n")
    },
    "bundle-volume-bounds": {
        "a.yaml": spec()
        + "---\n"
        + bundle("root_volume_gib: 2000\n").replace("user_volume_gib: 50", "user_volume_gib: 10")
        + "---\n"
        + bundle(name="big").replace("user_volume_gib: 50", "user_volume_gib: 2000")
    },
    "bundle-description-of-255-chars": {
        "a.yaml": spec() + "---\n" + bundle().replace("Finance standard desktop", "d" * 255)
    },
    "bundle-in-a-copy-region": {
        "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n")
        + "---\n"
        + bundle("region: us-east-1\n")
    },
    "bundle-in-a-region-known-only-at-plan-time": {
        "a.yaml": spec("region: eu-west-1\n") + "---\n" + bundle()
    },
    "bundle-image-without-region-known-only-at-plan-time": {
        "a.yaml": spec() + "---\n" + bundle("region: ap-south-1\n")
    },
    "bundle-image-in-one-of-two-specs-regions": {
        "eu.yaml": spec("region: eu-west-1\n"),
        "us.yaml": spec("region: us-east-1\n") + "---\n" + bundle("region: us-east-1\n"),
    },
    "bundle-same-name-in-two-regions": {
        "a.yaml": bundle("region: eu-west-1\n", image="wsi-0a1b2c3d4e")
        + "---\n"
        + bundle("region: us-east-1\n", image="wsi-0a1b2c3d4e")
    },
    "bundle-and-image-share-a-name": {
        "a.yaml": spec() + "---\n" + bundle(name="finance-win11"),
    },
    "long-standing-compute-type-names": {
        "a.yaml": spec()
        + "".join(
            "---\n" + bundle(name=f"b{i}").replace("STANDARD", compute)
            for i, compute in enumerate(["VALUE", "POWERPRO", "GRAPHICS_G4DN", "GRAPHICSPRO"])
        )
    },
}


@pytest.mark.parametrize("files", list(VALID.values()), ids=list(VALID))
def test_valid_case_is_accepted(files: dict[str, str], tmp_path: Path) -> None:
    specs_dir = write_tree(tmp_path / "specs", files)
    code, stdout, stderr = validate(specs_dir)
    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert "Success!" in stdout


def test_valid_json_format_prints_a_document_without_problems(tmp_path: Path) -> None:
    specs_dir = write_tree(tmp_path / "specs", {"a.yaml": spec()})
    code, stdout, _ = validate(specs_dir, "--format", "json")
    assert code == 0
    assert json.loads(stdout) == {"format_version": FORMAT_VERSION, "problems": [], "warnings": []}


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    specs_dir = write_tree(tmp_path / "specs", {"a.yaml": spec()})
    code, stdout, stderr = validate(specs_dir, "-q")
    assert (code, stdout, stderr) == (0, "", "")


def test_the_repository_example_specs_validate() -> None:
    code, _, stderr = validate(REPO / "specs")
    assert code == 0, stderr
    spec_set = load_specs(REPO / "specs")
    assert len(spec_set.specs) >= 3
    assert len({Path(s.file).parent for s in spec_set.specs}) >= 2


@pytest.mark.parametrize("layout", ["empty", "only-defaults", "only-other-files"])
def test_folder_without_specs_is_accepted_with_allow_empty(layout: str, tmp_path: Path) -> None:
    files = {
        "empty": {},
        "only-defaults": {"defaults.yaml": "defaults:\n  region: eu-west-1\n"},
        "only-other-files": {"README.md": "retired\n"},
    }[layout]
    specs_dir = write_tree(tmp_path / "specs", files)
    code, _, stderr = validate(specs_dir, "--allow-empty")
    assert code == 0, stderr
    assert load_specs(specs_dir, allow_empty=True).specs == ()
    code, _, stderr = validate(specs_dir)
    assert code == 1
    assert "--allow-empty" in stderr


# ---------------------------------------------------------------------------------------
# What the loader resolves: defaults by folder, regions, tags
# ---------------------------------------------------------------------------------------

NESTED = {
    "defaults.yaml": "defaults:\n  region: eu-west-1\n"
    "  tags: {owner: platform, team: root, level: root}\n"
    "  ignore_tag_keys: [aws-cost-allocation]\n  ignore_tag_prefixes: ['finops:']\n",
    "top.yaml": spec(name="top"),
    "finance/defaults.yaml": "defaults:\n  region: us-east-1\n"
    "  tags: {team: finance, level: finance}\n"
    "  ignore_tag_keys: [backup-plan]\n  ignore_tag_prefixes: ['finops:', 'sec:']\n",
    "finance/images.yaml": spec(name="fin"),
    "finance/emea/defaults.yaml": "defaults:\n  tags: {level: emea, site: Zürich}\n",
    "finance/emea/images.yaml": spec("tags:\n  level: spec\n", name="fin-emea")
    + "---\n"
    + spec("region: eu-central-1\n", name="fin-emea-frankfurt"),
    "engineering/images.yaml": spec("tags:\n  team: engineering\n", name="eng"),
}


@pytest.fixture
def nested(tmp_path: Path) -> dict[str, Spec]:
    spec_set = load_specs(write_tree(tmp_path / "specs", NESTED))
    assert isinstance(spec_set, SpecSet)
    assert all(isinstance(s, Spec) for s in spec_set.specs)
    assert spec_set.digest.startswith("sha256:")
    return {s.name: s for s in spec_set.specs}


def test_root_defaults_apply_to_root_specs(nested: dict[str, Spec]) -> None:
    top = nested["top"]
    assert top.region == "eu-west-1"
    assert dict(top.tags) == {"owner": "platform", "team": "root", "level": "root"}
    assert top.ignore_tag_keys == frozenset({"aws-cost-allocation"})
    assert top.ignore_tag_prefixes == ("finops:",)
    assert (top.file, top.line) == ("top.yaml", 1)


def test_nearest_folder_region_wins(nested: dict[str, Spec]) -> None:
    assert nested["fin"].region == "us-east-1"
    # finance/emea/defaults.yaml names no region: the nearest folder that does wins
    assert nested["fin-emea"].region == "us-east-1"
    assert nested["eng"].region == "eu-west-1"


def test_a_spec_region_beats_every_default(nested: dict[str, Spec]) -> None:
    assert nested["fin-emea-frankfurt"].region == "eu-central-1"


def test_tags_merge_spec_over_folder_over_parents(nested: dict[str, Spec]) -> None:
    assert dict(nested["fin"].tags) == {"owner": "platform", "team": "finance", "level": "finance"}
    assert dict(nested["fin-emea"].tags) == {
        "owner": "platform",
        "team": "finance",
        "level": "spec",
        "site": "Zürich",
    }
    assert dict(nested["eng"].tags) == {"owner": "platform", "team": "engineering", "level": "root"}


def test_ignore_lists_accumulate_down_the_folders(nested: dict[str, Spec]) -> None:
    fin = nested["fin-emea"]
    assert fin.ignore_tag_keys == frozenset({"aws-cost-allocation", "backup-plan"})
    assert fin.ignore_tag_prefixes == ("finops:", "sec:")
    assert fin.ignores("finops:budget")
    assert fin.ignores("backup-plan")
    assert not fin.ignores("team")


def test_spec_file_and_line_are_relative_and_point_at_the_document(
    nested: dict[str, Spec],
) -> None:
    assert (nested["fin-emea"].file, nested["fin-emea"].line) == ("finance/emea/images.yaml", 1)
    frankfurt = nested["fin-emea-frankfurt"]
    assert (frankfurt.file, frankfurt.line) == ("finance/emea/images.yaml", 7)


def test_a_spec_with_no_region_anywhere_has_none(tmp_path: Path) -> None:
    spec_set = load_specs(write_tree(tmp_path / "specs", {"a.yaml": spec("tags:\n  t: v\n")}))
    (only,) = spec_set.specs
    assert only.region is None
    assert dict(only.tags) == {"t": "v"}


def test_null_tags_resolve_to_no_tags(tmp_path: Path) -> None:
    (only,) = load_specs(write_tree(tmp_path / "specs", {"a.yaml": spec("tags:\n")})).specs
    assert dict(only.tags) == {}


def test_quoted_values_stay_strings(tmp_path: Path) -> None:
    files = {"a.yaml": spec("tags:\n  cost-center: '4410'\n  version: \"1.10\"\n  b: 'yes'\n")}
    (only,) = load_specs(write_tree(tmp_path / "specs", files)).specs
    assert dict(only.tags) == {"cost-center": "4410", "version": "1.10", "b": "yes"}


def test_merge_key_fills_in_fields_and_explicit_keys_win(tmp_path: Path) -> None:
    files = {
        "a.yaml": "<<: &common\n  description: Finance image\n  source_workspace_id: ws-0a1b2c3d4\n"
        "  name: from-anchor\n"
        "name: explicit\n"
        "tags:\n  <<: {team: finance, owner: x}\n  owner: platform\n"
    }
    (only,) = load_specs(write_tree(tmp_path / "specs", files)).specs
    assert only.name == "explicit"
    assert only.description == "Finance image"
    assert only.source_workspace_id == "ws-0a1b2c3d4"
    assert dict(only.tags) == {"team": "finance", "owner": "platform"}


def test_digest_changes_when_a_spec_changes(tmp_path: Path) -> None:
    specs_dir = write_tree(tmp_path / "specs", {"a.yaml": spec()})
    first = load_specs(specs_dir).digest
    assert load_specs(specs_dir).digest == first
    (specs_dir / "a.yaml").write_text(spec("tags:\n  t: v\n"))
    assert load_specs(specs_dir).digest != first


# ---------------------------------------------------------------------------------------
# Format 2: copies, sharing and bundles, resolved
# ---------------------------------------------------------------------------------------

FORMAT_2 = {
    "defaults.yaml": "defaults:\n  region: eu-west-1\n  copies: [us-east-1, ap-southeast-2]\n"
    "  share_with: ['111122223333']\n  tags: {owner: platform}\n"
    "  ignore_tag_prefixes: ['finops:']\n",
    "inherits.yaml": spec(name="inherits"),
    "own-lists.yaml": "# replaces both lists\n"
    + spec("copies: [eu-central-1]\nshare_with: ['444455556666']\n", name="own-lists"),
    "no-sharing.yaml": spec("copies: []\nshare_with: []\n", name="no-sharing"),
    "team/defaults.yaml": "defaults:\n  copies: [us-west-2]\n  tags: {team: t}\n",
    "team/nearest.yaml": spec(name="nearest"),
    "team/bundles.yaml": bundle(image="inherits")
    + "---\n"
    + bundle("region: us-east-1\n", name="by-id", image="wsi-0a1b2c3d4e"),
}


@pytest.fixture
def format_2(tmp_path: Path) -> SpecSet:
    return load_specs(write_tree(tmp_path / "specs", FORMAT_2))


def by_name(spec_set: SpecSet) -> dict[str, Spec]:
    return {s.name: s for s in spec_set.specs}


def test_copies_and_sharing_come_from_the_defaults(format_2: SpecSet) -> None:
    inherits = by_name(format_2)["inherits"]
    assert inherits.copies == ("us-east-1", "ap-southeast-2")
    assert inherits.share_with == ("111122223333",)
    assert (inherits.copies_file, inherits.copies_line) == ("defaults.yaml", 3)


def test_a_spec_list_replaces_the_defaults_list(format_2: SpecSet) -> None:
    own = by_name(format_2)["own-lists"]
    assert own.copies == ("eu-central-1",)
    assert own.share_with == ("444455556666",)
    assert (own.copies_file, own.copies_line) == ("own-lists.yaml", 5)


def test_empty_lists_replace_the_defaults_lists(format_2: SpecSet) -> None:
    none = by_name(format_2)["no-sharing"]
    assert none.copies == ()
    assert none.share_with == ()  # managed: shared with no account
    assert (none.copies_file, none.copies_line) == ("no-sharing.yaml", 4)


def test_the_nearest_folder_copies_list_wins_and_sharing_still_inherits(
    format_2: SpecSet,
) -> None:
    nearest = by_name(format_2)["nearest"]
    assert nearest.copies == ("us-west-2",)
    assert (nearest.copies_file, nearest.copies_line) == ("team/defaults.yaml", 2)
    assert nearest.share_with == ("111122223333",)
    assert nearest.region == "eu-west-1"


def test_without_share_with_anywhere_sharing_is_not_managed(tmp_path: Path) -> None:
    (only,) = load_specs(write_tree(tmp_path / "specs", {"a.yaml": spec()})).specs
    assert only.share_with is None
    assert only.copies == ()
    assert (only.copies_file, only.copies_line) == ("", 0)


def test_bundles_are_read_in_file_order_with_their_defaults(format_2: SpecSet) -> None:
    first, second = format_2.bundles
    assert all(isinstance(b, BundleSpec) for b in format_2.bundles)
    assert first == BundleSpec(
        name="finance-standard",
        description="Finance standard desktop",
        image="inherits",
        image_id=None,
        compute_type="STANDARD",
        user_volume_gib=50,
        root_volume_gib=None,
        region="eu-west-1",
        tags={"owner": "platform", "team": "t"},
        ignore_tag_keys=frozenset(),
        ignore_tag_prefixes=("finops:",),
        file="team/bundles.yaml",
        line=1,
        image_line=4,
    )
    assert (second.name, second.image, second.image_id) == ("by-id", None, "wsi-0a1b2c3d4e")
    assert (second.region, second.line, second.image_line) == ("us-east-1", 8, 11)
    assert second.ignores("finops:budget")
    assert not second.ignores("team")


def test_bundles_are_not_image_specs(format_2: SpecSet) -> None:
    assert {s.name for s in format_2.specs} == {"inherits", "own-lists", "no-sharing", "nearest"}


def test_a_folder_with_only_a_bundle_spec_is_not_empty(tmp_path: Path) -> None:
    specs_dir = write_tree(tmp_path / "specs", {"a.yaml": bundle(image="wsi-0a1b2c3d4e")})
    spec_set = load_specs(specs_dir)
    assert spec_set.specs == ()
    assert len(spec_set.bundles) == 1
    code, _, stderr = validate(specs_dir)
    assert code == 0, stderr


def test_root_volume_and_kind_image_resolve(tmp_path: Path) -> None:
    files = {
        "a.yaml": "kind: image\n"
        + spec("region: eu-west-1\n")
        + "---\n"
        + bundle("root_volume_gib: 175\nregion: eu-west-1\n")
    }
    spec_set = load_specs(write_tree(tmp_path / "specs", files))
    assert [s.name for s in spec_set.specs] == ["finance-win11"]
    (only,) = spec_set.bundles
    assert (only.root_volume_gib, only.user_volume_gib) == (175, 50)


def test_a_copy_region_shared_by_a_spec_without_region_is_a_warning(tmp_path: Path) -> None:
    files = {
        "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
        "b.yaml": spec(),
    }
    spec_set = load_specs(write_tree(tmp_path / "specs", files), shown_root="specs")
    # b.yaml's image is a.yaml's when the default region is either of a.yaml's regions
    assert {(w.file, w.line, w.field) for w in spec_set.warnings} == {("specs/b.yaml", 1, "name")}
    messages = sorted(w.message for w in spec_set.warnings)
    assert len(messages) == 2
    assert "is copied to us-east-1 by the spec at specs/a.yaml:1" in messages[0]
    assert "default region (--region, AWS_REGION or AWS config) is us-east-1" in messages[0]
    assert "is declared for eu-west-1 at specs/a.yaml:1" in messages[1]


def test_a_bundle_name_with_and_without_region_is_a_warning(tmp_path: Path) -> None:
    files = {
        "a.yaml": bundle("region: us-east-1\n", image="wsi-0a1b2c3d4e"),
        "b.yaml": bundle(image="wsi-0a1b2c3d4e"),
    }
    spec_set = load_specs(write_tree(tmp_path / "specs", files), shown_root="specs")
    (warning,) = spec_set.warnings
    assert (warning.file, warning.line, warning.field) == ("specs/b.yaml", 1, "name")
    assert warning.message.startswith(
        "bundle 'finance-standard' has no region here and is declared for us-east-1 at "
        "specs/a.yaml:1"
    )
