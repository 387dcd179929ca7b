"""Who is inside which area: the door's rules, without I/O.

An event's areas form a forest (the venue, its halls, a workshop room inside a hall).
A credential (a ticket unit, a registration place, a session RSVP) is at most at one
area of the event at a time, its *position*; being at a hall means being in the venue
too, so an area's occupancy counts the credentials whose position is the area or any
area below it. Occupancy is therefore a count of distinct credentials, never a tally of
scans.

The scans of a credential, folded in scan-time order (`fold`), give its position:

* `entry` at A: already at A or below it → nothing moves (`already_inside`); otherwise
  the position becomes A (from outside, or from a sibling hall: leaving one hall for
  another is one move, never a double count).
* `exit` at A: at A or below it → the position becomes A's parent (leaving a hall leaves
  you in the venue; leaving the venue leaves you outside); otherwise nothing moves
  (`not_inside`, recorded all the same).

Because the position is a fold over the stored scans, a batch uploaded late, twice or
shuffled ends in the same state, and reconcile recomputes every count from the scans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from headcount.domain.errors import MalformedCredential
from headcount.domain.ids import is_well_formed

# An organizer's dashboard turns amber when an area reaches this share of its maximum.
WARNING_RATIO = 0.9
MAX_BATCH = 500
MAX_SCAN_ID = 100
MAX_CREDENTIAL = 300

Parents = Mapping[str, str | None]
# Times a gate or an organizer may name: a scanner's clock, not the calendar's limits
# (year 1 with an offset cannot even be turned into UTC).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class Source(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    CORRECTION = "correction"  # an organizer's force exit, a nightly reset


class Outcome(StrEnum):
    """What a stored scan did, judged against the position just before it."""

    ACCEPTED = "accepted"
    ALREADY_INSIDE = "already_inside"  # an entry that moved nobody
    NOT_INSIDE = "not_inside"  # an exit of someone not inside: recorded, moves nothing
    FLAGGED = "flagged"  # an offline entry that took an area past its maximum


class CredentialKind(StrEnum):
    TICKET = "ticket"
    REGISTRATION = "registration"
    RSVP = "rsvp"


_KINDS = frozenset(k.value for k in CredentialKind)
_UNIT = re.compile(r"^[1-9][0-9]{0,3}$")
_SUBJECT = re.compile(r"^[^\s/\x00-\x1f\x7f]{1,200}$")


@dataclass(frozen=True, slots=True)
class Credential:
    """A parsed credential: `ticket:<order>/<ticket type>[/<unit>]`,
    `registration:<registration>[/<unit>]` or `rsvp:<session>/<attendee>`.

    A ticket line of quantity 3 admits three people: units 1 to 3. A registration's
    units are its party (the holder and guests).
    """

    kind: CredentialKind
    ref: str
    sub_ref: str | None
    unit: int

    def __str__(self) -> str:
        """The canonical spelling, under which positions and scans are stored."""
        if self.kind is CredentialKind.RSVP:
            return f"rsvp:{self.ref}/{self.sub_ref}"
        middle = f"{self.ref}/{self.sub_ref}" if self.sub_ref else self.ref
        return f"{self.kind.value}:{middle}/{self.unit}"


def parse_credential(text: str) -> Credential:
    """The credential a scanner read, or `malformed_credential` (the scan changes nothing)."""
    kind_text, sep, rest = text.strip().partition(":")
    if not sep or len(text) > MAX_CREDENTIAL or kind_text not in _KINDS:
        raise MalformedCredential(
            "a credential reads ticket:<order>/<ticket type>[/<unit>], "
            "registration:<registration>[/<unit>] or rsvp:<session>/<attendee>",
            credential=text[:MAX_CREDENTIAL],
        )
    kind = CredentialKind(kind_text)
    parts = rest.split("/")
    ids_needed = {CredentialKind.TICKET: 2, CredentialKind.REGISTRATION: 1}
    if kind is CredentialKind.RSVP:
        ok = len(parts) == 2 and is_well_formed(parts[0]) and bool(_SUBJECT.match(parts[1]))
        if ok:
            return Credential(kind, parts[0], parts[1], 1)
    else:
        n = ids_needed[kind]
        ids, unit = parts[:n], parts[n:]
        ok = (
            len(ids) == n
            and all(is_well_formed(i) for i in ids)
            and len(unit) <= 1
            and all(_UNIT.match(u) for u in unit)
        )
        if ok:
            return Credential(kind, ids[0], ids[1] if n == 2 else None, int(unit[0]) if unit else 1)
    raise MalformedCredential(
        f"{text[:80]!r} is not a credential", credential=text[:MAX_CREDENTIAL]
    )


def lineage(area_id: str | None, parents: Parents) -> list[str]:
    """The area and every area above it, innermost first; empty for outside."""
    found: list[str] = []
    while area_id is not None and area_id not in found:
        found.append(area_id)
        area_id = parents.get(area_id)
    return found


def is_within(position: str | None, area_id: str, parents: Parents) -> bool:
    return area_id in lineage(position, parents)


def step(
    position: str | None, direction: Direction, area_id: str, parents: Parents
) -> tuple[str | None, Outcome]:
    """One scan applied to a position: the new position and what the scan did."""
    inside = is_within(position, area_id, parents)
    if direction is Direction.ENTRY:
        return (position, Outcome.ALREADY_INSIDE) if inside else (area_id, Outcome.ACCEPTED)
    return (parents.get(area_id), Outcome.ACCEPTED) if inside else (position, Outcome.NOT_INSIDE)


@dataclass(frozen=True, slots=True)
class ScanStep:
    """A stored scan as the fold reads it: ordered by `(at, seq)`."""

    at: datetime
    seq: int
    area_id: str
    direction: Direction


def fold(scans: Iterable[ScanStep], parents: Parents) -> str | None:
    """A credential's position after all its scans, applied in scan-time order."""
    position: str | None = None
    for scan in sorted(scans, key=lambda s: (s.at, s.seq)):
        position, _ = step(position, scan.direction, scan.area_id, parents)
    return position


def moves(before: str | None, after: str | None, parents: Parents) -> dict[str, int]:
    """How each area's occupancy changes when a credential moves: -1 left, +1 entered."""
    old, new = set(lineage(before, parents)), set(lineage(after, parents))
    return {**dict.fromkeys(old - new, -1), **dict.fromkeys(new - old, +1)}


def warns(inside: int, maximum: int | None) -> bool:
    """At 90 % of its maximum an area is close enough to full to tell the organizer."""
    return maximum is not None and maximum > 0 and inside >= WARNING_RATIO * maximum


def remaining(inside: int, maximum: int | None) -> int | None:
    return None if maximum is None else max(0, maximum - inside)


def check_moment(value: datetime | None) -> datetime | None:
    """A scan or checkout time within 2000 to 2099 (a pydantic validator: ValueError is 422)."""
    if value is not None and not EARLIEST <= value < LATEST:
        raise ValueError("times must lie between 2000-01-01 and 2100-01-01")
    return value
