"""In-process tests of plan, apply and wait: moto's mock plus the fidelity layer, and plans
built the real way from spec files (`build_plan`), with pacing off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from moto import mock_aws

from reconciler.apply import Applied, AppliedItem
from reconciler.aws import AwsSettings, Clients
from reconciler.plan import Plan
from reconciler.run import PlanOptions, build_plan
from tests.fidelity import Fidelity, FidelityConfig, installed

REGION = "eu-west-1"


@contextmanager
def local_account(config: FidelityConfig | None = None) -> Iterator[Fidelity]:
    with mock_aws(), installed(config or FidelityConfig()) as handle:
        yield handle


@contextmanager
def unpaced_clients() -> Iterator[Clients]:
    made = Clients(AwsSettings(region=REGION, api_rate=0))
    try:
        yield made
    finally:
        made.close()


def spec(name: str, source: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "description": f"Image {name}",
        "source_workspace_id": source,
    }
    if tags:
        doc["tags"] = tags
    return doc


def plan_for(tmp_path: Path, clients: Clients, *docs: dict[str, Any]) -> Plan:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "images.yaml").write_text(
        "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs), encoding="utf-8"
    )
    plan, _ = build_plan(PlanOptions(specs_dir=str(specs)), clients)
    return plan


def by_name(applied: Applied) -> dict[str, AppliedItem]:
    return {i.name: i for i in applied.items}


def live(fidelity: Fidelity) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in fidelity.images(REGION)}
