"""What the service layer returns: plain, JSON-ready models shared by REST and GraphQL.

These are the one definition of every answer: REST serialises them as they are, and the
GraphQL object types are generated from them (`api/graphql/generate.py`). A field added
here appears in both APIs and in `schema.graphql`; its `description` (or the class
docstring) documents it in OpenAPI and in the GraphQL schema alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from headcount.domain import attendance, tickets
from headcount.domain.queue import QueueOrder, RoomStatus, TicketState
from headcount.ledger.models import Event, Order, TicketType


class View(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_row(cls, row: object, **computed: Any) -> Self:
        """The view of a ledger row: every field the row holds under the same name, and the
        ones the caller computes. One rule, so a column added to a row and its view needs no
        third edit, and a view field the row lacks (and the caller forgot) fails loudly."""
        shared = {name: getattr(row, name) for name in cls.model_fields if name not in computed}
        return cls(**shared, **computed)


def _not_set(value: object) -> bool:
    return value is None


class VirtualSettingsView(View):
    """How the event streams; a setting never made is left out (REST) or null (GraphQL)."""

    max_concurrent_viewers: int | None = Field(default=None, exclude_if=_not_set)
    stream_url: str | None = Field(default=None, exclude_if=_not_set)
    reconnect_grace_seconds: int | None = Field(default=None, exclude_if=_not_set)


class EventView(View):
    id: str
    organizer_id: str
    name: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    max_attendees: int | None
    virtual_settings: VirtualSettingsView
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, event: Event) -> EventView:
        return cls.from_row(
            event,
            virtual_settings=VirtualSettingsView.model_validate(event.virtual_settings or {}),
        )


class TicketTypeView(View):
    id: str
    event_id: str
    name: str
    quantity_total: int
    quantity_sold: int
    quantity_reserved: int
    quantity_available: int
    is_sold_out: bool
    max_per_order: int | None
    sales_start: datetime | None
    sales_end: datetime | None
    # Buyer limits, shared pools, and how far use exceeds a lowered total.
    min_per_order: int | None = None
    max_per_customer: int | None = None
    pool_ids: list[str] = []
    over_capacity_by: int = 0

    stock_buckets: int = Field(
        default=1,
        description="Rows the free stock is spread over (1 unless hot-inventory mode is on).",
    )
    release_after_exit: bool = Field(
        default=False, description="A holder leaving the venue gives the ticket back to sale."
    )

    @classmethod
    def of(
        cls,
        tt: TicketType,
        *,
        pool_ids: list[str] | None = None,
        shared_room: int | None = None,
        bucketed: tuple[int, int, int] | None = None,
    ) -> TicketTypeView:
        """`shared_room`: the least room left in the type's pools and event cap, if any.

        `bucketed`: (sold, held, free) of a hot-inventory type, whose row keeps no counters.
        """
        sold, reserved = tt.quantity_sold, tt.quantity_reserved
        left = tickets.available(tt.quantity_total, sold, reserved)
        if bucketed is not None:
            sold, reserved, left = bucketed
        if shared_room is not None:
            left = min(left, shared_room)
        return cls.from_row(
            tt,
            quantity_sold=sold,
            quantity_reserved=reserved,
            quantity_available=left,
            is_sold_out=left == 0,
            pool_ids=pool_ids or [],
            over_capacity_by=max(0, sold + reserved - tt.quantity_total),
        )


class OrderItemView(View):
    ticket_type_id: str
    quantity: int


class OrderView(View):
    id: str
    event_id: str
    owner_id: str
    status: tickets.OrderStatus
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    items: list[OrderItemView]

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls.from_row(
            order,
            status=tickets.OrderStatus(order.status),
            items=[
                OrderItemView(ticket_type_id=i.ticket_type_id, quantity=i.quantity)
                for i in order.items
            ],
        )


class TicketCapacity(View):
    """Ticket stock of an event, summed over its ticket types."""

    total: int
    sold: int
    reserved: int
    available: int
    is_sold_out: bool
    ticket_types: list[TicketTypeView]
    held_by_organizer: int = Field(
        default=0, description="Of `reserved`, the units set aside in organizer holds."
    )


# Event registrations, sessions and waitlists (capacity/registrations.py, sessions.py,
# waitlists.py).


class RegistrationView(View):
    id: str
    event_id: str
    attendee_id: str
    party_size: int
    status: attendance.RegistrationStatus
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None


class RegistrationCapacity(View):
    """`remaining` is null without a cap; it is 0, never negative, after a cap was lowered."""

    max_attendees: int | None
    registered: int
    remaining: int | None
    is_full: bool


class SessionView(View):
    id: str
    event_id: str
    title: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    max_participants: int
    current_attendance: int
    remaining: int
    is_full: bool
    waitlist_enabled: bool
    waitlist_length: int
    created_at: datetime
    updated_at: datetime


class WaitlistEntryView(View):
    """One place in a queue, and what became of it (`status`)."""

    id: str
    event_id: str
    session_id: str | None
    ticket_type_id: str | None
    attendee_id: str
    quantity: int
    seq: int
    status: attendance.EntryStatus
    position: int | None
    offered_quantity: int | None
    offer_expires_at: datetime | None
    order_id: str | None
    joined_at: datetime
    updated_at: datetime


class RsvpView(View):
    """Your place in a session: `status` is confirmed, waitlisted (with `position`), or none
    after leaving."""

    session_id: str
    attendee_id: str
    status: attendance.RsvpStatus
    position: int | None = None
    waitlist_entry: WaitlistEntryView | None = None


class WaitlistView(View):
    """The organizer's listing: live entries (waiting, or holding an offer) in queue order."""

    session_id: str | None
    ticket_type_id: str | None
    waiting: int
    offered: int
    entries: list[WaitlistEntryView]


