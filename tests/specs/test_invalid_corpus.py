"""Every rule of the spec format, broken once: `reconciler validate` exits 1 and says where.

Each case is a small specs folder (relative path -> content) and one problem that must be
reported: its file, its line, its field and a piece of its message. The real CLI runs
in-process for every case, and a few cases run again as a real subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import cli

# A valid spec, one field a line: name on line 1, description 2, source_workspace_id 3.
NAME = "finance-win11"
DESCRIPTION = "Finance image"
WORKSPACE = "ws-0a1b2c3d4"


def spec(
    extra: str = "",
    *,
    name: str = NAME,
    description: str = DESCRIPTION,
    workspace: str = WORKSPACE,
) -> str:
    """A spec document; `extra` lines start at line 4."""
    return f"name: {name}\ndescription: {description}\nsource_workspace_id: {workspace}\n" + extra


def bundle(
    extra: str = "",
    *,
    name: str = "finance-standard",
    image: str = f"image: {NAME}",
    description: str = "Finance standard desktop",
) -> str:
    """A bundle spec document: kind 1, name 2, description 3, image 4, compute_type 5,
    user_volume_gib 6; `extra` lines start at line 7."""
    return (
        f"kind: bundle\nname: {name}\ndescription: {description}\n{image}\n"
        "compute_type: STANDARD\nuser_volume_gib: 50\n" + extra
    )


def bundle_with(field: str, value: str) -> str:
    """A bundle spec whose `field` line holds `value` (the line keeps its place)."""
    lines = bundle().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{field}:"))
    lines[index] = f"{field}: {value}\n"
    return "".join(lines)


def tag_lines(count: int, prefix: str = "k", indent: str = "  ") -> str:
    return "".join(f"{indent}{prefix}{i}: v{i}\n" for i in range(count))


@dataclass(frozen=True)
class Link:
    """A symlink to create, with a target relative to the link's folder."""

    target: str


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes | Link]
    file: str  # relative to the specs folder; "" for the folder itself
    line: int
    field: str
    message: str
    outside: dict[str, str] = field(default_factory=dict)  # written beside the specs folder
    specs_dir: str = "specs"
    column: int | None = None  # checked when given


def write_tree(root: Path, files: dict[str, str | bytes | Link]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def make_case(tmp_path: Path, case: Case) -> str:
    """Write the case under tmp_path; returns the SPECS_DIR argument (relative to tmp_path)."""
    if case.files:
        (tmp_path / "specs").mkdir()
        write_tree(tmp_path / "specs", case.files)
    elif case.specs_dir == "specs":
        (tmp_path / "specs").mkdir()
    write_tree(tmp_path, case.outside)
    return case.specs_dir


def shown(case: Case) -> str:
    return f"{case.specs_dir}/{case.file}" if case.file else case.specs_dir


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def invoke(args: list[str]) -> Outcome:
    """Run `reconciler ARGS` in-process, as the console script does.

    The console script (`reconciler.cli:main`) runs the click group with
    `standalone_mode=False` and turns the command's return value into the exit code, so
    the same is done here. See test_click_standalone_exit_code for the plain invocation.
    """
    result = CliRunner().invoke(cli, args, standalone_mode=False)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        code = 1
    else:
        code = result.return_value if isinstance(result.return_value, int) else result.exit_code
    return Outcome(code, result.stdout, result.stderr, result.exception)


def problem_lines(stderr: str) -> list[str]:
    pattern = r"^[^:\s][^:]*(:\d+:\d+)?: "  # folder-level problems carry no line
    return [line for line in stderr.splitlines() if re.match(pattern, line)]


def assert_reported(case: Case, outcome: Outcome) -> None:
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), (
        f"unexpected {outcome.exception!r}"
    )
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.exit_code == 1, outcome.stderr
    where = f"{shown(case)}:{case.line}:" if case.line else f"{shown(case)}: "
    if case.column is not None:
        where += f"{case.column}:"
    matching = [line for line in problem_lines(outcome.stderr) if line.startswith(where)]
    assert matching, f"no problem at {where} in:\n{outcome.stderr}"
    with_field = [line for line in matching if f": {case.field}: " in line]
    assert with_field, f"no field {case.field!r} at {where} in:\n{outcome.stderr}"
    assert any(case.message in line for line in with_field), (
        f"no {case.message!r} in:\n{outcome.stderr}"
    )


# ---------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------

DEFAULTS_OK = "defaults:\n  region: eu-west-1\n"

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)

REGION_FIELD_BUG = (
    "an invalid region is reported under the field 'region.constrained-str' (plus a second, "
    "spurious 'region.none: Input should be None'), and the message says only 'expected a "
    "valid value': the Region | None union leaks pydantic's union branch names"
)
DEFAULTS_PATH_BUG = (
    "a second defaults document is reported at 'more.yaml', relative to the specs folder, "
    "not at 'specs/more.yaml' like every other problem (load.py _add_defaults does not "
    "join the shown root), so editors and CI annotations cannot link to it"
)
CONTROL_CHAR_BUG = (
    "a control character is reported at 1:1 whatever its line, and the message spans two "
    "lines ('in \"<unicode string>\", position N'), breaking the one-problem-a-line format"
)
BROKEN_LINK_BUG = (
    "a dangling symlink inside the specs folder crashes the loader with FileNotFoundError "
    "(path.read_bytes) instead of being reported as a problem of that file"
)
UNCLOSED_QUOTE_BUG = (
    "an unclosed quote is reported at the end of the file ('found unexpected end of "
    "stream'); the parser's context mark with the line of the opening quote is dropped"
)


TABS = "YAML forbids tabs for indentation: indent with spaces"
IGNORED = "is declared here but ignored by the"


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=reason, strict=True)


OWN_REGION = "an image is not copied to its own region"
ONE_PER_REGION = "one image per name and region"

