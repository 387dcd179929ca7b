"""/areas: the door — areas and their occupancy, scans, offline batches, corrections."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, id_path, problems
from headcount.api.rest.routes import event_resource
from headcount.capacity import areas, scans
from headcount.capacity.scans import CheckoutDraft, ScanBatch, ScanDraft
from headcount.capacity.views import AreaResetView, ScanBatchView, ScanView

router = APIRouter(tags=["areas"])
AreaId = Annotated[str, id_path("area")]


DOCS = {
    "create": "A venue, or (with `parent_id`) a hall or room inside another area.",
    "update": "A maximum lowered below the people inside evicts nobody; entries wait for room.",
}
event_resource(router, "area", areas, docs=DOCS)


@router.post("/areas/{area_id}/scans", responses=problems(401, 403, 404, 409))
async def scan(rt: RuntimeDep, who: PrincipalDep, area_id: AreaId, body: ScanDraft) -> ScanView:
    """An `entry` or `exit` at the area's gate. 409 `area_full` or `already_inside`
    refuse an entry and change nothing; bad credentials get `malformed_credential`,
    `unknown_credential`, `credential_other_event` or `ticket_released`. A retried
    `scan_id` answers as the first time (`duplicate: true`)."""
    return await scans.scan(rt, who, area_id, body)


@router.post("/events/{event_id}/scans/batch", responses=problems(401, 403, 404))
async def scan_batch(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: ScanBatch
) -> ScanBatchView:
    """An offline gate's scans, applied in scan-time order: each is `accepted`,
    `duplicate`, `conflicted` (stored: flagged past the maximum, or moved nobody) or
    `rejected` (a bad credential: not stored)."""
    return await scans.scan_batch(rt, who, event_id, body)


@router.post("/areas/{area_id}/checkout", responses=problems(401, 403, 404, 409))
async def force_exit(
    rt: RuntimeDep, who: PrincipalDep, area_id: AreaId, body: CheckoutDraft
) -> ScanView:
    """The organizer checks one credential out of the area (a recorded correction)."""
    return await scans.force_exit(rt, who, area_id, body)


@router.post("/areas/{area_id}/reset", responses=problems(401, 403, 404))
async def reset_area(rt: RuntimeDep, who: PrincipalDep, area_id: AreaId) -> AreaResetView:
    """Check everyone out of the area and the areas inside it (the nightly reset)."""
    return await scans.reset_area(rt, who, area_id)
