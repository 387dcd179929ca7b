"""Every refusal Headcount can give, one type each.

Each error carries a stable `code` that clients branch on, and an HTTP status; the API layer
maps them once to RFC 9457 problem responses (REST) or typed results (GraphQL).

An error also declares, as annotations, the extension members it may carry (`pool_id: str |
None`). A raise passes them as keyword arguments; they become the instance's attributes (None
when the raise leaves one out), the extra members of the REST problem body (only those
passed), and the fields of the error's GraphQL refusal type. A member with a default is
always present. Declaring a member here is the whole of adding it to both APIs.
"""

from __future__ import annotations

import re
import typing
from typing import Any, ClassVar


class HeadcountError(Exception):
    """A refusal: the request was understood and deliberately not carried out.

    Subclasses name their `status` and `title` in the class statement
    (`class SoldOut(HeadcountError, status=409, title="Sold out")`); a subclass that leaves
    one out inherits it. The `code` is the class name in snake_case (`sold_out`), so the
    name clients branch on and the GraphQL type name are one word spelled once: renaming a
    refusal changes the public contract.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init_subclass__(cls, *, status: int | None = None, title: str | None = None) -> None:
        super().__init_subclass__()
        if "code" not in vars(cls):
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        declared = members_of(type(self))
        defaults = {name: getattr(self, name) for name in declared if hasattr(self, name)}
        self.extra = {**defaults, **extra}
        for name in declared:
            setattr(self, name, self.extra.get(name))


def members_of(error: type[HeadcountError]) -> dict[str, Any]:
    """The extension members `error` declares (its own and inherited), with their types.

    Read from the class annotations, so the GraphQL side can build a refusal type from them
    without this module knowing GraphQL exists. Read once per class: refusals are raised on
    the hottest paths.
    """
    found = _MEMBERS.get(error)
    if found is None:
        hints = typing.get_type_hints(error)
        found = {n: hint for n, hint in hints.items() if typing.get_origin(hint) is not ClassVar}
        _MEMBERS[error] = found
    return found


_MEMBERS: dict[type[HeadcountError], dict[str, Any]] = {}


class InvalidRequest(HeadcountError, status=422, title="The request is not valid"):
    ticket_type_id: str | None
    pool_id: str | None
    overbook_ratio: float | None


class MalformedRequest(HeadcountError, status=400, title="The request body could not be parsed"):
    pass


class PayloadTooLarge(HeadcountError, status=413, title="The request body is too large"):
    pass


class InvalidQuantity(HeadcountError, status=422, title="Quantity not allowed"):
    ticket_type_id: str | None
    max_per_order: int | None
    min_per_order: int | None
    max_party_size: int | None
    max_quantity: int | None


class Unauthorized(HeadcountError, status=401, title="Authentication required"):
    pass


class Forbidden(HeadcountError, status=403, title="Not allowed"):
    pass


class NotFound(HeadcountError, status=404, title="Not found"):
    pass


class QueuePassRequired(Forbidden, title="A waiting-room pass is required"):
    """The ticket types are behind an active waiting room: queue (`POST
    /events/{id}/queue`) and order with the pass it gives. A forged, lapsed, used or
    someone else's pass is refused the same way; `room_id` names the room."""

    room_id: str | None


class Conflict(HeadcountError, status=409, title="Conflicts with the current state"):
    """The current state forbids the change; the members say which state."""

    order_status: str | None
    current_attendance: int | None
    free: int | None


class IdempotencyKeyReused(
    HeadcountError, status=422, title="Idempotency-Key was already used for a different request"
):
    pass


class SoldOut(HeadcountError, status=409, title="Sold out"):
    ticket_type_id: str | None
    requested: int | None


class PoolExhausted(SoldOut, title="The shared capacity pool is exhausted"):
    """A shared capacity pool has too little left; `pool_id` names it."""

    pool_id: str | None
    pool_name: str | None
    remaining: int | None
    ticket_type_ids: list[str] | None


class CustomerLimitReached(HeadcountError, status=409, title="Per-customer limit reached"):
    """The buyer already holds or bought as many as a ticket type's or pool's
    `max_per_customer` allows."""

    ticket_type_id: str | None
    pool_id: str | None
    max_per_customer: int | None
    already: int | None
    requested: int | None


class SalesClosed(HeadcountError, status=409, title="Sales are not open"):
    ticket_type_id: str | None