# Format 2: copies, share_with and bundle specs.
FORMAT_2_CASES = [
    # --- kind -------------------------------------------------------------------------
    pytest.param(
        Case({"a.yaml": "kind: bundel\n" + spec()}, "a.yaml", 1, "kind", "did you mean 'bundle'"),
        id="kind-misspelt",
    ),
    pytest.param(
        Case({"a.yaml": "kind: Image\n" + spec()}, "a.yaml", 1, "kind", "did you mean 'image'"),
        id="kind-wrong-case",
    ),
    pytest.param(
        Case(
            {"a.yaml": "kind: workspace\n" + spec()},
            "a.yaml",
            1,
            "kind",
            "unknown kind 'workspace'; write kind: image (the default) or kind: bundle",
        ),
        id="kind-unknown",
    ),
    pytest.param(
        Case({"a.yaml": "kind: 1\n" + spec()}, "a.yaml", 1, "kind", "expected image or bundle"),
        id="kind-a-number",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("compute_type: STANDARD\n")},
            "a.yaml",
            4,
            "compute_type",
            "unknown field 'compute_type' for an image spec; a bundle spec starts with "
            "'kind: bundle'",
        ),
        id="bundle-field-in-an-image-spec",
    ),
    # --- copies -----------------------------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": spec("region: eu-west-1\ncopies: [us-east-1, eu-west-1]\n")},
            "a.yaml",
            5,
            "copies",
            f"lists eu-west-1, the region of image '{NAME}' itself (specs/a.yaml:1); {OWN_REGION}",
        ),
        id="copies-own-region",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  region: eu-west-1\n  copies:\n    - eu-west-1\n",
                "a.yaml": spec(),
            },
            "defaults.yaml",
            3,
            "copies",
            "or give that spec a copies list of its own",
        ),
        id="copies-own-region-both-from-defaults",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  copies: [us-east-1]\n",
                "a.yaml": spec("region: us-east-1\n"),
            },
            "defaults.yaml",
            2,
            "copies",
            f"(specs/a.yaml:1); {OWN_REGION}: remove us-east-1 from copies, or give that spec",
        ),
        id="copies-from-defaults-name-the-spec-region",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("copies:\n  - us-east-1\n  - ap-south-1\n  - us-east-1\n")},
            "a.yaml",
            7,
            "copies.2",
            "region 'us-east-1' is listed twice (first at line 5); keep one",
        ),
        id="copies-region-twice",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n  copies: [us-east-1, us-east-1]\n", "a.yaml": spec()},
            "defaults.yaml",
            2,
            "defaults.copies.1",
            "listed twice",
        ),
        id="defaults-copies-region-twice",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("copies: [US-East-1]\n")},
            "a.yaml",
            4,
            "copies.0",
            "expected an AWS region code",
        ),
        id="copies-bad-region",
    ),
    pytest.param(
        Case({"a.yaml": spec("copies: us-east-1\n")}, "a.yaml", 4, "copies", "expected a list"),
        id="copies-not-a-list",
    ),
    pytest.param(
        Case({"a.yaml": spec("copies:\n")}, "a.yaml", 4, "copies", "write [] for no copies"),
        id="copies-null",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("copies: [{region: us-east-1}, {region: us-east-1}]\n")},
            "a.yaml",
            4,
            "copies.1",
            "expected a string, got a mapping",
        ),
        id="copies-entries-are-mappings",
    ),
    # --- one image per name and region, counting copies -------------------------------
    pytest.param(
        Case(
            {
                "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
                "b.yaml": spec("region: us-east-1\n"),
            },
            "b.yaml",
            1,
            "name",
            f"image '{NAME}' is declared for us-east-1, where it also exists (copied there by "
            f"the spec at specs/a.yaml:1); {ONE_PER_REGION}",
        ),
        id="image-declared-where-another-spec-copies-it",
    ),
    pytest.param(
        Case(
            {
                "a.yaml": spec("region: us-east-1\n"),
                "b.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
            },
            "b.yaml",
            5,
            "copies",
            f"copies image '{NAME}' to us-east-1, where it also exists (at specs/a.yaml:1); "
            f"{ONE_PER_REGION}: remove us-east-1 from copies",
        ),
        id="image-copied-where-another-spec-declares-it",
    ),
    pytest.param(
        Case(
            {
                "eu/defaults.yaml": "defaults:\n  copies: [us-east-1]\n",
                "eu/a.yaml": spec("region: eu-west-1\n"),
                "eu/b.yaml": spec("region: ap-south-1\n"),
            },
            "eu/defaults.yaml",
            2,
            "copies",
            f"copies image '{NAME}' (the spec at specs/eu/b.yaml:1) to us-east-1, where it "
            "also exists (copied there by the spec at specs/eu/a.yaml:1)",
        ),
        id="two-specs-copy-one-name-to-one-region",
    ),
    pytest.param(
        Case(
            {
                "a.yaml": spec("copies: [us-east-1]\n"),
                "b.yaml": spec("region: us-east-1\n"),
            },
            "b.yaml",
            1,
            "name",
            "where it also exists (copied there by the spec at specs/a.yaml:1)",
        ),
        id="copy-of-a-spec-without-region-collides",
    ),
    # --- share_with -------------------------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": spec("share_with: ['11112222333']\n")},
            "a.yaml",
            4,
            "share_with.0",
            "'11112222333' is not valid: expected a 12-digit AWS account id",
        ),
        id="share_with-11-digits",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("share_with: ['1111-2222-3333']\n")},
            "a.yaml",
            4,
            "share_with.0",
            "12-digit",
        ),
        id="share_with-account-with-dashes",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("share_with:\n  - 111122223333\n")},
            "a.yaml",
            5,
            "share_with.0",
            "111122223333 is read as a YAML number, not a string; quote it: '111122223333'",
        ),
        id="share_with-yaml-integer",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("share_with: ['111122223333', '444455556666', '111122223333']\n")},
            "a.yaml",
            4,
            "share_with.2",
            "account '111122223333' is listed twice (first at line 4); keep one",
        ),
        id="share_with-account-twice",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  share_with:\n    - '111122223333'\n"
                "    - '111122223333'\n",
                "a.yaml": spec(),
            },
            "defaults.yaml",
            4,
            "defaults.share_with.1",
            "listed twice (first at line 3)",
        ),
        id="defaults-share_with-account-twice",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("share_with:\n")},
            "a.yaml",
            4,
            "share_with",
            "write [] to share with no account, or remove the line to leave sharing unmanaged",
        ),
        id="share_with-null",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("share_with: '111122223333'\n")},
            "a.yaml",
            4,
            "share_with",
            "expected a list",
        ),
        id="share_with-not-a-list",
    ),
    # --- bundle fields ----------------------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("compute_type", "standard")},
            "a.yaml",
            9,
            "compute_type",
            "did you mean 'STANDARD'?",
        ),
        id="bundle-compute-type-lower-case",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("compute_type", "GRAPHICS G4DN")},
            "a.yaml",
            9,
            "compute_type",
            "expected a compute type name: upper-case letters, digits and _",
        ),
        id="bundle-compute-type-not-a-name",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("compute_type", "4")},
            "a.yaml",
            9,
            "compute_type",
            "expected a compute type name: upper-case letters, digits and _, such as "
            "STANDARD, got the YAML number 4",
        ),
        id="bundle-compute-type-number",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("user_volume_gib", "'50'")},
            "a.yaml",
            10,
            "user_volume_gib",
            "'50' is a string; write the number without quotes: 50",
        ),
        id="bundle-user-volume-a-string",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("user_volume_gib", "true")},
            "a.yaml",
            10,
            "user_volume_gib",
            "true is read as a YAML boolean; expected a whole number of GiB, 10-2000",
        ),
        id="bundle-user-volume-a-boolean",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("user_volume_gib", "50.5")},
            "a.yaml",
            10,
            "user_volume_gib",
            "expected a whole number of GiB, 10-2000, got the value 50.5",
        ),
        id="bundle-user-volume-a-fraction",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("user_volume_gib", "9")},
            "a.yaml",
            10,
            "user_volume_gib",
            "is 9; expected a whole number of GiB, 10-2000",
        ),
        id="bundle-user-volume-9",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle_with("user_volume_gib", "2001")},
            "a.yaml",
            10,
            "user_volume_gib",
            "is 2001",
        ),
        id="bundle-user-volume-2001",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle("root_volume_gib: 79\n")},
            "a.yaml",
            11,
            "root_volume_gib",
            "is 79; expected a whole number of GiB, 80-2000",
        ),
        id="bundle-root-volume-79",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle("root_volume_gib:\n")},
            "a.yaml",
            11,
            "root_volume_gib",
            "is empty; give a whole number of GiB (80-2000), or remove the line",
        ),
        id="bundle-root-volume-null",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle(description="d" * 256)},
            "a.yaml",
            7,
            "description",
            "expected 1-255 characters",
        ),
        id="bundle-description-256",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle(name="'finance standard'")},
            "a.yaml",
            6,
            "name",
            "not valid: expected 1-64 characters",
        ),
        id="bundle-name-with-space",
    ),
    pytest.param(
        Case(
            {"a.yaml": bundle(image="image_id: wsi-0A1B2C3D4E")},
            "a.yaml",
            4,
            "image_id",
            "expected an image id such as wsi-0a1b2c3d4e",
        ),
        id="bundle-image-id-bad",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle("compute: VALUE\n")},
            "a.yaml",
            11,
            "compute",
            "did you mean 'compute_type'",
        ),
        id="bundle-unknown-key-compute",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle("copies: [us-east-1]\n")},
            "a.yaml",
            11,
            "copies",
            "unknown field 'copies' for a bundle spec; it belongs in the image spec",
        ),
        id="bundle-with-copies",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle().replace("compute_type: STANDARD\n", "")},
            "a.yaml",
            5,
            "compute_type",
            "required",
        ),
        id="bundle-missing-compute-type",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle("image_id: wsi-0a1b2c3d4e\n")},
            "a.yaml",
            11,
            "image_id",
            "give either image (the name of an image spec) or image_id, not both",
        ),
        id="bundle-image-and-image-id",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle(image="# no image")},
            "a.yaml",
            5,
            "image",
            "required: image (the name of an image spec) or image_id",
        ),
        id="bundle-neither-image-nor-image-id",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle(image="image: finance-win10")},
            "a.yaml",
            8,
            "image",
            "names no image spec: 'finance-win10'; did you mean 'finance-win11'? give the name "
            "of an image spec, or image_id: wsi-...",
        ),
        id="bundle-image-names-no-spec",
    ),
    pytest.param(
        Case(
            {
                "a.yaml": spec("region: eu-west-1\n", description="'Finance, Windows'"),
                "b.yaml": bundle("region: us-east-1\n"),
            },
            "a.yaml",
            2,
            "description",
            "commas and colons",
        ),
        id="bundle-naming-an-invalid-image-spec",
    ),
    pytest.param(
        Case(
            {
                "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
                "b.yaml": "# the desktops\n" + bundle("region: ap-southeast-2\n"),
            },
            "b.yaml",
            5,
            "image",
            f"image '{NAME}' is not in ap-southeast-2: its spec is not in ap-southeast-2 and "
            "does not copy to it (specs/a.yaml:1: eu-west-1, copies to us-east-1); add "
            "ap-southeast-2 to the copies of its spec",
        ),
        id="bundle-region-outside-its-image-regions",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  region: eu-west-1\n  copies: [us-east-1]\n",
                "a.yaml": spec(),
                "apac/defaults.yaml": "defaults:\n  region: ap-southeast-2\n",
                "apac/b.yaml": bundle(),
            },
            "apac/b.yaml",
            4,
            "image",
            "is not in ap-southeast-2",
        ),
        id="bundle-region-outside-its-image-regions-from-defaults",
    ),
    pytest.param(
        Case(
            {
                "a.yaml": spec() + "---\n" + bundle("region: eu-west-1\n"),
                "b.yaml": bundle("region: eu-west-1\n"),
            },
            "b.yaml",
            1,
            "name",
            "bundle 'finance-standard' is declared twice for eu-west-1 (also at specs/a.yaml:5); "
            "keep one or rename",
        ),
        id="bundle-name-twice-for-one-region",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + bundle() + "---\n" + bundle()},
            "a.yaml",
            12,
            "name",
            "bundle 'finance-standard' is declared twice for the default region",
        ),
        id="bundle-name-twice-without-regions",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  ignore_tag_keys: [team]\n",
                "a.yaml": spec() + "---\n" + bundle("tags:\n  team: finance\n"),
            },
            "a.yaml",
            12,
            "tags.team",
            IGNORED,
        ),
        id="bundle-tag-ignored-by-defaults",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  tags:\n" + tag_lines(40, "d", "    "),
                "a.yaml": spec() + "---\n" + bundle("tags:\n" + tag_lines(10)),
            },
            "a.yaml",
            11,
            "tags",
            "has 50 tags with the folder defaults merged; at most 49",
        ),
        id="bundle-tags-50-with-defaults",
    ),
]


