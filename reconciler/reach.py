"""Reaching the accounts of a specs folder's account map: one boto3 session per account.

The run's own credentials (a CI role from GitHub's OIDC, a profile) are the base. An account
with a `role` is reached through STS `AssumeRole` (session name `workspaces-image-reconciler`,
its `external_id` if given), with botocore's own refreshable credentials: botocore assumes
the role when the first call needs it and again before the credentials expire, so a long
`apply --wait` outlives their hour without a timer of ours. An account without a role is
reached with the base credentials, and must be the base's own account.

`reach` proves every account before any change: one `sts:GetCallerIdentity` through each
account's session (which makes the AssumeRole), in parallel; an account that can't be
reached, or that answers as another account, stops the run naming its name, id and role and
what AWS answered. Nothing below the session needs to know how its credentials came.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.session

from reconciler.aws import derived_session, error_code, error_message
from reconciler.errors import AwsError, ConfigError

SESSION_NAME = "workspaces-image-reconciler"
# AssumeRole's default; botocore renews the credentials once less than 15 minutes remain.
DURATION_SECONDS = 3600
# AssumeRole's bounds for DurationSeconds (the role's own maximum may be lower).
DURATION_RANGE = (900, 43200)
DURATION_VARIABLE = "RECONCILER_ASSUME_ROLE_SECONDS"


def duration_seconds() -> int:
    """How long assumed credentials last: RECONCILER_ASSUME_ROLE_SECONDS, else an hour
    (a role's maximum session can be as short as that). botocore renews them 15 minutes
    before they expire, so any run outlives them."""
    written = os.environ.get(DURATION_VARIABLE, "").strip()
    if not written:
        return DURATION_SECONDS
    low, high = DURATION_RANGE
    if not written.isdigit() or not low <= int(written) <= high:
        raise ConfigError(
            f"{DURATION_VARIABLE}={written!r} is not a whole number of seconds from {low} to "
            f"{high}",
            hint=f"unset it (an hour), or give AssumeRole's DurationSeconds within {low}-{high}",
        )
    return int(written)


@dataclass(frozen=True)
class Target:
    """An account of the map, as the run reaches it."""

    name: str
    account_id: str
    role: str | None = None
    external_id: str | None = None

    def shown(self) -> str:
        role = f", role {self.role}" if self.role else ", the run's own credentials"
        return f"account {self.name} ({self.account_id}{role})"


def account_session(
    base: boto3.session.Session,
    target: Target,
    *,
    endpoint_url: str | None = None,
    duration_seconds: int = DURATION_SECONDS,
    region: str | None = None,
) -> boto3.session.Session:
    """A session whose calls act in `target`'s account: the base session itself for an
    account without a role, else one with refreshable AssumeRole credentials drawn from the
    base's (STS through `endpoint_url` like every other API, in `region`: the run's, which
    botocore can't find when it comes from AWS_REGION or --region)."""
    if target.role is None:
        return base
    source = base.get_credentials()
    if source is None:
        raise AwsError(
            f"{target.shown()}: the run has no AWS credentials to assume the role with",
            hint="configure credentials (a profile, environment variables or an OIDC role)",
        )
    extra: dict[str, Any] = {
        "RoleSessionName": SESSION_NAME,
        "DurationSeconds": duration_seconds,
    }
    if target.external_id:
        extra["ExternalId"] = target.external_id
    base_core = base._session
    sts_region = region or base.region_name or "us-east-1"

    def sts_client(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("region_name", sts_region)
        return base_core.create_client(service, endpoint_url=endpoint_url, **kwargs)

    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=source,
        role_arn=target.role,
        extra_args=extra,
    )
    credentials = botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    return derived_session(base, credentials, sts_region)


def reach(
    sessions: Mapping[str, boto3.session.Session],
    targets: Sequence[Target],
    *,
    region: str,
    endpoint_url: str | None = None,
) -> None:
    """`prove`, each account asked through its own session."""

    def identify(target: Target) -> str:
        sts = sessions[target.name].client("sts", region_name=region, endpoint_url=endpoint_url)
        return str(sts.get_caller_identity()["Account"])

    prove(targets, identify)


def prove(targets: Sequence[Target], identify: Callable[[Target], str]) -> None:
    """Prove every account reachable before any change: one GetCallerIdentity each (the
    AssumeRole happens there; `identify` makes it), in parallel. Raises AwsError naming every
    account that can't be reached or answers as another account."""

    def answer(target: Target) -> str | None:
        try:
            found = identify(target)
        except botocore.exceptions.ClientError as err:
            return f"{target.shown()}: {error_code(err)}: {error_message(err)}"
        except botocore.exceptions.BotoCoreError as err:
            return f"{target.shown()}: {err}"
        if found != target.account_id:
            return f"{target.shown()}: its credentials act in account {found}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
        failures = [f for f in pool.map(answer, targets) if f]
    if failures:
        raise AwsError(
            "cannot reach every account of the map; nothing was changed in any account:\n"
            + "\n".join(f"  - {f}" for f in failures),
            hint="check each role's trust policy (it must trust the run's base role, with "
            "the external_id if one is given) and the account ids of the map",
        )
