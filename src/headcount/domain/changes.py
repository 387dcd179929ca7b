"""The kinds of change Headcount tells the platform about, and the cursor that pages them.

A change is a durable decision: a hold made, a seat given, an offer lapsed, a limit an
organizer moved, a threshold crossed. Live presence joins and leaves are not changes
(too many, and not durable); a live space becoming full is, once per transition.
Names are `<resource>.<what happened>`; integrators filter on them, so they never change.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum


class ChangeType(StrEnum):
    ORDER_CREATED = "order.created"
    ORDER_CONFIRMED = "order.confirmed"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_EXPIRED = "order.expired"
    ORDER_REFUNDED = "order.refunded"

    # Organizer holds (allotments): stock set aside by name, out of sale like a hold.
    ORGANIZER_HOLD_CREATED = "organizer_hold.created"
    ORGANIZER_HOLD_SPLIT = "organizer_hold.split"
    ORGANIZER_HOLD_RELEASED = "organizer_hold.released"
    ORGANIZER_HOLD_REDEEMED = "organizer_hold.redeemed"

    REGISTRATION_CREATED = "registration.created"
    REGISTRATION_UPDATED = "registration.updated"
    REGISTRATION_CANCELLED = "registration.cancelled"

    RSVP_CONFIRMED = "rsvp.confirmed"
    RSVP_WAITLISTED = "rsvp.waitlisted"
    RSVP_CANCELLED = "rsvp.cancelled"

    WAITLIST_JOINED = "waitlist.joined"
    WAITLIST_LEFT = "waitlist.left"
    WAITLIST_PROMOTED = "waitlist.promoted"
    WAITLIST_OFFERED = "waitlist.offered"
    WAITLIST_OFFER_EXPIRED = "waitlist.offer_expired"
    WAITLIST_DECLINED = "waitlist.declined"
    WAITLIST_ACCEPTED = "waitlist.accepted"

    # An organizer made or changed something: `.changed` payloads hold `before` and `after`.
    EVENT_CREATED = "event.created"
    EVENT_CHANGED = "event.changed"
    TICKET_TYPE_CREATED = "ticket_type.created"
    TICKET_TYPE_CHANGED = "ticket_type.changed"
    POOL_CREATED = "pool.created"
    POOL_CHANGED = "pool.changed"
    SESSION_CREATED = "session.created"
    SESSION_CHANGED = "session.changed"
    BOOTH_CREATED = "booth.created"
    BOOTH_CHANGED = "booth.changed"
    BREAKOUT_ROOM_CREATED = "breakout_room.created"
    BREAKOUT_ROOM_CHANGED = "breakout_room.changed"
    BREAKOUT_ROOM_CLOSED = "breakout_room.closed"
    HUDDLE_CREATED = "huddle.created"
    HUDDLE_CHANGED = "huddle.changed"
    HUDDLE_JOINED = "huddle.joined"
    HUDDLE_LEFT = "huddle.left"
    WAITING_ROOM_CREATED = "waiting_room.created"
    WAITING_ROOM_CHANGED = "waiting_room.changed"
    # A waiting room's queue: visitors admitted (one change per admitting step), the
    # stock gone with people still queued, and stock back (the queue resumes in order).
    QUEUE_ADMITTED = "queue.admitted"
    QUEUE_SOLD_OUT = "queue.sold_out"
    QUEUE_REOPENED = "queue.reopened"

    # The door (docs/venue.md): an organizer's areas, and every stored scan by what it did.
    # Scan payloads carry `moves` ({area id: -1 | +1}): replay folds them into occupancy.
    AREA_CREATED = "area.created"
    AREA_CHANGED = "area.changed"
    AREA_ENTERED = "area.entered"
    AREA_EXITED = "area.exited"
    AREA_ENTRY_REPEATED = "area.entry_repeated"  # already inside: moved nobody
    AREA_EXIT_UNMATCHED = "area.exit_unmatched"  # not inside: recorded, moved nobody
    AREA_ENTRY_FLAGGED = "area.entry_flagged"  # offline entry past max_occupancy
    AREA_CHECKED_OUT = "area.checked_out"  # an organizer's correction (force exit, reset)
    # A `release_after_exit` ticket's holder left the venue: one unit back on sale.
    TICKET_RELEASED = "ticket.released"

    # Thresholds people act on, recorded once per transition by the statement that crossed
    # it. Ledger thresholds come in pairs (`OPPOSITE`), which alternate per resource.
    TICKET_TYPE_SOLD_OUT = "ticket_type.sold_out"
    TICKET_TYPE_BACK_IN_STOCK = "ticket_type.back_in_stock"
    POOL_EXHAUSTED = "pool.exhausted"
    POOL_REPLENISHED = "pool.replenished"
    EVENT_FULL = "event.full"
    EVENT_REOPENED = "event.reopened"
    SESSION_FULL = "session.full"
    SESSION_REOPENED = "session.reopened"
    # Live spaces: an admission that took the last place. Leaving is not recorded (leases
    # also lapse silently), so these have no opposite; at most one per filling.
    STREAM_FULL = "stream.full"
    BOOTH_FULL = "booth.full"
    BREAKOUT_ROOM_FULL = "breakout_room.full"


# Each ledger threshold and the one that undoes it. Within one transaction a crossing and
# its undoing cancel out (ledger/changes.crossed), so what commits alternates.
OPPOSITE: dict[ChangeType, ChangeType] = {
    ChangeType.TICKET_TYPE_SOLD_OUT: ChangeType.TICKET_TYPE_BACK_IN_STOCK,
    ChangeType.POOL_EXHAUSTED: ChangeType.POOL_REPLENISHED,
    ChangeType.EVENT_FULL: ChangeType.EVENT_REOPENED,
    ChangeType.SESSION_FULL: ChangeType.SESSION_REOPENED,
}
OPPOSITE.update({after: before for before, after in list(OPPOSITE.items())})

# What an organizer did to the definition of a capacity: the audit trail's rows.
ORGANIZER_TYPES: frozenset[ChangeType] = frozenset(
    {
        ChangeType.EVENT_CREATED,
        ChangeType.EVENT_CHANGED,
        ChangeType.TICKET_TYPE_CREATED,
        ChangeType.TICKET_TYPE_CHANGED,
        ChangeType.POOL_CREATED,
        ChangeType.POOL_CHANGED,
        ChangeType.SESSION_CREATED,
        ChangeType.SESSION_CHANGED,
        ChangeType.BOOTH_CREATED,
        ChangeType.BOOTH_CHANGED,
        ChangeType.BREAKOUT_ROOM_CREATED,
        ChangeType.BREAKOUT_ROOM_CHANGED,
        ChangeType.BREAKOUT_ROOM_CLOSED,
        ChangeType.HUDDLE_CREATED,
        ChangeType.HUDDLE_CHANGED,
        ChangeType.WAITING_ROOM_CREATED,
        ChangeType.WAITING_ROOM_CHANGED,
        ChangeType.AREA_CREATED,
        ChangeType.AREA_CHANGED,
    }
)


CURSOR_PREFIX = "chg1."


class BadCursor(ValueError):
    """A cursor this service did not hand out (or that was tampered with)."""


def encode_cursor(position: int) -> str:
    """Opaque to clients: they must not do arithmetic on positions (gaps are normal)."""
    raw = position.to_bytes(8, "big", signed=False)
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > 40:
        raise BadCursor("not a change cursor")
    body = cursor[len(CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("not a change cursor") from exc
    if len(raw) != 8:
        raise BadCursor("not a change cursor")
    return int.from_bytes(raw, "big", signed=False)