# Many accounts: the account map (root defaults), `account:` and imports (`source_image`).
# MAP's lines: accounts 3, images 4, its id 5, its role 6, finance 7, its id 8.
MAP = (
    "defaults:\n"
    "  region: eu-west-1\n"
    "  accounts:\n"
    "    images:\n"
    "      id: '111111111111'\n"
    "      role: arn:aws:iam::111111111111:role/workspaces-reconciler\n"
    "    finance:\n"
    "      id: '222222222222'\n"
)
# The images account's image, shared with finance: name 1, ..., account 4, share_with 5.
SOURCE = spec("account: images\nshare_with: [finance]\n")


def map_with(old: str, new: str) -> str:
    """MAP with one line changed (the line keeps its place)."""
    assert old in MAP
    return MAP.replace(old, new)


def imported(extra: str = "", *, source: str = "images", name: str = NAME) -> str:
    """An import into finance: name 1, description 2, account 3, source_image 4, its account
    5, its name 6; `extra` lines start at line 7 (more of source_image when indented)."""
    return (
        f"name: {NAME}\ndescription: {DESCRIPTION}\naccount: finance\n"
        f"source_image:\n  account: {source}\n  name: {name}\n" + extra
    )


def accounts_case(
    files: dict[str, str | bytes | Link], file: str, line: int, field: str, message: str, id: str
) -> Any:
    return pytest.param(Case(files, file, line, field, message), id=id)


