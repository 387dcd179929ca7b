"""/events/{id}/holds: organizer holds (named stock set aside), split, released, redeemed.

The issue's path says "holds"; the code says allotments, because a pending order is
already "a hold" (`HEADCOUNT_HOLD_TTL`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, IdempotencyKey, id_path, problems
from headcount.capacity import allotments
from headcount.capacity.allotments import (
    HoldDraft,
    HoldRedeemDraft,
    HoldReleaseDraft,
    HoldSplitDraft,
)
from headcount.capacity.views import OrderView, OrganizerHoldSplit, OrganizerHoldView

router = APIRouter(tags=["organizer holds"])
HoldId = Annotated[str, id_path("hold")]


@router.post("/events/{event_id}/holds", status_code=201, responses=problems(401, 403, 404, 409))
async def create_hold(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    body: HoldDraft,
    key: IdempotencyKey = None,
) -> OrganizerHoldView:
    """Take `quantity` of a ticket type (`ticket_type_id`) out of sale, counted in its pools
    and the event cap like an order (refused as one: `sold_out`, `pool_exhausted`,
    `event_full`); or of a pool's room (`pool_id`), counted in that pool and the event cap.
    Exactly one of the two (422 `hold_target`)."""
    return await allotments.create_hold(rt, who, event_id, body, idempotency_key=key)


@router.get("/events/{event_id}/holds", responses=problems(401, 403, 404))
async def list_holds(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId
) -> list[OrganizerHoldView]:
    return await allotments.list_holds(rt, who, event_id)


@router.get("/events/{event_id}/holds/{hold_id}", responses=problems(401, 403, 404))
async def get_hold(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, hold_id: HoldId
) -> OrganizerHoldView:
    return await allotments.get_hold(rt, who, hold_id, event_id=event_id)


@router.post(
    "/events/{event_id}/holds/{hold_id}/split",
    status_code=201,
    responses=problems(401, 403, 404, 409),
)
async def split_hold(
    *,
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    hold_id: HoldId,
    body: HoldSplitDraft,
    key: IdempotencyKey = None,
) -> OrganizerHoldSplit:
    """Move `quantity` units into a new named hold; nothing goes back on sale."""
    return await allotments.split_hold(
        rt, who, hold_id, body, idempotency_key=key, event_id=event_id
    )


@router.post("/events/{event_id}/holds/{hold_id}/release", responses=problems(401, 403, 404, 409))
async def release_hold(
    *,
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    hold_id: HoldId,
    body: Annotated[HoldReleaseDraft | None, Body()] = None,
    key: IdempotencyKey = None,
) -> OrganizerHoldView:
    """Back on sale: all that is left (no body), or `quantity`. The ticket type's waitlist
    is offered the units first, as with a cancelled order."""
    return await allotments.release_hold(
        rt, who, hold_id, body or HoldReleaseDraft(), idempotency_key=key, event_id=event_id
    )


@router.post(
    "/events/{event_id}/holds/{hold_id}/redeem",
    status_code=201,
    responses=problems(401, 403, 404, 409, 429),
)
async def redeem_hold(
    *,
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    hold_id: HoldId,
    body: HoldRedeemDraft,
    key: IdempotencyKey = None,
) -> OrderView:
    """A pending order of `quantity` for the caller, out of the hold (with its `code`, or
    by the organizer); confirm it as any order. A pool hold's order is for the member
    `ticket_type_id` named, out of that type's own stock (`sold_out` if it has none)."""
    return await allotments.redeem_hold(
        rt, who, hold_id, body, idempotency_key=key, event_id=event_id
    )
