"""The waiting room's rules: who goes first, how long they wait, and what a pass proves.

A waiting room puts a queue in front of a sale. Visitors join and wait; the store admits
them from the head at `admit_per_minute` while fewer than `active_limit` hold a pass. The
rules here are pure, so the Redis and in-process stores and the service agree on them.

**Order.** Every queued visitor has a score; the lowest goes first. Arrivals after
`opens_at` (and every arrival of a `fifo` room) score `LATE_BASE + n`, where `n` is the
store's own arrival counter, so they are admitted in the order the store saw them. In a
`random` room, an arrival before `opens_at` scores a uniformly random draw below
`LATE_BASE`: the early crowd is shuffled, no early visitor's place depends on when they
came (refreshing at 09:59:59 beats nobody), and everyone early goes before anyone late.
Scores are integers below 2**53, so a Redis sorted set (doubles) stores them exactly.

**Tokens.** A queue *ticket* names (event, room, visitor) and is signed, so joining twice gives
the same ticket and a ticket proves whose place it is. A *pass* names (room, visitor,
admission number): the store keeps the number of each live admission, so a pass from an
earlier admission, another room or another visitor is refused even though it is signed.
Both are HMAC-SHA256 under the room's own secret (kept in the ledger, so every server
process checks every pass).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# Early arrivals of a random room draw below this; everyone else queues above it.
LATE_BASE = 2**40
MAX_TOKEN_LENGTH = 1_000
TICKET_KIND = "qt1"
PASS_KIND = "qp1"  # noqa: S105 - a token kind, not a secret
_SIGNATURE_BYTES = 24

# Bounds an organizer may set (Cloudflare's session_duration is 1 to 30 min; shorter idle
# times are allowed so tests and small rooms need not wait a minute).
MAX_ACTIVE_LIMIT = 1_000_000
MAX_ADMIT_PER_MINUTE = 600_000
MIN_PASS_TTL = 1
MAX_PASS_TTL = 1_800


class QueueOrder(StrEnum):
    FIFO = "fifo"
    RANDOM = "random"


class RoomStatus(StrEnum):
    OPEN = "open"  # admitting (from opens_at on)
    SOLD_OUT = "sold_out"  # stock gone: nobody admitted, nobody new queued; order kept


class TicketState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"
    GONE = "gone"  # left, or admitted and the pass lapsed or was used


@dataclass(frozen=True, slots=True)
class RoomTerms:
    """What the store needs to run one room's queue."""

    room_id: str
    opens_at_ms: int
    active_limit: int
    admit_per_minute: int
    pass_ttl_ms: int
    order: QueueOrder

    @property
    def burst(self) -> float:
        """Admissions the rate may save up: one second's worth (at least one), so an
        emptied shop refills smoothly instead of all at once."""
        return max(1.0, self.admit_per_minute / 60)


def arrival_score(order: QueueOrder, *, early: bool, draw: int, arrival: int) -> int:
    """The score of a newcomer: `draw` is uniform in [0, LATE_BASE), `arrival` the store's
    counter after this arrival."""
    if order is QueueOrder.RANDOM and early:
        return draw
    return LATE_BASE + arrival


def eta_seconds(ahead: int, admit_per_minute: int, *, opens_in: float = 0.0) -> int:
    """Seconds until admission if the rate holds: the people ahead and this visitor pass
    at `admit_per_minute`, after the room opens. The active limit can only add to it."""
    per_second = admit_per_minute / 60
    return math.ceil(max(0.0, opens_in) + (ahead + 1) / per_second)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return _b64(digest[:_SIGNATURE_BYTES])


def sign(secret: str, kind: str, *parts: str) -> str:
    """`kind.part.part….signature`, each part base64url (a `sub` may hold dots)."""
    body = ".".join([kind, *(_b64(p.encode()) for p in parts)])
    return f"{body}.{_signature(secret, body)}"


def unsigned_parts(token: str, kind: str, count: int) -> list[str] | None:
    """The parts of a well-formed token of `kind`, unverified: enough to find the room
    whose secret verifies it. None if it is not one."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    pieces = token.split(".")
    if len(pieces) != count + 2 or pieces[0] != kind:
        return None
    try:
        return [_unb64(p).decode() for p in pieces[1:-1]]
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def verified(secret: str, token: str, kind: str, count: int) -> list[str] | None:
    """The parts of `token` if `secret` signed it, else None."""
    parts = unsigned_parts(token, kind, count)
    if parts is None:
        return None
    body, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature, _signature(secret, body)):
        return None
    return parts


def ticket_of(secret: str, event_id: str, room_id: str, visitor: str) -> str:
    """The event comes first: it finds the room whose secret checks the rest."""
    return sign(secret, TICKET_KIND, event_id, room_id, visitor)


def pass_of(secret: str, room_id: str, visitor: str, admission: str) -> str:
    return sign(secret, PASS_KIND, room_id, visitor, admission)