ACCOUNT_CASES = [
    # --- the map ----------------------------------------------------------------------
    accounts_case(
        {"defaults.yaml": map_with("'111111111111'", "'11111111111'"), "a.yaml": SOURCE},
        "defaults.yaml",
        5,
        "defaults.accounts.images.id",
        "12-digit",
        "accounts-id-11-digits",
    ),
    accounts_case(
        {"defaults.yaml": map_with("'111111111111'", "111111111111"), "a.yaml": SOURCE},
        "defaults.yaml",
        5,
        "defaults.accounts.images.id",
        "quote it: '111111111111'",
        "accounts-id-unquoted",
    ),
    accounts_case(
        {"defaults.yaml": MAP + "    copy:\n      id: '222222222222'\n", "a.yaml": SOURCE},
        "defaults.yaml",
        10,
        "defaults.accounts.copy.id",
        "account id '222222222222' is also named 'finance' (line 7)",
        "accounts-two-names-one-id",
    ),
    accounts_case(
        {"defaults.yaml": map_with("iam::111111111111", "iam::333333333333"), "a.yaml": SOURCE},
        "defaults.yaml",
        6,
        "defaults.accounts.images.role",
        "the role's ARN names account 333333333333, not 111111111111",
        "accounts-role-of-another-account",
    ),
    accounts_case(
        {
            "defaults.yaml": map_with(
                "arn:aws:iam::111111111111:role/workspaces-reconciler", "workspaces-reconciler"
            ),
            "a.yaml": SOURCE,
        },
        "defaults.yaml",
        6,
        "defaults.accounts.images.role",
        "an IAM role ARN such as",
        "accounts-role-not-an-arn",
    ),
    accounts_case(
        {"defaults.yaml": map_with("      role:", "      rol:"), "a.yaml": SOURCE},
        "defaults.yaml",
        6,
        "defaults.accounts.images.rol",
        "did you mean 'role'",
        "accounts-unknown-key-rol",
    ),
    accounts_case(
        {"defaults.yaml": map_with("    images:", "    Images:"), "a.yaml": SOURCE},
        "defaults.yaml",
        4,
        "defaults.accounts.Images",
        "expected an account name",
        "accounts-name-upper-case",
    ),
    accounts_case(
        {"defaults.yaml": map_with("    images:", "    '111122223333':"), "a.yaml": spec()},
        "defaults.yaml",
        4,
        "defaults.accounts.111122223333",
        "a name is never an account id",
        "accounts-name-all-digits",
    ),
    accounts_case(
        {"defaults.yaml": MAP + "      external_id: x\n", "a.yaml": SOURCE},
        "defaults.yaml",
        9,
        "defaults.accounts.finance.external_id",
        "2-1224 characters",
        "accounts-external-id-too-short",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP + "    audit:\n      external_id: audit-2026\n",
            "a.yaml": SOURCE,
        },
        "defaults.yaml",
        10,
        "defaults.accounts.audit.id",
        "required",
        "accounts-entry-without-id",
    ),
    accounts_case(
        {"defaults.yaml": "defaults:\n  accounts:\n", "a.yaml": spec()},
        "defaults.yaml",
        2,
        "defaults.accounts",
        "is empty; name at least one account",
        "accounts-null",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "team/defaults.yaml": "defaults:\n  account: images\n  accounts:\n"
            "    audit: {id: '333333333333'}\n",
            "team/a.yaml": spec(),
        },
        "team/defaults.yaml",
        3,
        "defaults.accounts",
        "only in the specs folder's root defaults",
        "accounts-outside-the-root-defaults",
    ),
    # --- account: -----------------------------------------------------------------------
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: financ\n")},
        "a.yaml",
        4,
        "account",
        "names no account of the map: 'financ'; did you mean 'finance'?",
        "account-unknown-name",
    ),
    accounts_case(
        {"a.yaml": spec("account: finance\n")},
        "a.yaml",
        4,
        "account",
        "the specs declare no accounts: map",
        "account-without-a-map",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "team/defaults.yaml": "defaults:\n  account: imges\n",
            "team/a.yaml": spec(),
        },
        "team/defaults.yaml",
        2,
        "defaults.account",
        "did you mean 'images'?",
        "defaults-account-unknown-name",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: '222222222222'\n")},
        "a.yaml",
        4,
        "account",
        "expected the name of an account",
        "account-given-by-id",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account:\n")},
        "a.yaml",
        4,
        "account",
        "is empty; give the name of an account",
        "account-null",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": "# no account\n" + spec(name="b")},
        "b.yaml",
        2,
        "account",
        "resolves to no account: the specs declare accounts (finance, images)",
        "spec-resolving-to-no-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": bundle()},
        "b.yaml",
        1,
        "account",
        "resolves to no account",
        "bundle-resolving-to-no-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": bundle("account: finnce\n")},
        "b.yaml",
        7,
        "account",
        "did you mean 'finance'?",
        "bundle-account-unknown-name",
    ),
    # --- identity: (account, region, name) ----------------------------------------------
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": SOURCE},
        "b.yaml",
        1,
        "name",
        "declared twice for eu-west-1 of account images (also at specs/a.yaml:1)",
        "name-twice-in-one-account-and-region",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": SOURCE,
            "b.yaml": spec("account: finance\nregion: us-east-1\n")
            + "---\n"
            + spec("account: finance\ncopies: [us-east-1]\n"),
        },
        "b.yaml",
        11,
        "copies",
        ONE_PER_REGION,
        "copy-onto-a-name-of-the-same-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": bundle("account: finance\n")},
        "b.yaml",
        4,
        "image",
        "image 'finance-win11' is declared in account images "
        "(specs/a.yaml:1), not in finance, the bundle's account",
        "bundle-image-of-another-account",
    ),
    # --- share_with -----------------------------------------------------------------------
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: images\nshare_with: [images]\n")},
        "a.yaml",
        5,
        "share_with",
        "lists images (111111111111), the account that image 'finance-win11' lives in",
        "share_with-own-account-by-name",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: images\nshare_with: ['111111111111']\n")},
        "a.yaml",
        5,
        "share_with",
        "an image is not shared with its own account",
        "share_with-own-account-by-id",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP + "  share_with: [finance, images]\n",
            "a.yaml": spec("account: images\n"),
        },
        "defaults.yaml",
        9,
        "share_with",
        "lists images (111111111111)",
        "defaults-share_with-own-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: images\nshare_with: [financ]\n")},
        "a.yaml",
        5,
        "share_with.0",
        "did you mean 'finance'?",
        "share_with-unknown-name",
    ),
    accounts_case(
        {"a.yaml": spec("share_with: [finance]\n")},
        "a.yaml",
        4,
        "share_with.0",
        "the specs declare no accounts: map",
        "share_with-name-without-a-map",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": spec("account: images\nshare_with: [finance, '222222222222']\n"),
        },
        "a.yaml",
        5,
        "share_with.1",
        "is account 222222222222, listed already as 'finance'",
        "share_with-name-and-id-of-one-account",
    ),
    # --- source_image -----------------------------------------------------------------
    accounts_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": SOURCE,
            "b.yaml": imported(f"source_workspace_id: {WORKSPACE}\n"),
        },
        "b.yaml",
        4,
        "source_image",
        "not both",
        "both-sources",
    ),
    accounts_case(
        {"a.yaml": f"name: {NAME}\ndescription: {DESCRIPTION}\n"},
        "a.yaml",
        1,
        "source_workspace_id",
        ", source_image (an image another account shares with this one, to import) or "
        "updated_from (the image spec of this account and region to update); add one of the "
        "three",
        "neither-source",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported(source="finance")},
        "b.yaml",
        5,
        "source_image.account",
        "names finance (222222222222), the account image 'finance-win11' lives in",
        "source_image-from-its-own-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported(source="'222222222222'")},
        "b.yaml",
        5,
        "source_image.account",
        "an import copies an image that another account shares",
        "source_image-from-its-own-account-by-id",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported(source="imagse")},
        "b.yaml",
        5,
        "source_image.account",
        "did you mean 'images'?",
        "source_image-account-unknown-name",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported(source="'11111111111'")},
        "b.yaml",
        5,
        "source_image.account",
        "or a 12-digit AWS account id",
        "source_image-account-11-digits",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported(source="111111111111")},
        "b.yaml",
        5,
        "source_image.account",
        "quote it",
        "source_image-account-unquoted",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported("  acount: x\n")},
        "b.yaml",
        7,
        "source_image.acount",
        "did you mean 'account'",
        "source_image-unknown-key",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": SOURCE,
            "b.yaml": f"name: {NAME}\ndescription: {DESCRIPTION}\naccount: finance\n"
            "source_image:\n  account: images\n",
        },
        "b.yaml",
        5,
        "source_image.name",
        "required",
        "source_image-without-name",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "b.yaml": f"name: {NAME}\ndescription: {DESCRIPTION}\naccount: finance\n"
            "source_image:\n",
        },
        "b.yaml",
        4,
        "source_image",
        "is empty; give the image to import",
        "source_image-null",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported("  region: eu-west-1x\n")},
        "b.yaml",
        7,
        "source_image.region",
        "an AWS region code",
        "source_image-bad-region",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported("  region: ap-southeast-2\n")},
        "b.yaml",
        4,
        "source_image",
        "image 'finance-win11' of account images is not in "
        "ap-southeast-2, the source region (specs/a.yaml:1: eu-west-1)",
        "source_image-region-where-the-source-is-not",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": SOURCE, "b.yaml": imported("region: us-east-1\n")},
        "b.yaml",
        4,
        "source_image",
        "is not in us-east-1, the source region",
        "source_image-default-region-is-the-importing-spec-s",
    ),
    accounts_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": spec("account: images\nshare_with: []\n"),
            "b.yaml": imported(),
        },
        "b.yaml",
        4,
        "source_image",
        "is not shared with finance (222222222222) in eu-west-1: "
        "its share_with (specs/a.yaml:1: eu-west-1) does not list it; add finance to that list",
        "source_image-not-shared-with-the-importing-account",
    ),
    accounts_case(
        {"defaults.yaml": MAP, "a.yaml": spec("account: images\n"), "b.yaml": imported()},
        "b.yaml",
        4,
        "source_image",
        "manages no sharing; add share_with: [finance] to it",
        "source_image-whose-spec-does-not-manage-sharing",
    ),
]


# Updated images (`updated_from: NAME`): the source is an image spec of the same account and
# region, never the spec itself nor a loop.
UPDATE = "finance-win11-2026-12"


def updated(extra: str = "", *, name: str = UPDATE, source: str = NAME) -> str:
    """An updated image: name 1, description 2, updated_from 3; `extra` lines start at 4."""
    return f"name: {name}\ndescription: Updated image\nupdated_from: {source}\n" + extra


