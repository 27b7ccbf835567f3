"""Checks of the settings that say how to reach AWS: endpoint URLs, the read timeout, regions.

Each bad value is a `ConfigError` that names the option or variable it came from and shows
what a valid one looks like, before any call is made (boto3 would raise a bare ValueError
at client creation, or try an unknown host until its retries run out).

Known regions come from botocore's endpoint data, installed with boto3 (no call): the
regions where WorkSpaces is offered, every region botocore knows, and each partition's
region-name pattern. Against AWS a region must be one where WorkSpaces is offered; with a
custom endpoint (a local one such as moto's) any well-formed region name works.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import botocore
import botocore.session
import botocore.utils

from reconciler.errors import ConfigError

DEFAULT_READ_TIMEOUT = 30.0
READ_TIMEOUT_VARIABLE = "RECONCILER_READ_TIMEOUT"
MAX_READ_TIMEOUT = 3600.0
# boto3's endpoint variables for the APIs the reconciler calls (WorkSpaces and the Resource
# Groups Tagging API); the service-specific ones win over AWS_ENDPOINT_URL.
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_WORKSPACES",
    "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API",
    "AWS_ENDPOINT_URL",
)
ENDPOINT_HINT = (
    "write it as http(s)://HOST[:PORT], such as http://localhost:4566 or "
    "https://workspaces.eu-west-1.amazonaws.com"
)


def read_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds to wait for one AWS reply: RECONCILER_READ_TIMEOUT, else the default."""
    raw = environ.get(READ_TIMEOUT_VARIABLE, "")
    if not raw.strip():  # set but empty, as CI templates leave it: the default
        return DEFAULT_READ_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_READ_TIMEOUT:  # NaN fails this too
        raise ConfigError(
            f"{READ_TIMEOUT_VARIABLE}={raw!r} is not a number of seconds above 0 and at most "
            f"{MAX_READ_TIMEOUT:g}",
            hint=f"set it to how long to wait for one AWS reply, such as "
            f"{READ_TIMEOUT_VARIABLE}=30 (the default), or unset it",
        )
    return value


def endpoint_problem(url: str) -> str | None:
    """Why `url` can't be an endpoint URL, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        return "it is not a well-formed URL"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"the port '{parts.netloc.rpartition(':')[2]}' is not a number from 1 to 65535"
    if not (
        botocore.utils.is_valid_endpoint_url(url) or botocore.utils.is_valid_ipv6_endpoint_url(url)
    ):
        return "the host is not a valid host name or IP address (no spaces or odd characters)"
    return None


def check_endpoint_url(url: str, source: str) -> None:
    """Raises ConfigError naming `source` (an option or variable) when `url` is malformed."""
    why = endpoint_problem(url)
    if why is not None:
        raise ConfigError(f"{source} is not a valid endpoint URL ({url!r}): {why}", ENDPOINT_HINT)


def configured_endpoints(
    option: str | None,
    session: botocore.session.Session,
    environ: Mapping[str, str] = os.environ,
) -> tuple[tuple[str, str], ...]:
    """(where it is set, URL) of each endpoint the run's clients use instead of AWS's own,
    every one checked. `option` is --endpoint-url, which serves every API when given."""
    if option:
        check_endpoint_url(option, "--endpoint-url")
        return (("--endpoint-url", option),)
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return ()  # boto3 then ignores every variable and profile setting below
    found = [(name, environ[name]) for name in ENDPOINT_VARIABLES if environ.get(name)]
    in_profile = session.get_scoped_config().get("endpoint_url")
    if isinstance(in_profile, str) and in_profile:
        profile = session.get_config_variable("profile") or "default"
        found.append((f"endpoint_url of AWS profile '{profile}'", in_profile))
    for source, url in found:
        check_endpoint_url(url, source)
    return tuple(found)


@dataclass(frozen=True)
class _Regions:
    workspaces: frozenset[str]  # where WorkSpaces is offered
    known: frozenset[str]  # every region botocore knows, in every partition
    patterns: tuple[re.Pattern[str], ...]  # each partition's region-name pattern


@functools.cache
def _regions() -> _Regions:
    session = botocore.session.get_session()
    partitions = session.get_component("data_loader").load_data("endpoints")["partitions"]
    patterns = tuple(re.compile(p["regionRegex"]) for p in partitions)
    known = {
        r for p in partitions for r in p.get("regions", {}) if any(x.match(r) for x in patterns)
    }
    workspaces = {
        r
        for name in session.get_available_partitions()
        for r in session.get_available_regions("workspaces", partition_name=name)
    }
    return _Regions(frozenset(workspaces), frozenset(known | workspaces), patterns)


def workspaces_regions() -> list[str]:
    """Every region where WorkSpaces is offered, in every partition, per botocore."""
    return sorted(_regions().workspaces)


def region_problem(region: str, *, custom_endpoint: bool) -> str | None:
    """Why WorkSpaces can't be called in `region`, or None."""
    data = _regions()
    if region in data.workspaces:
        return None
    well_formed = any(p.match(region) for p in data.patterns)
    if well_formed and custom_endpoint:
        return None
    if well_formed and region in data.known:
        return f"WorkSpaces is not offered in {region}"
    close = difflib.get_close_matches(region.lower(), sorted(data.known), n=1, cutoff=0.75)
    guess = f"; did you mean {close[0]}?" if close else ""
    if not well_formed:
        return f"'{region}' is not a region name{guess}"
    return f"unknown region '{region}'{guess}"


def region_hint() -> str:
    return (
        "use a region where WorkSpaces is offered: "
        f"{', '.join(workspaces_regions())} (per botocore {botocore.__version__}; upgrade "
        "boto3 for a region newer than that)"
    )
