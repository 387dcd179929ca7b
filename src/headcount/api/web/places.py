"""The places an attendee can join from the event page, described from the registry.

Every space with a snapshot section (`capacity/spaces.py`) becomes a kind of card: the
stream is joined over its WebSocket, booths and breakout rooms with REST leases (the page
renews them), huddles by durable membership. The page script reads the same description
(as JSON), so the words of a card, the fields it reads from a snapshot and the paths it
calls come from one place, and a new kind of live space shows up without page code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from headcount.capacity.spaces import HUDDLE, SPACES, VIEWERS, Space
from headcount.capacity.views import CapacitySnapshot

# How a kind is joined from the page: a stream socket, a REST lease, or membership.
STREAM, LEASE, MEMBERSHIP = "stream", "lease", "membership"


@dataclass(frozen=True)
class Kind:
    kind: str
    section: str  # the snapshot field holding its views
    single: bool  # one view (the event's own stream), not a list
    title: str  # the section's heading
    count: str  # view field: heads now
    limit: str  # view field: the limit
    mode: str
    join: str  # path with `{id}`: REST join, or the stream's WebSocket
    leave: str | None = None  # membership only: REST path with `{id}`
    members: str | None = None  # membership only: who is in (members and organizer)


@dataclass(frozen=True)
class Card:
    """One place as first painted (the script keeps it current, in the same words)."""

    kind: str
    id: str
    name: str
    detail: str
    count: int | None
    in_grace: int | None
    limit: int | None
    is_full: bool | None
    closed: bool


TITLES = {VIEWERS.kind: "Live stream", HUDDLE.kind: "Huddles"}


def _with_id(space: Space[Any], suffix: str) -> str:
    """`/booths/{booth_id}` + `/visits` → `/booths/{id}/visits`."""
    head = space.path.rsplit("{", 1)[0]
    return f"{head}{{id}}{suffix}"


def kinds() -> list[Kind]:
    found = []
    for space in SPACES.values():
        if space.section is None:
            continue
        mode, join, leave, members = LEASE, _with_id(space, f"/{space.join}"), None, None
        if space is VIEWERS:
            mode, join = STREAM, "/ws/events/{id}/stream"
        elif space is HUDDLE:
            mode, join = MEMBERSHIP, _with_id(space, "/join")
            leave, members = _with_id(space, "/leave"), _with_id(space, "/members")
        elif not space.live:
            continue  # a durable kind nobody joins from the page
        found.append(
            Kind(
                kind=space.kind,
                section=space.section,
                single=space is VIEWERS,
                title=TITLES.get(space.kind, space.tag.capitalize()),
                count=space.count_field,
                limit=space.limit_as,
                mode=mode,
                join=join,
                leave=leave,
                members=members,
            )
        )
    return found


def described() -> list[dict[str, Any]]:
    """The kinds as the page script reads them (JSON)."""
    return [asdict(kind) for kind in kinds()]


def cards(capacity: CapacitySnapshot) -> dict[str, list[Card]]:
    """Each kind's places as the first paint shows them, by kind."""
    sessions = {s.id: s.title for s in capacity.sessions}
    shown: dict[str, list[Card]] = {}
    for kind in kinds():
        value = getattr(capacity, kind.section, None)
        views = ([] if value is None else [value]) if kind.single else list(value or [])
        shown[kind.kind] = [
            Card(
                kind=kind.kind,
                id=capacity.event_id if kind.single else view.id,
                name=kind.title if kind.single else view.name,
                detail=sessions.get(getattr(view, "session_id", ""), ""),
                count=getattr(view, kind.count),
                in_grace=getattr(view, "in_grace", 0),
                limit=getattr(view, kind.limit),
                is_full=view.is_full,
                closed=getattr(view, "status", "open") == "closed",
            )
            for view in views
        ]
    return shown