def update_case(
    files: dict[str, str | bytes | Link],
    file: str,
    at: tuple[int, int],
    field: str,
    message: str,
    id: str,
) -> Any:
    line, column = at
    return pytest.param(Case(files, file, line, field, message, column=column), id=id)


UPDATE_CASES = [
    # --- one source -------------------------------------------------------------------
    update_case(
        {"a.yaml": spec(), "b.yaml": updated(f"source_workspace_id: {WORKSPACE}\n")},
        "b.yaml",
        (3, 1),
        "updated_from",
        "give either source_workspace_id (a WorkSpace to capture) or updated_from (an image "
        "spec of this account to update), not both; remove one of the two",
        "updated_from-and-source_workspace_id",
    ),
    update_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": SOURCE,
            "b.yaml": imported(f"updated_from: {NAME}\n", name="other"),
        },
        "b.yaml",
        (7, 1),
        "updated_from",
        "give either source_image (an image another account shares, to import) or "
        "updated_from (an image spec of this account to update), not both",
        "updated_from-and-source_image",
    ),
    update_case(
        {
            "defaults.yaml": MAP,
            "a.yaml": SOURCE,
            "b.yaml": imported(f"updated_from: {NAME}\nsource_workspace_id: {WORKSPACE}\n"),
        },
        "b.yaml",
        (7, 1),
        "updated_from",
        "give one of source_workspace_id (a WorkSpace to capture), source_image (an image "
        "another account shares, to import), updated_from (an image spec of this account to "
        "update), not all three; keep one",
        "all-three-sources",
    ),
    update_case(
        {"a.yaml": spec(), "b.yaml": updated(source="")},
        "b.yaml",
        (3, 14),
        "updated_from",
        "is empty; give the name of the image spec this image updates, or remove the line",
        "updated_from-null",
    ),
    update_case(
        {"a.yaml": spec(), "b.yaml": updated(source="finance win11")},
        "b.yaml",
        (3, 15),
        "updated_from",
        "'finance win11' is not valid: expected the name of an image spec",
        "updated_from-with-a-space",
    ),
    update_case(
        {"a.yaml": spec(name="'2026'"), "b.yaml": updated(source="2026")},
        "b.yaml",
        (3, 15),
        "updated_from",
        "2026 is read as a YAML number, not a string; quote it: '2026'",
        "updated_from-a-number",
    ),
    update_case(
        {"defaults.yaml": f"defaults:\n  updated_from: {NAME}\n", "a.yaml": spec()},
        "defaults.yaml",
        (2, 3),
        "defaults.updated_from",
        "unknown field 'updated_from'",
        "updated_from-in-defaults",
    ),
    update_case(
        {"a.yaml": spec() + "---\n" + bundle(f"updated_from: {NAME}\n")},
        "a.yaml",
        (11, 1),
        "updated_from",
        "unknown field 'updated_from' for a bundle spec; it belongs in the image spec",
        "updated_from-on-a-bundle",
    ),
    # --- itself, and loops --------------------------------------------------------------
    update_case(
        {"a.yaml": updated(source=UPDATE)},
        "a.yaml",
        (3, 1),
        "updated_from",
        f"names image '{UPDATE}' itself; an updated image is a new image, made from another "
        "one: give the name of the image spec it updates, and this spec a new name",
        "updated_from-itself",
    ),
    update_case(
        {"a.yaml": updated(source="b"), "b.yaml": updated(name="b", source=UPDATE)},
        "b.yaml",
        (3, 1),
        "updated_from",
        f"the chain of updated_from loops (b -> {UPDATE} -> b): an updated image is made from "
        "an image that exists first; give one of them source_workspace_id or source_image "
        "instead",
        "updated_from-loop-of-two",
    ),
    update_case(
        {
            "a.yaml": updated(name="a", source="b"),
            "b.yaml": updated(name="b", source="c", extra="region: eu-west-1\n"),
            "c/defaults.yaml": DEFAULTS_OK,
            "c/c.yaml": updated(name="c", source="a"),
        },
        "a.yaml",
        (3, 1),
        "updated_from",
        "the chain of updated_from loops (a -> b -> c -> a)",
        "updated_from-loop-of-three-across-folders",
    ),
    # --- the same account and region ------------------------------------------------------
    update_case(
        {"a.yaml": spec("region: eu-west-1\n"), "b.yaml": updated("region: us-east-1\n")},
        "b.yaml",
        (3, 1),
        "updated_from",
        f"image '{NAME}' is not in us-east-1, this image's region (specs/a.yaml:1: eu-west-1); "
        "an updated image is made in the region of the image it updates: give this spec that "
        "region (and copies for others), or name an image spec of this region",
        "updated_from-another-region",
    ),
    update_case(
        {
            "a.yaml": spec("region: eu-west-1\n"),
            "us/defaults.yaml": "defaults:\n  region: us-east-1\n",
            "us/b.yaml": updated(),
        },
        "us/b.yaml",
        (3, 1),
        "updated_from",
        f"image '{NAME}' is not in us-east-1, this image's region",
        "updated_from-another-region-from-the-defaults",
    ),
    update_case(
        {
            "a.yaml": spec("region: eu-west-1\ncopies: [us-east-1]\n"),
            "b.yaml": updated("region: us-east-1\n"),
        },
        "b.yaml",
        (3, 1),
        "updated_from",
        f"image '{NAME}' is only copied to us-east-1 (specs/a.yaml:1: eu-west-1, copies to "
        "us-east-1); an image is updated where it is made: give this spec region eu-west-1 "
        "(that image's own) and add us-east-1 to this spec's copies",
        "updated_from-a-copy-region",
    ),
]


