"""Finding the spec files: the specs folder is read whole or not at all.

A folder that can't be listed, a file that can't be opened, a broken link or a link loop
is a problem naming it, never a silent skip: a spec left unread is an image `--prune`
would delete. The only things skipped are hidden files and folders (a name starting with
`.`: `.git`, an editor's `.#x.yml` lock link) and links into them, by rule.

Links never widen what is read: a linked folder inside the specs folder is read once, by
its real path; a link to outside it is refused. Plain string paths and `os.scandir`: at
10,000 files, pathlib's per-call overhead is a tenth of the run.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from reconciler.errors import ProblemKind, SpecProblem

SUFFIXES = (".yaml", ".yml")  # in any letter case

_WHOLE = "the specs are read whole or not at all"


def is_spec_name(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def join_shown(shown_root: str, relative: str) -> str:
    """A path as the user should see it: under the SPECS_DIR they passed."""
    if not relative:
        return shown_root
    return relative if shown_root in ("", ".") else f"{shown_root.rstrip('/')}/{relative}"


@dataclass(frozen=True)
class SpecFile:
    path: str  # to open
    relative: str  # to the specs folder, with forward slashes


@dataclass
class _Walk:
    real_root: str
    shown: str
    problems: list[SpecProblem]

    # Every problem of the walk is a path that can't be read as a spec file.
    def folder_problem(self, relative: str, message: str) -> None:
        self._add(relative, 0, "<folder>", message)

    def file_problem(self, relative: str, message: str) -> None:
        self._add(relative, 1, "<file>", message)

    def _add(self, relative: str, line: int, field: str, message: str) -> None:
        # A folder has no line (0:0); a file's problem is at its start (1:1).
        file, kind = join_shown(self.shown, relative), ProblemKind.UNREADABLE_PATH
        self.problems.append(SpecProblem(file, line, line, field, message, kind=kind))


def spec_files(root: str, shown: str, problems: list[SpecProblem]) -> Iterator[SpecFile]:
    """Every spec file under `root`, in a stable order (a folder's files, then its
    subfolders by name); what can't be read is added to `problems`."""
    walk = _Walk(os.path.realpath(root), shown, problems)
    yield from _folder(walk, root, "")


def _folder(walk: _Walk, path: str, relative: str) -> Iterator[SpecFile]:
    try:
        with os.scandir(path) as listing:
            entries = sorted((e for e in listing if not e.name.startswith(".")), key=_name)
    except OSError as err:
        message = (
            f"folder cannot be read ({err.strerror}); {_WHOLE}: fix its permissions "
            "(the folder needs r and x) or move it out of the specs folder"
        )
        walk.folder_problem(relative, message)
        return
    prefix = relative + "/" if relative else ""
    folders: list[tuple[str, str]] = []
    for entry in entries:
        entry_relative = prefix + entry.name
        try:
            kind = _kind(walk, entry, entry_relative)
        except OSError as err:  # a filesystem without d_type, in a folder without x
            walk.file_problem(entry_relative, f"cannot be read ({err.strerror}); {_WHOLE}")
            continue
        if kind == "file":
            yield SpecFile(entry.path, entry_relative)
        elif kind == "folder":
            folders.append((entry.path, entry_relative))
    for folder_path, folder_relative in folders:
        yield from _folder(walk, folder_path, folder_relative)


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _kind(walk: _Walk, entry: os.DirEntry[str], relative: str) -> str | None:
    """'file' to read, 'folder' to walk, or None to pass over (a problem may be recorded)."""
    if entry.is_symlink():
        return _link(walk, entry, relative)
    if entry.is_dir(follow_symlinks=False):
        return "folder"
    if not is_spec_name(entry.name):
        return None
    if entry.is_file(follow_symlinks=False):
        return "file"
    walk.file_problem(relative, "is not a regular file (a pipe, socket or device); remove it")
    return None


def _link(walk: _Walk, entry: os.DirEntry[str], relative: str) -> str | None:
    target = os.path.realpath(entry.path)  # resolves as far as it can, even when broken
    inside = target.startswith(walk.real_root + os.sep)
    if inside and _hidden(target[len(walk.real_root) + 1 :]):
        return None  # a link into a hidden folder is skipped like the folder itself
    try:
        mode = os.stat(entry.path).st_mode
    except OSError as err:
        walk.file_problem(relative, _unreadable_link(entry.path, err))
        return None
    is_folder = stat.S_ISDIR(mode)
    if not (is_folder or is_spec_name(entry.name)):
        return None
    if not inside and target != walk.real_root:
        walk.file_problem(
            relative, "is a symlink to outside the specs folder; copy the file in instead"
        )
        return None
    if is_folder:
        return None  # read once, by its real path, which is inside
    if stat.S_ISREG(mode):
        return "file"
    walk.file_problem(relative, "links to something that is not a regular file; remove it")
    return None


def _unreadable_link(path: str, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return f"is a symbolic link loop; {_WHOLE}: fix the link or remove it"
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"is a broken link (to '{_target(path)}'); {_WHOLE}: fix the link or remove it"
    return f"is a link that cannot be followed ({err.strerror}); {_WHOLE}: fix it or remove it"


def _target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # removed meanwhile
        return "?"


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split(os.sep))


@functools.lru_cache(maxsize=1024)
def ancestors(folder: str) -> tuple[str, ...]:
    """'' then 'a' then 'a/b' for folder 'a/b': the folders whose defaults apply to it."""
    parts = folder.split("/") if folder else []
    return ("", *("/".join(parts[: i + 1]) for i in range(len(parts))))
