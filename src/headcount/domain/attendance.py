"""Rules for event registrations, session seats and waitlists, without I/O.

The ledger's conditional statements change the counters; these functions say what a
request is allowed to ask for and what the counters mean to a reader.
"""

from __future__ import annotations

from enum import StrEnum

from headcount.domain.errors import InvalidQuantity

# A registration brings its holder plus guests; ten people is a generous table, and a
# bound keeps one request from swallowing a whole event.
MAX_PARTY_SIZE = 10
# A ticket waitlist entry asks for at most this many tickets (and never more than the
# ticket type's `max_per_order`, since the offer is accepted by one order).
MAX_WAITLIST_QUANTITY = 10


class RegistrationStatus(StrEnum):
    """A cancelled registration keeps its row: registering again makes the same row active
    (its id and change history stay), and only active ones count toward `max_attendees`."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


class SeatStatus(StrEnum):
    CONFIRMED = "confirmed"
    LEFT = "left"


class SeatSource(StrEnum):
    """How a seat was got, kept on it as `via`: an RSVP that found room, or promotion off
    the session's waitlist when a seat came free."""

    RSVP = "rsvp"
    WAITLIST = "waitlist"


class EntryStatus(StrEnum):
    """What became of a waitlist entry; attendees read this to learn what happened."""

    WAITING = "waiting"
    OFFERED = "offered"  # ticket types: stock is held for you until offer_expires_at
    PROMOTED = "promoted"  # sessions: you got a seat
    ACCEPTED = "accepted"  # ticket types: your order took the offer's hold over
    DECLINED = "declined"
    EXPIRED = "expired"  # ticket types: the offer lapsed and passed to the next person
    LEFT = "left"

    @property
    def is_live(self) -> bool:
        return self in (EntryStatus.WAITING, EntryStatus.OFFERED)


class RsvpStatus(StrEnum):
    """The answer to an RSVP, and what `GET …/rsvp` reports."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    NONE = "none"


def check_party_size(party_size: int) -> None:
    if not 1 <= party_size <= MAX_PARTY_SIZE:
        raise InvalidQuantity(
            f"party_size must be between 1 and {MAX_PARTY_SIZE}, got {party_size}",
            max_party_size=MAX_PARTY_SIZE,
        )


def check_waitlist_quantity(quantity: int, max_per_order: int | None) -> None:
    limit = min(MAX_WAITLIST_QUANTITY, max_per_order or MAX_WAITLIST_QUANTITY)
    if not 1 <= quantity <= limit:
        raise InvalidQuantity(
            f"a waitlist entry asks for 1 to {limit} tickets, got {quantity}", max_quantity=limit
        )


def remaining(maximum: int | None, taken: int) -> int | None:
    """Places left under a cap; None when there is no cap. Never negative.

    A cap lowered below what is already taken shows 0 left, not a negative number:
    lowering a cap never evicts anyone, it only stops new admissions.
    """
    if maximum is None:
        return None
    return max(0, maximum - taken)


def is_full(maximum: int | None, taken: int) -> bool:
    return maximum is not None and taken >= maximum


def offer_size(wanted: int, available: int) -> int:
    """How many tickets the head of a waitlist is offered when `available` frees up.

    At most what they asked for; less when less is free, so that stock never sits unused
    while someone is waiting (they may take the smaller offer or decline it).
    """
    return max(0, min(wanted, available))