CASES = [
    # --- required fields -------------------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": f"description: {DESCRIPTION}\nsource_workspace_id: {WORKSPACE}\n"},
            "a.yaml",
            1,
            "name",
            "required",
        ),
        id="missing-name",
    ),
    pytest.param(
        Case(
            {"a.yaml": f"name: {NAME}\nsource_workspace_id: {WORKSPACE}\n"},
            "a.yaml",
            1,
            "description",
            "required",
        ),
        id="missing-description",
    ),
    pytest.param(
        Case(
            {"a.yaml": "# one image\n" + f"name: {NAME}\ndescription: {DESCRIPTION}\n"},
            "a.yaml",
            2,
            "source_workspace_id",
            "required",
        ),
        id="missing-source_workspace_id",
    ),
    # --- unknown keys, with "did you mean" --------------------------------------------
    pytest.param(
        Case(
            {
                "a.yaml": f"Name: {NAME}\n"
                f"description: {DESCRIPTION}\nsource_workspace_id: {WORKSPACE}\n"
            },
            "a.yaml",
            1,
            "Name",
            "did you mean 'name'",
        ),
        id="unknown-key-Name",
    ),
    pytest.param(
        Case(
            {"a.yaml": f"name: {NAME}\ndescription: {DESCRIPTION}\nworkspace_id: {WORKSPACE}\n"},
            "a.yaml",
            3,
            "workspace_id",
            "did you mean 'source_workspace_id'",
        ),
        id="unknown-key-workspace_id",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tag:\n  team: finance\n")}, "a.yaml", 4, "tag", "did you mean 'tags'"
        ),
        id="unknown-key-tag",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  region: eu-west-1\n  tag:\n    team: x\n",
                "a.yaml": spec(),
            },
            "defaults.yaml",
            3,
            "defaults.tag",
            "did you mean 'tags'",
        ),
        id="defaults-unknown-key-tag",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n  regoin: eu-west-1\n", "a.yaml": spec()},
            "defaults.yaml",
            2,
            "defaults.regoin",
            "did you mean 'region'",
        ),
        id="defaults-unknown-key-regoin",
    ),
    # --- name -------------------------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec(name="n" * 65)}, "a.yaml", 1, "name", "1-64 characters"),
        id="name-too-long-65",
    ),
    pytest.param(
        Case({"a.yaml": spec(name="'finance win11'")}, "a.yaml", 1, "name", "not valid"),
        id="name-with-space",
    ),
    pytest.param(
        Case({"a.yaml": spec(name="'finance,win11'")}, "a.yaml", 1, "name", "not valid"),
        id="name-with-comma",
    ),
    pytest.param(
        Case({"a.yaml": spec(name="'finance*'")}, "a.yaml", 1, "name", "not valid"),
        id="name-with-star",
    ),
    pytest.param(
        Case({"a.yaml": spec(name="[finance, win11]")}, "a.yaml", 1, "name", "got a list"),
        id="name-is-a-list",
    ),
    pytest.param(
        Case({"a.yaml": spec(name="{finance: win11}")}, "a.yaml", 1, "name", "got a mapping"),
        id="name-is-a-mapping",
    ),
    # --- description ------------------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec(description="''")}, "a.yaml", 2, "description", "1-256"),
        id="description-empty",
    ),
    pytest.param(
        Case({"a.yaml": spec(description="d" * 257)}, "a.yaml", 2, "description", "1-256"),
        id="description-too-long-257",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(description="'Finance, Windows 11'")},
            "a.yaml",
            2,
            "description",
            "commas and colons",
        ),
        id="description-with-comma",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(description="'Finance: Windows 11'")},
            "a.yaml",
            2,
            "description",
            "commas and colons",
        ),
        id="description-with-colon",
    ),
    # --- source_workspace_id ----------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec(workspace="ws-0A1B2C3D4")}, "a.yaml", 3, "source_workspace_id", "ws-"),
        id="workspace-id-uppercase",
    ),
    pytest.param(
        Case({"a.yaml": spec(workspace="ws-0a1b2c3")}, "a.yaml", 3, "source_workspace_id", "8-63"),
        id="workspace-id-too-short",
    ),
    pytest.param(
        Case({"a.yaml": spec(workspace="0a1b2c3d4")}, "a.yaml", 3, "source_workspace_id", "ws-"),
        id="workspace-id-missing-prefix",
    ),
    # --- region -----------------------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec("region: EU-West-1\n")}, "a.yaml", 4, "region", "eu-west-1"),
        id="region-bad",
    ),
    pytest.param(
        Case({"a.yaml": spec("region:\n")}, "a.yaml", 4, "region", "empty"),
        id="region-empty-null",
    ),
    # --- no silent conversion: quote it ----------------------------------------------
    pytest.param(
        Case({"a.yaml": spec(name="yes")}, "a.yaml", 1, "name", "quote it: 'yes'"),
        id="yaml-bool-yes",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  backup: on\n")}, "a.yaml", 5, "tags.backup", "quote it"),
        id="yaml-bool-on",
    ),
    pytest.param(
        Case({"a.yaml": spec(description="true")}, "a.yaml", 2, "description", "quote it"),
        id="yaml-bool-true",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  version: 1.10\n")},
            "a.yaml",
            5,
            "tags.version",
            "quote it: '1.10'",
        ),
        id="yaml-number-1.10",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  cost-center: 4410\n")},
            "a.yaml",
            5,
            "tags.cost-center",
            "quote it: '4410'",
        ),
        id="yaml-number-4410",
    ),
    pytest.param(
        Case({"a.yaml": spec(description="~")}, "a.yaml", 2, "description", "quote"),
        id="yaml-null-tilde",
    ),
    pytest.param(
        Case(
            {"a.yaml": f"name:\ndescription: {DESCRIPTION}\nsource_workspace_id: {WORKSPACE}\n"},
            "a.yaml",
            1,
            "name",
            "quote",
        ),
        id="yaml-null-empty",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(description="2026-11-27")},
            "a.yaml",
            2,
            "description",
            "quote it: '2026-11-27'",
        ),
        id="yaml-date",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: x\n  1: x\n")}, "a.yaml", 6, "tags", "quote it"),
        id="tags-number-key",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  yes: y\n")}, "a.yaml", 5, "tags", "quote it: 'yes'"),
        id="tags-boolean-key",
    ),
    # --- duplicate keys ---------------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec("name: other\n")}, "a.yaml", 4, "name", "duplicate key"),
        id="duplicate-key-top-level",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  team: a\n  owner: b\n  team: c\n")},
            "a.yaml",
            7,
            "tags.team",
            "first at line 5",
        ),
        id="duplicate-key-in-tags",
    ),
    # --- a declared tag is never also ignored ------------------------------------------
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  ignore_tag_keys: [team]\n",
                "a.yaml": spec("tags:\n  owner: x\n  team: finance\n"),
            },
            "a.yaml",
            6,
            "tags.team",
            f"tag 'team' {IGNORED} ignore_tag_keys entry 'team' at specs/defaults.yaml:2",
        ),
        id="ignored-key-declared-by-a-spec",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  ignore_tag_prefixes:\n    - 'finops:'\n",
                "a.yaml": spec("tags:\n  'finops:budget': '10'\n"),
            },
            "a.yaml",
            5,
            "tags.finops:budget",
            f"{IGNORED} ignore_tag_prefixes prefix 'finops:' at specs/defaults.yaml:3",
        ),
        id="ignored-prefix-declared-by-a-spec",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  ignore_tag_keys: [team]\n",
                "eu/finance/a.yaml": spec("tags:\n  team: finance\n"),
            },
            "eu/finance/a.yaml",
            5,
            "tags.team",
            "at specs/defaults.yaml:2",
        ),
        id="ignored-key-from-a-parent-folder-declared-by-a-spec",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  tags:\n    owner: platform\n"
                "  ignore_tag_keys:\n    - cost\n    - owner\n",
                "a.yaml": spec(),
            },
            "defaults.yaml",
            3,
            "defaults.tags.owner",
            "ignore_tag_keys entry 'owner' at specs/defaults.yaml:6",
        ),
        id="ignored-key-declared-by-the-same-defaults",
    ),
    pytest.param(
        # The root's tag is merged into every spec under team/, whose defaults ignore it.
        Case(
            {
                "defaults.yaml": "defaults:\n  region: eu-west-1\n  tags:\n    owner: platform\n",
                "a.yaml": spec(),
                "team/defaults.yaml": "defaults:\n  ignore_tag_keys: [owner]\n",
                "team/b.yaml": spec(name="other"),
            },
            "defaults.yaml",
            4,
            "defaults.tags.owner",
            "ignore_tag_keys entry 'owner' at specs/team/defaults.yaml:2",
        ),
        id="defaults-tag-ignored-by-a-subfolder-defaults",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  ignore_tag_prefixes: ['cc-']\n",
                "team/defaults.yaml": "defaults:\n  tags: {cc-id: '4410'}\n",
                "team/a.yaml": spec(),
            },
            "team/defaults.yaml",
            2,
            "defaults.tags.cc-id",
            "ignore_tag_prefixes prefix 'cc-' at specs/defaults.yaml:2",
        ),
        id="subfolder-defaults-tag-ignored-by-a-parent-prefix",
    ),
    # --- duplicate (region, name) -----------------------------------------------------
    pytest.param(
        Case(
            {
                "a.yaml": spec("region: eu-west-1\n"),
                "team/b.yaml": "# the same image again\n" + spec("region: eu-west-1\n"),
            },
            "team/b.yaml",
            2,
            "name",
            "also at specs/a.yaml:1",
        ),
        id="duplicate-name-across-files",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n" + spec(workspace="ws-0a1b2c3d5")},
            "a.yaml",
            5,
            "name",
            "also at specs/a.yaml:1",
        ),
        id="duplicate-name-same-file",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": DEFAULTS_OK, "a.yaml": spec(), "b.yaml": spec()},
            "b.yaml",
            1,
            "name",
            "declared twice for eu-west-1",
        ),
        id="duplicate-name-region-from-defaults",
    ),
    # --- tag keys and values ----------------------------------------------------------
    pytest.param(
        Case({"a.yaml": spec("tags:\n  aws:team: x\n")}, "a.yaml", 5, "tags.aws:team", "aws:"),
        id="tag-key-aws-prefix",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  AWS:team: x\n")}, "a.yaml", 5, "tags.AWS:team", "aws:"),
        id="tag-key-AWS-prefix",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  workspaces-image-reconciler:managed: 'true'\n")},
            "a.yaml",
            5,
            "tags.workspaces-image-reconciler:managed",
            "reserved",
        ),
        id="tag-key-ownership",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(f"tags:\n  {'k' * 128}: x\n")},
            "a.yaml",
            5,
            f"tags.{'k' * 128}",
            "1-127",
        ),
        id="tag-key-too-long-128",
    ),
    pytest.param(
        Case({"a.yaml": spec(f"tags:\n  team: {'v' * 256}\n")}, "a.yaml", 5, "tags.team", "0-255"),
        id="tag-value-too-long-256",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: '<b>'\n")}, "a.yaml", 5, "tags.team", "not valid"),
        id="tag-value-less-than",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: 'a,b'\n")}, "a.yaml", 5, "tags.team", "not valid"),
        id="tag-value-comma",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: 'go!'\n")}, "a.yaml", 5, "tags.team", "not valid"),
        id="tag-value-bang",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n" + tag_lines(50))}, "a.yaml", 5, "tags", "at most 49"),
        id="tags-50-declared",
    ),
    pytest.param(
        Case(
            {
                "defaults.yaml": "defaults:\n  tags:\n" + tag_lines(40, "d", "    "),
                "a.yaml": spec("tags:\n" + tag_lines(10, "s")),
            },
            "a.yaml",
            4,
            "tags",
            "50 tags with the folder defaults merged",
        ),
        id="tags-40-defaults-plus-10-merged",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  - team\n")}, "a.yaml", 5, "tags", "expected a mapping"),
        id="tags-is-a-list",
    ),
    # --- files and documents ----------------------------------------------------------
    pytest.param(Case({"a.yaml": ""}, "a.yaml", 1, "<file>", "no YAML document"), id="empty-file"),
    pytest.param(
        Case({"a.yaml": "# nothing here\n# yet\n"}, "a.yaml", 1, "<file>", "no YAML document"),
        id="only-comments",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "---\n---\n" + spec(name="other")},
            "a.yaml",
            5,
            "document",
            "empty document",
        ),
        id="empty-document-between-separators",
    ),
    pytest.param(
        Case({"a.yaml": "- name: a\n- name: b\n"}, "a.yaml", 1, "document", "got a list"),
        id="top-level-list",
    ),
    pytest.param(
        Case({"a.yaml": spec() + "---\nfinance\n"}, "a.yaml", 5, "document", "got the scalar"),
        id="top-level-scalar",
    ),
    # --- defaults documents -----------------------------------------------------------
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n  region: eu-west-99x\n", "a.yaml": spec()},
            "defaults.yaml",
            2,
            "defaults.region",
            "eu-west-1",
        ),
        id="defaults-bad-region",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n  tags:\n    aws:owner: x\n", "a.yaml": spec()},
            "defaults.yaml",
            3,
            "defaults.tags.aws:owner",
            "aws:",
        ),
        id="defaults-aws-tag-key",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n  ignore_tag_keys: cost\n", "a.yaml": spec()},
            "defaults.yaml",
            2,
            "defaults.ignore_tag_keys",
            "expected a list",
        ),
        id="defaults-ignore_tag_keys-not-a-list",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": DEFAULTS_OK + "name: other\n", "a.yaml": spec()},
            "defaults.yaml",
            3,
            "name",
            "holds only 'defaults:'",
        ),
        id="defaults-with-other-top-level-keys",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": DEFAULTS_OK, "more.yaml": DEFAULTS_OK, "a.yaml": spec()},
            "more.yaml",
            1,
            "defaults",
            "second defaults document",
        ),
        id="two-defaults-documents-in-one-folder",
    ),
    pytest.param(
        Case(
            {"sub/defaults.yaml": DEFAULTS_OK + "---\n" + DEFAULTS_OK, "sub/a.yaml": spec()},
            "sub/defaults.yaml",
            4,
            "defaults",
            "second defaults document",
        ),
        id="two-defaults-documents-in-one-file",
    ),
    # --- YAML syntax and encoding -----------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  team: a\n owner: b\n")},
            "a.yaml",
            6,
            "<file>",
            "YAML syntax error",
        ),
        id="yaml-bad-indentation",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(description="Finance: image")},
            "a.yaml",
            2,
            "<file>",
            "YAML syntax error",
        ),
        id="yaml-mapping-value-not-allowed",
    ),
    pytest.param(
        Case(
            {"a.yaml": f"name: {NAME}\ndescription: 'Finance image\nsource_workspace_id: x\n"},
            "a.yaml",
            2,
            "<file>",
            "YAML syntax error",
        ),
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        Case(
            {"a.yaml": f"name: {NAME}\ndescription: 'Finance image\n"},
            "a.yaml",
            2,  # where the quote opens, not the end of the file where the parser noticed
            "<file>",
            "YAML syntax error",
        ),
        id="yaml-unclosed-quote-at-end",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n\tteam: finance\n")}, "a.yaml", 5, "<file>", TABS),
        id="tab-indented",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: a\n\towner: b\n")}, "a.yaml", 6, "<file>", TABS),
        id="tab-indented-after-a-space-indented-line",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n \tteam: finance\n")}, "a.yaml", 5, "<file>", TABS),
        id="tab-after-a-space-in-the-indentation",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": "defaults:\n\tregion: eu-west-1\n", "a.yaml": spec()},
            "defaults.yaml",
            2,
            "<file>",
            TABS,
        ),
        id="tab-indented-defaults",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags:\n  site: Zürich\n").encode("latin-1")},
            "a.yaml",
            5,
            "<file>",
            "not UTF-8",
        ),
        id="not-utf8-latin1",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec() + "# " + "x" * (1024 * 1024) + "\n"},
            "a.yaml",
            1,
            "<file>",
            "limited to 1 MiB",
        ),
        id="file-over-1-MiB",
    ),
    pytest.param(
        Case({"a.yaml": "# alias bomb\n" + BILLION_LAUGHS}, "a.yaml", 2, "<file>", "alias bomb"),
        id="alias-bomb-billion-laughs",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags: " + "[" * 1000 + "]" * 1000 + "\n")},
            "a.yaml",
            4,
            "<file>",
            "nested",
        ),
        id="nesting-1000-levels",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec("tags: !!python/object/apply:os.system ['touch pwned']\n")},
            "a.yaml",
            4,
            "tags",
            "unsupported YAML tag",
        ),
        id="python-object-tag",
    ),
    pytest.param(
        Case({"a.yaml": spec("tags:\n  team: fin\x07ance\n")}, "a.yaml", 5, "<file>", "control"),
        id="control-character",
    ),
    # --- the folder -------------------------------------------------------------------
    pytest.param(
        Case(
            {"a.yaml": spec(), "link.yaml": Link("../outside.yaml")},
            "link.yaml",
            1,
            "<file>",
            "outside the specs folder",
            outside={"outside.yaml": spec(name="elsewhere")},
        ),
        id="symlink-outside-specs-folder",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(), "gone.yaml": Link("missing.yaml")},
            "gone.yaml",
            1,
            "<file>",
            "is a broken link (to 'missing.yaml'); the specs are read whole or not at all",
        ),
        id="dangling-symlink-inside",
    ),
    pytest.param(
        # A folder link whose target moved: the specs it held would be missed, and pruned.
        Case(
            {"a.yaml": spec(), "team": Link("../moved-team")},
            "team",
            1,
            "<file>",
            "is a broken link (to '../moved-team')",
        ),
        id="dangling-folder-link-without-a-yaml-suffix",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(), "loop.yaml": Link("loop.yaml")},
            "loop.yaml",
            1,
            "<file>",
            "is a symbolic link loop",
        ),
        id="symlink-loop-to-itself",
    ),
    pytest.param(
        Case(
            {"a.yaml": spec(), "team/ping": Link("pong"), "team/pong": Link("ping")},
            "team/ping",
            1,
            "<file>",
            "is a symbolic link loop",
        ),
        id="symlink-loop-between-two-links",
    ),
    pytest.param(
        Case({"a.yaml": spec(), "team/B.YAML": "Name: x\n"}, "team/B.YAML", 1, "Name", "did you"),
        id="upper-case-YAML-suffix-is-read",
    ),
    pytest.param(
        Case({"a.yaml": spec(), "c.Yml": spec()}, "c.Yml", 1, "name", "also at specs/a.yaml:1"),
        id="mixed-case-Yml-suffix-is-read",
    ),
    pytest.param(
        Case({}, "", 0, "<folder>", "does not exist", specs_dir="no-such-specs"),
        id="specs-folder-missing",
    ),
    pytest.param(
        Case({"README.md": "not a spec\n"}, "", 0, "<folder>", "--allow-empty"),
        id="specs-folder-without-specs",
    ),
    pytest.param(
        Case(
            {"defaults.yaml": DEFAULTS_OK},
            "",
            0,
            "<folder>",
            "holds no spec; add one, or pass --allow-empty to retire every image and bundle",
        ),
        id="specs-folder-with-only-defaults",
    ),
    *FORMAT_2_CASES,
    *ACCOUNT_CASES,
    *UPDATE_CASES,
]

