"""Organizer holds: the same service calls as `api/rest/allotments.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from pydantic import BaseModel

from headcount.api.graphql.operations import change, from_input, mine
from headcount.api.graphql.refusals import result_union
from headcount.capacity import allotments
from headcount.capacity.allotments import (
    HoldDraft,
    HoldRedeemDraft,
    HoldReleaseDraft,
    HoldSplitDraft,
)
from headcount.capacity.views import OrderView, OrganizerHoldSplit, OrganizerHoldView
from headcount.domain.errors import (
    EventFull,
    HoldCodeRefused,
    HoldShort,
    HoldTarget,
    IdempotencyKeyReused,
    InvalidQuantity,
    PoolExhausted,
    SoldOut,
)


class OrganizerHoldList(BaseModel):
    holds: list[OrganizerHoldView]


OrganizerHoldResult: Any = result_union("OrganizerHoldResult", OrganizerHoldView)
OrganizerHoldListResult: Any = result_union("OrganizerHoldListResult", OrganizerHoldList)
CreateOrganizerHoldResult: Any = result_union(
    "CreateOrganizerHoldResult",
    OrganizerHoldView,
    SoldOut,
    PoolExhausted,
    EventFull,
    InvalidQuantity,
    IdempotencyKeyReused,
    HoldTarget,
)
SplitOrganizerHoldResult: Any = result_union(
    "SplitOrganizerHoldResult", OrganizerHoldSplit, HoldShort, InvalidQuantity, IdempotencyKeyReused
)
ReleaseOrganizerHoldResult: Any = result_union(
    "ReleaseOrganizerHoldResult",
    OrganizerHoldView,
    HoldShort,
    InvalidQuantity,
    IdempotencyKeyReused,
)
RedeemOrganizerHoldResult: Any = result_union(
    "RedeemOrganizerHoldResult",
    OrderView,
    HoldShort,
    HoldCodeRefused,
    SoldOut,
    InvalidQuantity,
    IdempotencyKeyReused,
)


@strawberry.input
class CreateOrganizerHoldInput:
    event_id: strawberry.ID
    name: str
    quantity: int
    ticket_type_id: strawberry.ID | None = strawberry.field(
        default=None, description="Hold this type's stock (or give `poolId`)."
    )
    pool_id: strawberry.ID | None = strawberry.field(
        default=None, description="Hold this pool's room (or give `ticketTypeId`)."
    )
    redemption_code: str | None = None
    release_at: datetime | None = None


@strawberry.input
class SplitOrganizerHoldInput:
    id: strawberry.ID = strawberry.field(description="The hold the units come from.")
    name: str
    quantity: int
    redemption_code: str | None = None
    release_at: datetime | None = None


@strawberry.type
class OrganizerHoldQuery:
    @mine(allotments.list_holds, wrap=lambda found: OrganizerHoldList(holds=found))
    def organizer_holds(self, event_id: strawberry.ID) -> OrganizerHoldListResult:
        """The event's organizer holds, oldest first (the event's organizer only)."""

    @mine(allotments.get_hold)
    def organizer_hold(self, id: strawberry.ID) -> OrganizerHoldResult:
        """One organizer hold (the event's organizer only)."""


@strawberry.type
class OrganizerHoldMutation:
    @from_input(allotments.create_hold, HoldDraft, target="event_id")
    def create_organizer_hold(self, input: CreateOrganizerHoldInput) -> CreateOrganizerHoldResult:
        """Set `quantity` of a ticket type (or of a pool's room) aside by name, out of
        sale; it counts in the type's pools (the pool) and the event cap like an order."""

    @from_input(allotments.split_hold, HoldSplitDraft, target="id")
    def split_organizer_hold(self, input: SplitOrganizerHoldInput) -> SplitOrganizerHoldResult:
        """Move `quantity` units into a new named hold; nothing goes back on sale."""

    @change(allotments.release_hold, draft=HoldReleaseDraft)
    def release_organizer_hold(self, id: strawberry.ID) -> ReleaseOrganizerHoldResult:
        """Back on sale (all, or `quantity`): the waitlist head is offered the units first."""

    @change(allotments.redeem_hold, draft=HoldRedeemDraft)
    def redeem_organizer_hold(self, id: strawberry.ID) -> RedeemOrganizerHoldResult:
        """A pending order for the caller out of the hold, with its `code` (or by the
        organizer)."""
