"""A compute type never needs a release of this tool (issue 17, finding 1).

`validate` takes the compute type names from the installed botocore's WorkSpaces model,
read from its model file without importing botocore. Each test runs the real command in a
subprocess; most put a stand-in botocore first on its path: a package whose import fails
(validate must never import botocore), with a model file that lists the names a release
newer (or older) than the installed one would list.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.specs.test_invalid_corpus import bundle_with, spec, write_tree

# Names no release of botocore listed when this was written: a release to come.
FUTURE = ["STANDARD", "GRAPHICS_G7_2XLARGE", "GRAPHICS_G9_48XLARGE"]


def fake_botocore(root: Path, names: list[str] | None, *, compressed: bool = True) -> Path:
    """A folder holding a botocore 9.9.9 whose WorkSpaces model lists `names` (None: a
    botocore without that model). Its `import botocore` fails."""
    site = root / "site"
    package = site / "botocore"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('validate imported botocore')\n")
    info = site / "botocore-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: botocore\nVersion: 9.9.9\n")
    if names is not None:
        model = package / "data" / "workspaces" / "2015-04-08"
        model.mkdir(parents=True)
        text = json.dumps({"shapes": {"Compute": {"type": "string", "enum": names}}})
        if compressed:
            (model / "service-2.json.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (model / "service-2.json").write_text(text)
    return site


def validate(
    tmp_path: Path, compute_type: str, *args: str, site: Path | None = None
) -> subprocess.CompletedProcess[str]:
    write_tree(
        tmp_path / "specs", {"a.yaml": spec() + "---\n" + bundle_with("compute_type", compute_type)}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "specs", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("compressed", [True, False], ids=["json.gz", "json"])
def test_a_compute_type_the_installed_botocore_lists_is_valid_without_a_release(
    tmp_path: Path, compressed: bool
) -> None:
    site = fake_botocore(tmp_path, FUTURE, compressed=compressed)
    proc = validate(tmp_path, "GRAPHICS_G9_48XLARGE", site=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Success! 2 specs in 1 files are valid." in proc.stdout


def test_a_name_the_installed_botocore_does_not_list_is_a_warning_naming_its_version(
    tmp_path: Path,
) -> None:
    site = fake_botocore(tmp_path, ["STANDARD", "GRAPHICS_G6_2XLARGE"])
    proc = validate(tmp_path, "GRAPHICS_G7_2XLARGE", site=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(
        "specs/a.yaml:9:15: compute_type: warning: 'GRAPHICS_G7_2XLARGE' is not among the "
        "compute types of the installed botocore (9.9.9): a typo (did you mean "
        "'GRAPHICS_G6_2XLARGE'?), or a type newer than it; upgrade boto3 "
        "(pip install -U boto3) and validate again."
    ), proc.stderr
    assert "Success!" in proc.stdout


def test_the_warning_is_in_the_json_document(tmp_path: Path) -> None:
    site = fake_botocore(tmp_path, ["STANDARD"])
    proc = validate(tmp_path, "STANDRAD", "--format", "json", site=site)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["problems"] == []
    [warning] = document["warnings"]
    assert (warning["file"], warning["line"], warning["field"]) == (
        "specs/a.yaml",
        9,
        "compute_type",
    )
    assert "did you mean 'STANDARD'?" in warning["message"]


def test_the_newest_api_version_of_the_model_is_read(tmp_path: Path) -> None:
    site = fake_botocore(tmp_path, FUTURE)
    older = site / "botocore" / "data" / "workspaces" / "2014-01-01"
    older.mkdir()
    (older / "service-2.json").write_text(json.dumps({"shapes": {"Compute": {"enum": ["VALUE"]}}}))
    proc = validate(tmp_path, "GRAPHICS_G9_48XLARGE", site=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_without_a_botocore_model_any_well_formed_name_passes(tmp_path: Path) -> None:
    proc = validate(tmp_path, "GRAPHICS_G9_48XLARGE", site=fake_botocore(tmp_path, None))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_name_that_is_not_well_formed_is_an_error_with_the_name_botocore_lists(
    tmp_path: Path,
) -> None:
    site = fake_botocore(tmp_path, FUTURE)
    proc = validate(tmp_path, "graphics_g9_48xlarge", site=site)
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "specs/a.yaml:9:15: compute_type: 'graphics_g9_48xlarge' is not valid: expected a "
        "compute type name: upper-case letters, digits and _, such as STANDARD; did you mean "
        "'GRAPHICS_G9_48XLARGE'?\n"
    ), proc.stderr


def test_the_newest_name_of_the_installed_botocore_is_valid(tmp_path: Path) -> None:
    """With the real botocore: the last name its model lists (the newest, as botocore
    appends them) validates without a warning."""
    session = pytest.importorskip("botocore.session")
    newest = session.get_session().get_service_model("workspaces").shape_for("Compute").enum[-1]
    proc = validate(tmp_path, newest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