ALL_CASES = {p.id: p.values[0] for p in CASES}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45
    assert len(ALL_CASES) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_is_reported(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs_dir = make_case(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    outcome = invoke(["validate", specs_dir])
    elapsed = time.perf_counter() - started
    assert_reported(case, outcome)
    assert elapsed < 2.0, f"took {elapsed:.2f} s"


def test_alias_bomb_is_refused_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "bomb.yaml").write_text(BILLION_LAUGHS)
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    outcome = invoke(["validate", "specs"])
    assert time.perf_counter() - started < 1.0
    assert outcome.exit_code == 1
    assert "alias bomb" in outcome.stderr


# ---------------------------------------------------------------------------------------
# From outside: a real process, as CI runs it
# ---------------------------------------------------------------------------------------

SUBPROCESS_CASES = [
    "unknown-key-Name",
    "yaml-number-4410",
    "duplicate-name-across-files",
    "not-utf8-latin1",
    "alias-bomb-billion-laughs",
    "python-object-tag",
    "specs-folder-missing",
    "bundle-image-names-no-spec",
    "share_with-yaml-integer",
]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_invalid_case_in_a_subprocess(case_id: str, tmp_path: Path) -> None:
    case = ALL_CASES[case_id]
    specs_dir = make_case(tmp_path, case)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", specs_dir],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert_reported(case, Outcome(proc.returncode, proc.stdout, proc.stderr, None))


# ---------------------------------------------------------------------------------------
# Several problems at once, and the machine-readable formats
# ---------------------------------------------------------------------------------------

SEVERAL_BAD = {
    "b.yaml": spec("tags:\n  cost-center: 4410\n", workspace="ws-0A"),
    "a.yaml": spec(name="'bad name'") + "---\n" + spec(name="other", description="true"),
    "team/c.yaml": "Name: x\n",
    "team/d.yaml": "",
    "ok.yaml": spec(name="fine"),
}
SEVERAL_EXPECTED = [
    ("specs/a.yaml", 1, "name"),
    ("specs/a.yaml", 6, "description"),
    ("specs/b.yaml", 3, "source_workspace_id"),
    ("specs/b.yaml", 5, "tags.cost-center"),
    ("specs/team/c.yaml", 1, "Name"),
    ("specs/team/d.yaml", 1, "<file>"),
]


def parse_problem(line: str) -> tuple[str, int, int, str]:
    match = re.match(r"^(.+?):(\d+):(\d+): ([^:]+(?::[^ ]+)?): ", line)
    assert match, line
    return match[1], int(match[2]), int(match[3]), match[4]


def test_every_problem_is_reported_sorted_by_file_then_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", dict(SEVERAL_BAD))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 1
    assert "Traceback" not in outcome.stderr
    reported = [parse_problem(line) for line in problem_lines(outcome.stderr)]
    found = {(file, line, fld) for file, line, _, fld in reported}
    for expected in SEVERAL_EXPECTED:
        assert expected in found, f"{expected} missing from:\n{outcome.stderr}"
    positions = [(file, line) for file, line, _, _ in reported]
    assert positions == sorted(positions)
    assert not any(file == "specs/ok.yaml" for file, _, _, _ in reported)
    assert f"{len(reported)} problems in the specs" in outcome.stderr


def test_json_format_is_one_document_with_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", dict(SEVERAL_BAD))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs", "--format", "json"])
    assert outcome.exit_code == 1
    document = json.loads(outcome.stdout)
    assert set(document) == {"format_version", "problems", "warnings"}
    rows = document["problems"]
    assert rows
    for row in rows:
        assert set(row) == {"file", "line", "column", "field", "message"}
        assert isinstance(row["line"], int)
        assert isinstance(row["column"], int)
    found = {(r["file"], r["line"], r["field"]) for r in rows}
    for expected in SEVERAL_EXPECTED:
        assert expected in found
    assert [(r["file"], r["line"]) for r in rows] == sorted((r["file"], r["line"]) for r in rows)


