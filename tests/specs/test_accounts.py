"""Many accounts in the specs: the account map resolved into the specs, the import that
names a retired source (a warning offline, an error for a plan that must create it), the
checks that wait for the default region, and the commands that stop until the engine has
accounts.

The offline errors themselves are cases of the validation corpus (test_invalid_corpus.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.specs import SpecSet, load_specs, plan_time_problems
from reconciler.specs.accounts import missing_source_problems, not_yet_supported
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


# ---------------------------------------------------------------------------------------
# plan, apply and drift stop before any AWS call
# ---------------------------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[object]]]:
    """A local TCP endpoint that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connections
    stop.set()
    thread.join()
    server.close()


NOT_YET = "many accounts are not supported by this version yet"


@pytest.mark.parametrize(
    "files",
    [
        {"defaults.yaml": MAP, "a.yaml": spec("account: images\n")},
        {
            "a.yaml": f"name: {NAME}\ndescription: x\n"
            f"source_image:\n  account: '{VENDOR}'\n  name: t\n"
        },
    ],
    ids=["accounts-declared", "an-import-without-a-map"],
)
@pytest.mark.parametrize(
    "command", [["plan"], ["apply", "--auto-approve"], ["drift"]], ids=lambda c: c[0]
)
def test_commands_stop_before_any_aws_call(
    files: dict[str, str],
    command: list[str],
    endpoint: tuple[str, list[object]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, connections = endpoint
    write_tree(tmp_path / "specs", files)
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    outcome = invoke([*command, "specs", "--endpoint-url", url])
    # In-process, the error reaches the caller; the console script (main) prints it and
    # exits with its code (test_the_stop_is_exit_1_with_the_message runs it for real).
    assert isinstance(outcome.exception, ConfigError), outcome
    assert outcome.exception.exit_code == 1
    assert NOT_YET in str(outcome.exception)
    assert "specs/" in str(outcome.exception)  # names where the accounts or the import are
    assert connections == []


def test_the_stop_is_exit_1_with_the_message(
    endpoint: tuple[str, list[object]], tmp_path: Path
) -> None:
    url, connections = endpoint
    write_tree(tmp_path / "specs", {"defaults.yaml": MAP, "a.yaml": spec("account: images\n")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "specs", "--endpoint-url", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(
        "Error: the specs declare accounts: (specs/defaults.yaml:4); " + NOT_YET
    ), proc.stderr
    assert proc.stdout == ""
    assert connections == []


def test_specs_without_accounts_are_not_stopped(tmp_path: Path) -> None:
    """The guard passes an ordinary folder (the e2e suites run such folders end to end)."""
    write_tree(tmp_path / "specs", {"a.yaml": spec("share_with: ['111122223333']\n")})
    assert not_yet_supported(load_specs(tmp_path / "specs"), "specs") is None


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