# Live presence (booths, breakout rooms, stream viewers) and huddles. Live counts are
# `None` when the presence store is unreachable: the snapshot still shows the rest. A live
# place's head count is the people connected now; `in_grace` counts the places kept for
# people whose connection dropped (they count against the limit too, until they return
# or their grace ends).


def _in_grace() -> Any:
    return Field(
        description="places kept for people whose connection was lost without a leave, "
        "until they return or the grace ends; they count against the limit (null while "
        "the presence store is unreachable)"
    )


class LeaseView(View):
    """A place held right now; renew it before `expires_at`. If the connection is lost
    without a leave, the place stays the holder's for `grace_seconds` more: joining again
    meanwhile takes it back, even when the space is full."""

    lease_id: str
    kind: str
    resource_id: str
    holder: str
    expires_at: datetime
    ttl_seconds: float
    # A default, so an answer stored for an Idempotency-Key before grace existed replays.
    grace_seconds: float = Field(
        default=0.0, description="how long the place stays yours after a lost connection"
    )
    occupancy: int = Field(
        description="places taken now, those held in grace included: what the limit counts"
    )
    limit: int | None
    place: str | None = Field(
        default=None,
        description="how this join came by its place: `new`, `shared` (the holder's place, "
        "held by another of their connections) or `resumed` (taken back within its grace); "
        "null on a heartbeat",
    )


class BoothView(View):
    id: str
    event_id: str
    name: str
    description: str
    tier: str
    chat_enabled: bool
    video_enabled: bool
    max_visitors: int | None
    visitors: int | None
    in_grace: int | None = _in_grace()
    is_full: bool | None
    created_at: datetime
    updated_at: datetime


class BreakoutRoomView(View):
    id: str
    session_id: str
    event_id: str
    name: str
    capacity: int
    status: str
    participants: int | None
    in_grace: int | None = _in_grace()
    is_full: bool | None
    created_at: datetime
    closed_at: datetime | None


class HuddleView(View):
    id: str
    event_id: str
    name: str
    topic: str
    capacity: int
    members: int
    available: int
    is_full: bool
    version: int
    created_at: datetime


class HuddleMembershipView(View):
    joined: bool
    huddle: HuddleView


class PlaceInLine(View):
    """Waiting in line for a full live space (`?queue=1` on a join, answered 202). Ask
    again with the same request within `retry_after_seconds` (the `Retry-After` header):
    each ask keeps the place, and the ask that finds the caller at the head with a free
    place takes it and is answered with a lease. A caller who stops asking for
    `stale_after_seconds` loses the place in line."""

    status: str = "queued"
    kind: str
    resource_id: str
    position: int = Field(description="1 is next in line")
    queued: int = Field(description="people in line now")
    retry_after_seconds: float
    stale_after_seconds: float


class ViewerCapacity(View):
    """Live viewers; counts are null while the presence store is down. `available` and
    `is_full` count the places held in grace as taken."""

    limit: int | None
    viewers: int | None
    in_grace: int | None = _in_grace()
    available: int | None
    is_full: bool | None


# Capacity pools and the event-wide cap (capacity/pools.py).


