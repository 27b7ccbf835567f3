"""The live state as plain data: what the reader found in AWS, per region.

`inventory.py` and the kind modules read AWS into these types; the planners, pure
functions, judge them against the specs. Only what every kind shares is here: a region's
inventory holds one part per kind, of a type that kind's module declares (its live types,
its counts). Nothing here imports boto3 or the AWS layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from reconciler import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE

Tags = Mapping[str, str]
Progress = Callable[[str, str, int, int], None]  # region, phase, done, total


def owned(tags: Tags) -> bool:
    return tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE


@runtime_checkable
class UsesImages(Protocol):
    """A kind's part whose resources use images (bundles): an image is kept while any
    resource uses it."""

    def users_of(self, image_id: str) -> Iterable[str]: ...


P = TypeVar("P")


@dataclass(frozen=True)
class RegionInventory:
    """One region's live state: each kind's part (`kinds.image.ImageLive`, ...), by its
    type. A kind reads its own part, or another's, through that kind module's accessor."""

    region: str
    parts: Mapping[type, object] = field(default_factory=dict)

    @classmethod
    def of(cls, region: str, *parts: object) -> RegionInventory:
        return cls(region, {type(p): p for p in parts})

    def part(self, of: type[P]) -> P | None:
        """The part of this type; None: not read here."""
        found = self.parts.get(of)
        assert found is None or isinstance(found, of)
        return found

    def with_part(self, part: object) -> RegionInventory:
        return dataclasses.replace(self, parts={**self.parts, type(part): part})

    def image_users(self, image_id: str) -> tuple[str, ...]:
        """The resources here, of any kind, found using an image, by name."""
        return tuple(
            sorted(
                name
                for part in self.parts.values()
                if isinstance(part, UsesImages)
                for name in part.users_of(image_id)
            )
        )


@dataclass(frozen=True)
class Inventory:
    regions: Mapping[str, RegionInventory]