class HoldShort(HeadcountError, status=409, title="The organizer hold has fewer units than asked"):
    """A split, release or redemption asked for more units than the organizer hold has."""

    hold_id: str | None
    remaining: int | None
    requested: int | None


class HoldCodeRefused(
    HeadcountError,
    status=403,
    title="The organizer hold's redemption code was not given or does not match",
):
    pass


class HoldTarget(
    InvalidRequest, title="An organizer hold is on exactly one ticket type or one pool"
):
    """An organizer hold named both a ticket type and a pool, or neither."""


class HoldExpired(HeadcountError, status=409, title="The hold expired and the stock is gone"):
    """The hold lapsed and its stock went to others; the members name what ran out."""

    ticket_type_id: str | None
    requested: int | None
    event_id: str | None
    pool_id: str | None
    pool_name: str | None
    remaining: int | None
    ticket_type_ids: list[str] | None


class EventFull(HeadcountError, status=409, title="The event is full"):
    event_id: str | None
    requested: int | None
    max_attendees: int | None
    registered: int | None
    remaining: int | None


class SessionFull(HeadcountError, status=409, title="The session is full"):
    session_id: str | None
    max_participants: int | None


class NotRegistered(HeadcountError, status=403, title="Register for the event first"):
    """RSVPs and session seats are for people registered for the event."""

    event_id: str | None


class ViewerLimitReached(
    HeadcountError, status=409, title="The stream has reached its viewer limit"
):
    limit: int | None
    viewers: int | None


class BoothFull(HeadcountError, status=409, title="The booth is full"):
    booth_id: str | None
    max_visitors: int | None
    visitors: int | None


class HuddleFull(HeadcountError, status=409, title="The huddle is full"):
    huddle_full: bool = True
    huddle_id: str | None
    capacity: int | None
    members: int | None


class RoomFull(HeadcountError, status=409, title="The breakout room is full"):
    room_id: str | None
    capacity: int | None
    participants: int | None


class RoomClosed(HeadcountError, status=409, title="The breakout room is closed"):
    room_id: str | None


class AreaFull(HeadcountError, status=409, title="The area is full"):
    """Entry refused: the area (or an area around it) is at its `max_occupancy`."""

    area_id: str | None
    max_occupancy: int | None
    inside: int | None


class AlreadyInside(HeadcountError, status=409, title="The credential is already inside"):
    """A second entry without an exit: the same person never counts twice."""

    area_id: str | None
    credential: str | None


class MalformedCredential(HeadcountError, status=422, title="Not a credential"):
    credential: str | None


class UnknownCredential(HeadcountError, status=404, title="No such credential"):
    """No paid ticket, active registration or confirmed RSVP answers to it."""

    credential: str | None


class CredentialOtherEvent(
    HeadcountError, status=409, title="The credential belongs to another event"
):
    credential: str | None
    event_id: str | None


class TicketReleased(
    HeadcountError, status=409, title="The ticket was given back to sale when its holder left"
):
    credential: str | None


class ScanIdReused(
    HeadcountError, status=409, title="The scan id was already used for a different scan"
):
    scan_id: str | None


class LeaseExpired(HeadcountError, status=410, title="The lease is no longer held"):
    """The lease ran out (missed heartbeats), was released, or was lost: join again."""

    lease_id: str | None


class InvalidCursor(HeadcountError, status=422, title="The cursor is not one we handed out"):
    """A change-feed cursor that is malformed, tampered with, or ahead of the log."""


class CursorExpired(
    HeadcountError, status=410, title="The changes after this cursor are no longer kept"
):
    """Retention removed changes the cursor had not reached; `resume_after` is the cursor
    of the oldest position still complete (the changes in between are gone)."""

    resume_after: str | None


class RateLimited(HeadcountError, status=429, title="Too many requests"):
    max_pending_orders: int | None


class ServiceUnavailable(HeadcountError, status=503, title="A backing service is unavailable"):
    pass


class Timeout(HeadcountError, status=503, title="The operation timed out"):
    huddle_id: str | None


class WebhookUrlRefused(HeadcountError, status=422, title="Webhooks may not be sent to this URL"):
    """Plain http, or a host that is or resolves to a private, loopback, link-local,
    multicast or reserved address (unless HEADCOUNT_WEBHOOK_ALLOW_PRIVATE=1)."""

    url: str | None