def test_github_format_prints_error_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", dict(SEVERAL_BAD))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs", "--format", "github"])
    assert outcome.exit_code == 1
    lines = outcome.stdout.splitlines()
    assert lines
    assert all(line.startswith("::error file=") for line in lines)
    assert "::error file=specs/team/c.yaml,line=1,col=1,title=Name::" in outcome.stdout
    # a field such as tags.cost-center is a title; commas and colons in it are escaped
    assert "file=specs/b.yaml,line=5," in outcome.stdout


def test_text_problems_are_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "specs", dict(SEVERAL_BAD))
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    body = outcome.stderr.split("problems in the specs")[0].splitlines()[:-1]
    assert body
    assert all(re.match(r"^specs/[^:]+:\d+:\d+: \S+: ", line) for line in body), body


def test_click_standalone_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "specs", {"a.yaml": "Name: x\n"})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "specs"])
    assert result.exit_code == 1


def test_a_bundle_naming_an_invalid_image_spec_gets_no_second_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image spec's own problem is the one to fix; "names no image spec" or "is not
    in us-east-1" would send the reader after the wrong line."""
    specs_dir = make_case(tmp_path, ALL_CASES["bundle-naming-an-invalid-image-spec"])
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", specs_dir])
    assert outcome.exit_code == 1
    assert [line.split(": ")[0] for line in problem_lines(outcome.stderr)] == ["specs/a.yaml:2:14"]


@pytest.mark.parametrize(
    ("case_id", "shown"),
    [
        ("region-bad", "'EU-West-1'"),
        ("defaults-bad-region", "'eu-west-99x'"),
        ("two-defaults-documents-in-one-folder", "second defaults document"),
        ("yaml-unclosed-quote", "YAML syntax error"),
        ("control-character", "control characters"),
    ],
)
def test_cases_with_known_reporting_bugs_are_still_rejected(
    case_id: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the xfail cases above wait for a fix, their specs must still be refused."""
    specs_dir = make_case(tmp_path, ALL_CASES[case_id])
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", specs_dir])
    assert outcome.exception is None
    assert outcome.exit_code == 1
    assert shown in outcome.stderr
    assert "Traceback" not in outcome.stderr
