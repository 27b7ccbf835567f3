"""The specs folder is read whole or not at all (issue 10, item 1; 13: hidden lock files).

What can't be read (a folder, a file, a broken link, a link loop) is a problem naming it,
never a silent skip; hidden files and folders, and links into them, are skipped by rule;
`*.yaml` and `*.yml` match in any letter case. Unreadable folders and files are simulated
here by an injected OSError (the tests run as root, who reads everything); the real
permission case runs as a subprocess in tests/e2e/test_specs_read_whole.py.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import SpecError, SpecProblem
from reconciler.specs import discover, load
from reconciler.specs.load import load_specs
from tests.specs.test_invalid_corpus import Link, invoke, spec, write_tree


def problems(root: Path) -> list[SpecProblem]:
    with pytest.raises(SpecError) as raised:
        load_specs(root, shown_root="specs")
    return list(raised.value.problems)


def names(root: Path) -> list[str]:
    return [s.name for s in load_specs(root).specs]


def refuse(paths: set[Path], real: Callable[..., Any]) -> Callable[..., Any]:
    """`real` (os.scandir or open), raising EACCES for `paths`, as a folder or file with
    no permission bits does for a user other than root."""

    def fake(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) in paths:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    return fake


def test_an_unreadable_folder_is_a_problem_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "specs"
    write_tree(root, {"a.yaml": spec(), "team/b.yaml": spec(name="b")})
    monkeypatch.setattr(discover.os, "scandir", refuse({root / "team"}, os.scandir))
    [problem] = problems(root)
    assert (problem.file, problem.line, problem.field) == ("specs/team", 0, "<folder>")
    assert "folder cannot be read (Permission denied)" in problem.message
    assert "read whole or not at all" in problem.message


def test_every_unreadable_folder_is_named_and_the_rest_is_still_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "specs"
    write_tree(
        root,
        {
            "a.yaml": spec(),
            "eu/finance/b.yaml": spec(name="b"),
            "us/c.yaml": spec(name="c"),
            "us/z.yaml": "Name: x\n",
        },
    )
    unreadable = {root / "eu" / "finance", root / "us"}
    monkeypatch.setattr(discover.os, "scandir", refuse(unreadable, os.scandir))
    found = {(p.file, p.field) for p in problems(root)}
    assert found == {("specs/eu/finance", "<folder>"), ("specs/us", "<folder>")}


def test_an_unreadable_specs_folder_itself_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "specs"
    write_tree(root, {"a.yaml": spec()})
    monkeypatch.setattr(discover.os, "scandir", refuse({root}, os.scandir))
    [problem] = problems(root)
    assert (problem.file, problem.field) == ("specs", "<folder>")


def test_an_unreadable_file_is_a_problem_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "specs"
    write_tree(root, {"a.yaml": spec(), "team/b.yml": spec(name="b")})
    monkeypatch.setattr(load, "open", refuse({root / "team" / "b.yml"}, open), raising=False)
    [problem] = problems(root)
    assert (problem.file, problem.line, problem.field) == ("specs/team/b.yml", 1, "<file>")
    assert "cannot be read (Permission denied)" in problem.message


def test_a_pipe_with_a_yaml_name_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    write_tree(root, {"a.yaml": spec()})
    os.mkfifo(root / "b.yaml")
    found: list[tuple[SpecProblem, ...]] = []

    def load_aside() -> None:
        try:
            load_specs(root, shown_root="specs")
            found.append(())
        except SpecError as err:
            found.append(err.problems)

    # Opening a pipe waits for a writer: the load runs aside, so a regression fails, not hangs.
    reader = threading.Thread(target=load_aside, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert found, "the load is stuck opening the pipe"
    [problem] = found[0]
    assert (problem.file, problem.field) == ("specs/b.yaml", "<file>")
    assert "not a regular file" in problem.message


def test_yaml_suffixes_match_in_any_letter_case(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    files = {"a.YAML": spec(name="a"), "b.Yml": spec(name="b"), "team/c.yAmL": spec(name="c")}
    write_tree(root, {**files, "d.yaml.bak": spec(name="d"), "e.txt": spec(name="e")})
    assert names(root) == ["a", "b", "c"]


HIDDEN: dict[str, str | bytes | Link] = {
    "a.yaml": spec(),
    ".#a.yml": Link("root@host.1234:1700000000"),  # an Emacs lock: a dangling link
    ".b.yaml": "Name: not a spec\n",
    ".git/c.yaml": "Name: not a spec\n",
    ".git/loop.yaml": Link("loop.yaml"),
    "to-hidden-file.yaml": Link(".git/c.yaml"),
    "to-hidden-folder": Link(".git"),
    "to-gone-hidden.yaml": Link(".cache/gone.yaml"),
    "team/.#b.yaml": Link("nowhere"),
}


def test_hidden_files_folders_and_links_into_them_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    write_tree(root, HIDDEN)
    assert names(root) == ["finance-win11"]


def test_validate_passes_beside_an_editor_lock_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "specs", {"a.yaml": spec(), ".#a.yaml": Link("root@host.42:1")})
    monkeypatch.chdir(tmp_path)
    outcome = invoke(["validate", "specs"])
    assert outcome.exit_code == 0, outcome.stderr
    assert "Success! 1 specs in 1 files are valid." in outcome.stdout


def test_a_linked_folder_inside_is_read_once_by_its_real_path(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    write_tree(
        root,
        {"team/a.yaml": spec(), "alias": Link("team"), "self": Link("."), "up": Link("team/..")},
    )
    spec_set = load_specs(root)
    assert [(s.name, s.file) for s in spec_set.specs] == [("finance-win11", "team/a.yaml")]


def test_a_broken_link_and_a_loop_are_each_named(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    write_tree(
        root,
        {
            "a.yaml": spec(),
            "team": Link("../elsewhere/team"),
            "eu/ping.yaml": Link("pong.yaml"),
            "eu/pong.yaml": Link("ping.yaml"),
            "notes.txt": Link("missing-notes.txt"),
        },
    )
    found = {p.file: p.message for p in problems(root)}
    assert set(found) == {
        "specs/team",
        "specs/eu/ping.yaml",
        "specs/eu/pong.yaml",
        "specs/notes.txt",
    }
    assert "broken link (to '../elsewhere/team')" in found["specs/team"]
    assert "symbolic link loop" in found["specs/eu/ping.yaml"]


def test_files_are_read_folder_by_folder_in_name_order(tmp_path: Path) -> None:
    """The order feeds the specs digest that saved plans compare: it must not change."""
    root = tmp_path / "specs"
    layout = ["b.yaml", "a.yml", "z/a.yaml", "c.YAML", "m/n/x.yaml", "m/a.yaml", "m/o.yaml"]
    write_tree(root, {path: spec(name=f"n{i}") for i, path in enumerate(layout)})
    found = [f.relative for f in discover.spec_files(str(root), "specs", [])]
    assert found == ["a.yml", "b.yaml", "c.YAML", "m/a.yaml", "m/o.yaml", "m/n/x.yaml", "z/a.yaml"]