class PoolView(View):
    """Capacity shared by several ticket types; `capacity` is physical, `admission_limit`
    adds the opt-in overbooking allowance."""

    id: str
    event_id: str
    name: str
    capacity: int | None
    overbook_ratio: float
    admission_limit: int | None
    max_per_customer: int | None
    quantity_used: int
    quantity_available: int | None
    over_capacity_by: int
    is_exhausted: bool
    ticket_type_ids: list[str]
    held_by_organizer: int = Field(
        default=0, description="Of `quantity_used`, the units pool holds set aside."
    )
    created_at: datetime
    updated_at: datetime


class OrganizerHoldView(View):
    """Stock an organizer set aside by name (sponsors, press, staff): out of sale, counted in
    its ticket type's `quantity_reserved`, its pools and the event cap (or, on a pool, in
    that pool and the event cap only), until split off, released to the public or
    redeemed as orders."""

    id: str
    event_id: str
    ticket_type_id: str | None = Field(description="The ticket type held; null on a pool hold.")
    pool_id: str | None = Field(
        default=None,
        description="The pool whose room is held, whichever member type it is redeemed as; "
        "null on a ticket-type hold.",
    )
    name: str
    quantity: int = Field(description="Units the hold still sets aside.")
    redemption_code: str | None = Field(
        description="Anyone with this code may redeem the hold; null: the organizer only."
    )
    release_at: datetime | None = Field(
        description="When what is left goes back on sale by itself (waitlists first)."
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class OrganizerHoldSplit(View):
    """A split: the hold the units came from, and the new hold they now make up."""

    source: OrganizerHoldView
    split: OrganizerHoldView


class EventTotalView(View):
    """`max_attendees` caps people: registrations (with guests) plus tickets held or sold."""

    max_attendees: int | None
    registered: int
    tickets: int
    remaining: int | None
    over_capacity_by: int


class QueueFiguresView(View):
    """A waiting room's live figures, from the queue store (not the ledger)."""

    queued: int
    active_buyers: int
    admitted_total: int
    admitted_last_minute: int
    median_wait_seconds: float | None = Field(
        description="median wait of the newest admissions (up to 2,000), in seconds"
    )


class WaitingRoomView(View):
    """A fair queue in front of an event's sale (docs/waiting-room.md)."""

    id: str
    event_id: str
    ticket_type_ids: list[str] | None = Field(
        description="the ticket types behind the room; null: every ticket type of the event"
    )
    opens_at: datetime
    active_limit: int
    admit_per_minute: int
    pass_ttl_seconds: int
    order: QueueOrder
    status: RoomStatus
    created_at: datetime
    updated_at: datetime
    figures: QueueFiguresView | None = None


class QueueTicketView(View):
    """A visitor's place in a waiting room; `queue_pass` once admitted (order with it)."""

    ticket: str
    room_id: str
    event_id: str
    state: TicketState
    position: int | None
    people_ahead: int | None
    queued: int
    eta_seconds: int | None
    queue_pass: str | None = None
    pass_expires_at: datetime | None = None
    waitlist_ticket_type_ids: list[str] | None = Field(
        default=None,
        description="when sold out: the ticket types whose waitlist the visitor may join",
    )


class AreaView(View):
    """A place with a door and the people inside it: distinct credentials, never a tally.

    `inside` counts those at this area or at one below it (someone in a hall is in the
    venue). `warning` is true from 90 % of `max_occupancy`.
    """

    id: str
    event_id: str
    parent_id: str | None
    name: str
    max_occupancy: int | None
    allow_reentry: bool
    checkout_at: datetime | None = Field(
        default=None, description="When everyone still inside is checked out (once)."
    )
    inside: int
    remaining: int | None
    is_full: bool
    warning: bool
    created_at: datetime
    updated_at: datetime


class ScanView(View):
    """What a scan did. `admitted` is what the gate shows in big letters.

    `outcome`: `accepted` (the credential moved), `already_inside` (an entry that moved
    nobody: let through only where the area allows re-entry), `not_inside` (an exit of
    someone not inside: recorded, changes nothing), `flagged` (an offline entry that took
    an area past its maximum: it happened, so it counts, and the organizer is told).
    `duplicate`: this `scan_id` was applied before; the first answer is repeated.
    """

    scan_id: str
    area_id: str
    credential: str
    direction: str
    source: str
    outcome: str
    admitted: bool
    duplicate: bool = False
    scanned_at: datetime
    inside: int = Field(description="The area's occupancy right after this scan.")
    max_occupancy: int | None = None
    released_to_sale: bool = Field(
        default=False, description="A `release_after_exit` ticket unit went back on sale."
    )


class BatchScanResult(View):
    """One scan of an offline batch: `accepted`, `duplicate`, `conflicted` (stored, but it
    moved nobody or took an area past its maximum: see `scan.outcome`) or `rejected`
    (not stored: `code` says why, e.g. `unknown_credential`)."""

    scan_id: str
    status: str
    code: str | None = None
    detail: str | None = None
    scan: ScanView | None = None


class ScanBatchView(View):
    """An offline batch applied in scan-time order per credential, results in upload order."""

    event_id: str
    accepted: int
    duplicates: int
    conflicted: int
    rejected: int
    results: list[BatchScanResult]


class AreaResetView(View):
    """An organizer's reset: everyone inside the area checked out, each recorded."""

    area: AreaView
    checked_out: int


class CapacitySnapshot(View):
    """One consistent read of every capacity of an event."""

    event_id: str
    taken_at: datetime
    # How stale the durable figures may be: read from a replica `replica_lag_ms` behind
    # the primary, they show the ledger `as_of` (taken_at minus the lag); from the
    # primary the lag is 0 and `as_of` is `taken_at`. Live counts are always current.
    as_of: datetime
    replica_lag_ms: int = 0
    max_attendees: int | None
    tickets: TicketCapacity
    registrations: RegistrationCapacity | None = None
    sessions: list[SessionView] = []
    viewers: ViewerCapacity | None = None
    booths: list[BoothView] = []
    breakout_rooms: list[BreakoutRoomView] = []
    huddles: list[HuddleView] = []
    pools: list[PoolView] = []
    event_total: EventTotalView | None = None
    waiting_room: WaitingRoomView | None = None
    areas: list[AreaView] = []


class WebhookView(View):
    """A webhook endpoint: where an organizer's changes are sent (docs/webhooks.md)."""

    id: str
    url: str
    description: str
    organizer_id: str | None = Field(
        description="whose events it receives; null: every event (the platform service's)"
    )
    event_ids: list[str] | None = Field(
        description="only these events; null: every event of `organizer_id`"
    )
    types: list[str] = Field(description="change types or `<resource>.*`; empty: every type")
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="first failure since the last success")
    failures_in_a_row: int
    last_success_at: datetime | None
    pending_deliveries: int
    created_at: datetime
    updated_at: datetime


