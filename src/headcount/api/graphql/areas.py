"""The door: areas, scans, offline batches and corrections, as `api/rest/areas.py` offers them.

A scan's `scanId` is its idempotency key (unique per event), so these mutations take no
`idempotencyKey` of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from pydantic import BaseModel, ConfigDict

from headcount.api.graphql.operations import by_id, drafted, field, mine
from headcount.api.graphql.refusals import result_union
from headcount.capacity import areas, scans
from headcount.capacity.areas import AreaDraft
from headcount.capacity.scans import CheckoutDraft, ScanBatch, ScanDraft
from headcount.capacity.views import AreaResetView, AreaView, ScanBatchView, ScanView
from headcount.domain import errors
from headcount.domain.occupancy import Direction

strawberry.enum(Direction, name="ScanDirection")

_BAD_SCAN = (
    errors.MalformedCredential,
    errors.UnknownCredential,
    errors.CredentialOtherEvent,
    errors.TicketReleased,
    errors.ScanIdReused,
)
AreaResult: Any = result_union("CreateAreaResult", AreaView)
ScanResult: Any = result_union(
    "ScanResult", ScanView, errors.AreaFull, errors.AlreadyInside, *_BAD_SCAN
)
ScanBatchResult: Any = result_union("ScanBatchResult", ScanBatchView)
CheckoutResult: Any = result_union("CheckoutResult", ScanView, *_BAD_SCAN)
ResetResult: Any = result_union("AreaResetResult", AreaResetView)


@strawberry.input
class OfflineScan:
    area_id: strawberry.ID
    scan_id: str
    credential: str
    direction: Direction
    scanned_at: datetime


class AreaList(BaseModel):
    """An event's areas, innermost counted into the areas around them."""

    model_config = ConfigDict(frozen=True)
    areas: list[AreaView]


AreaListResult: Any = result_union("AreaListResult", AreaList)


@strawberry.type
class AreaQuery:
    area = by_id(areas.get_area, AreaView)

    @field()
    async def areas(self, info: strawberry.Info, event_id: strawberry.ID) -> AreaListResult:
        """The event's areas and the people inside each."""
        return AreaList(areas=await areas.list_areas(info.context.runtime, event_id))


@strawberry.type
class AreaMutation:
    @drafted(areas.create_area, draft=AreaDraft)
    def create_area(
        self,
        event_id: strawberry.ID,
        *,
        name: str,
        parent_id: strawberry.ID | None = None,
        max_occupancy: int | None = None,
        allow_reentry: bool = False,
    ) -> AreaResult:
        """A venue, or (with `parent_id`) a hall or room inside another area."""

    @drafted(scans.scan, draft=ScanDraft)
    def scan(
        self,
        area_id: strawberry.ID,
        *,
        scan_id: str,
        credential: str,
        direction: Direction,
        scanned_at: datetime | None = None,
    ) -> ScanResult:
        """An entry or exit at the area's gate; `AreaFull` / `AlreadyInside` refuse an
        entry and change nothing. A retried `scanId` answers as the first time."""

    @field(mutation=True)
    async def scan_batch(
        self, info: strawberry.Info, event_id: strawberry.ID, batch: list[OfflineScan]
    ) -> ScanBatchResult:
        """An offline gate's scans, applied in scan-time order, each's fate listed."""
        who = info.context.principal()
        uploaded = ScanBatch.model_validate({"scans": [vars(s) for s in batch]})
        return await scans.scan_batch(info.context.runtime, who, event_id, uploaded)

    @drafted(scans.force_exit, draft=CheckoutDraft)
    def check_out(self, area_id: strawberry.ID, credential: str) -> CheckoutResult:
        """The organizer checks one credential out of the area (a recorded correction)."""

    @mine(scans.reset_area, mutation=True)
    def reset_area(self, area_id: strawberry.ID) -> ResetResult:
        """Check everyone out of the area and the areas inside it (the nightly reset)."""
