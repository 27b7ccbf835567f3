"""A release that installs: the sdist and the wheel, the container image's steps, the lock.

No Docker daemon runs here, so the wheel test runs the Dockerfile's own steps: build the
sdist and the wheel from the files the Dockerfile copies, install the wheel (with the demo
extra) into a fresh virtual environment, and run `reconciler --version` and
`reconciler demo` from that install. pip reuses what it already downloaded where it can.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
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
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
LOCK = ROOT / "action" / "requirements.lock"


def build_stage_copies() -> list[str]:
    """The sources of the Dockerfile's `COPY` lines in its build stage."""
    sources: list[str] = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            sources += line.split()[1:-1]
    return sources


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
    Dockerfile copies, and nothing else: a file the package needs but the image lacks
    fails here."""
    base = tmp_path_factory.mktemp("release")
    source, out = base / "src", base / "dist"
    source.mkdir()
    for name in build_stage_copies():
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


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(dist: Path, tmp_path: Path) -> None:
    wheel = only(dist, "*.whl")
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = clean_env()

    def run(*argv: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert done.returncode == 0, f"$ {argv}\n{done.stdout}{done.stderr}"
        return done

    run(sys.executable, "-m", "venv", venv)
    run(bin_dir / "python", "-m", "pip", "install", f"{wheel}[demo]")
    run(bin_dir / "python", "-m", "pip", "check")
    where = run(bin_dir / "python", "-c", "import reconciler; print(reconciler.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(venv), "the install, not this checkout"

    version = run(bin_dir / "reconciler", "--version")
    assert version.stdout.strip() == f"reconciler, version {__version__}"
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


def test_the_container_image_is_multi_stage_slim_and_not_root() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(stages) >= 2, "a build stage and a run stage"
    assert all(s.endswith("-slim") for s in stages), stages
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)", final, re.M)
    assert user.split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["reconciler"]' in final
    assert "COPY --from=build" in final, "the run stage takes the built environment only"


def test_the_docker_build_context_holds_only_what_the_image_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [r.strip() for r in ignored if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "everything is left out first"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {Path(s).as_posix().lstrip("./").rstrip("/") for s in build_stage_copies()}
    assert allowed == copied


def locked() -> dict[str, tuple[Version, list[str]]]:
    """The lock's pins: name -> (version, hashes)."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, tuple[Version, list[str]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        found = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)\s+(.*)$", line)
        assert found, f"not pinned with ==: {line}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", found.group(3))
        assert hashes, f"no hash for {found.group(1)}"
        pins[canonicalize_name(found.group(1))] = (Version(found.group(2)), hashes)
    return pins


def test_the_actions_lock_is_hash_pinned_and_satisfies_pyproject() -> None:
    pins = locked()
    wanted = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    wanted += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}: regenerate it"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside {requirement}: regenerate it"
        )
    assert canonicalize_name("moto") not in pins, "the action installs no test tooling"
