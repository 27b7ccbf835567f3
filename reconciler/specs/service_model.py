"""The compute types the installed botocore's WorkSpaces model lists, read without
importing botocore.

AWS adds compute types several times a year and botocore lists them within days; a new
one must never need a release of this tool. So the names are not copied here: they are
read from the model file of the botocore that is installed, once, and only when a bundle
spec names a compute type. The file is read directly (about 10 ms) rather than through
botocore's session and loader (about 200 ms), which would make `validate` slow and break
its promise not to import botocore.

A name that the installed botocore doesn't know is a warning, not an error: the model may
be older than the service (a compute type AWS sells today), and the service is the judge
when the bundle is created.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path

# The model's service folder: botocore/data/<service>/<api version>/service-2.json[.gz]
# (compressed since botocore 1.32).
_SERVICE = "workspaces"
_MODEL_FILES = ("service-2.json.gz", "service-2.json")


@functools.cache
def known_compute_types() -> tuple[str, ...] | None:
    """botocore's `Compute` enum, in its order; None when no model can be read (botocore
    not installed, or laid out otherwise), and then no name is judged."""
    model = _model_file()
    if model is None:
        return None
    try:
        raw = model.read_bytes()
        text = gzip.decompress(raw) if model.suffix == ".gz" else raw
        enum = json.loads(text)["shapes"]["Compute"]["enum"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(enum, list) or not all(isinstance(name, str) for name in enum):
        return None
    return tuple(enum)


def botocore_version() -> str:
    """The installed botocore's version, as the warning names it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("botocore")
    except PackageNotFoundError:
        return "unknown"


def _model_file() -> Path | None:
    """The newest API version's model file of the installed botocore, if any."""
    try:
        found = importlib.util.find_spec("botocore")  # finds the package, never imports it
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    service = Path(next(iter(found.submodule_search_locations))) / "data" / _SERVICE
    try:
        versions = sorted((p for p in service.iterdir() if p.is_dir()), reverse=True)
    except OSError:
        return None
    for folder in versions:  # API versions are dates: the newest first
        for name in _MODEL_FILES:
            if (folder / name).is_file():
                return folder / name
    return None