class WebhookWithSecretView(WebhookView):
    """The endpoint and its signing secret, shown only when it is created or rotated."""

    secret: str = Field(description="`whsec_…`: verify every delivery with it; shown once")


class WebhookDeliveryView(View):
    """One change sent to one endpoint, with the outcome of its last attempt."""

    id: str = Field(description="the `webhook-id` header: the same on every attempt")
    endpoint_id: str
    event_id: str
    type: str
    cursor: str = Field(description="the change's position in the change feed")
    status: str = Field(description="pending, delivered or failed (given up)")
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None = Field(description="the start of the receiver's last answer")
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any] = Field(description="exactly what is signed and sent")


# The change log: the feed and the audit trail (capacity/feed.py, docs/changes.md).


class ChangeView(View):
    """One durable decision, in commit order. `payload` has the shape its `type` names
    (docs/changes.md); `cursor` resumes the feed right after this change."""

    id: str
    cursor: str
    type: str
    event_id: str
    resource_type: str
    resource_id: str
    actor_sub: str | None = Field(description="Who decided it (`headcount` for the service).")
    actor_role: str | None = Field(description="attendee, organizer, service, or system.")
    request_id: str | None = Field(description="The request that made it (X-Request-Id).")
    occurred_at: datetime
    payload: dict[str, Any]


class ChangePage(View):
    """Changes after the cursor asked for, in position order. Pass `next` as `after` to
    go on: it moves past what this page returned, and past every position known to hold
    nothing for this query."""

    changes: list[ChangeView]
    next: str
    has_more: bool


class AuditEntry(View):
    """An organizer's change to a capacity: who, when, from what (`before`, null when it
    was created) to what (`after`), only the fields that moved."""

    id: str
    cursor: str
    type: str
    resource_type: str
    resource_id: str
    actor_sub: str | None
    actor_role: str | None
    request_id: str | None
    occurred_at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any]


class AuditPage(View):
    """Audit entries in the order they were made; `next` continues after this page."""

    entries: list[AuditEntry]
    next: str
    has_more: bool
