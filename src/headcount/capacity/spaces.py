"""Every kind of place people gather in, one registry entry each.

A *space* is a place with a limit: the event's live stream, an expo booth, a breakout
room, a huddle. Its entry says all that differs between kinds: the ledger row that
defines it and where its limit and event come from, how its view counts heads, how a
refusal reads, who may join, whether it can be closed, the words of its REST paths, and
(for places organizers create) their inputs. Generic code does the rest:
`capacity/live.py` (leases: join, heartbeat, leave, close), `capacity/places.py`
(organizers' create/read/change and the views), `capacity/huddles.py` (durable
membership), `capacity/live_snapshot.py` and the REST routes in `api/rest/presence.py`.

Live spaces (entries with a `join` path word) hold people as presence leases; their keys
in `SPACES` are the lease kinds, defined here and nowhere else. Presence serves any
well-formed kind, so a new kind of live space is one entry: `register(on_event(...))` for
one place per event, `register(organized(...))` for places organizers create, or a whole
`register(Space(...))` for anything else.

Two settings shape a live space's places:

* `count`: what one place is held by. Every live kind here counts **users**: a place is a
  person, and their laptop and phone share it (a stream viewer, a booth visitor and a
  breakout-room participant are people; limits on them are about people). `connections`
  (each socket a place) is for a kind whose limit is a per-connection resource, such as
  media slots.
* `grace`: how long a place stays its holder's after their connection is lost without a
  leave: None takes `HEADCOUNT_PRESENCE_GRACE` (15 s by default). An entry's `grace_of`
  may read an override from the place's row: the stream reads the event's
  `virtual_settings.reconnect_grace_seconds`, since events differ (a keynote's audience on
  trains, a small workshop). Booths and rooms keep the space's setting: their rows carry
  no such column, and a per-booth grace had no use that justified one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from headcount.capacity.events import MAX_LIMIT
from headcount.capacity.inputs import Patch
from headcount.capacity.views import (
    BoothView,
    BreakoutRoomView,
    HuddleView,
    View,
    ViewerCapacity,
)
from headcount.domain.errors import (
    BoothFull,
    HeadcountError,
    HuddleFull,
    RoomClosed,
    RoomFull,
    ViewerLimitReached,
)
from headcount.domain.identity import Principal
from headcount.domain.presence import Count, stream_grace, viewer_limit
from headcount.ledger.attendance import Session
from headcount.ledger.models import Event
from headcount.ledger.spaces import CLOSED, OPEN, Booth, BreakoutRoom, Huddle
from headcount.presence.base import KIND_PATTERN

V = TypeVar("V", bound=View)
# Raises (e.g. `Forbidden`) when the principal may not join the place (the row).
JoinRule = Callable[[Principal, Any], None]


def anyone(_principal: Principal, _row: Any) -> None:
    """Any signed-in user may join: attendance is checked by the platform, not here."""


def no_override(_row: Any) -> float | None:
    """The place's row sets no grace of its own."""
    return None


@dataclass(frozen=True)
class Refusal:
    """How a space says no: the error (its `code`), a sentence, and the members clients
    branch on: the place's id as `id_as`, and unless `counts` is off, the limit and the
    head count under the space's `limit_as` and `count_field` names."""

    error: type[HeadcountError]
    detail: str  # may use {limit} and {count}
    id_as: str | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)  # fixed members
    counts: bool = True


@dataclass(frozen=True)
class Parent:
    """What organizers create a kind of place in, and how it names its event."""

    model: type[Any]
    noun: str
    path: str  # REST path of one parent: "/events/{event_id}"
    event_of: Callable[[Any], str]

    @property
    def column(self) -> str:
        """The child row's column holding the parent's id."""
        return f"{self.noun}_id"


@dataclass(frozen=True)
class Managed:
    """Places organizers create, list, read and change (`capacity/places.py`)."""

    parent: Parent
    collection: str  # path word under the parent: POST/GET /events/{event_id}/booths
    draft: type[BaseModel]
    patch: type[Patch]
    id_prefix: str
    initial: Mapping[str, Any] = field(default_factory=dict)  # columns a new row starts with


@dataclass(frozen=True, kw_only=True)
class Space(Generic[V]):
    """One kind of place: everything the generic use cases and routes need to know."""

    kind: str  # registry key; for a live space, its lease kind
    noun: str  # how errors and API docs name one
    # Its resource type in the change log (`<resource>.created`, `.full`, …); the kind
    # if not given.
    resource: str | None = None
    model: type[Any]  # the ledger row that defines one (the event itself, for the stream)
    path: str  # REST path of one: "/booths/{booth_id}"
    tag: str  # OpenAPI tag of its routes
    view: type[V]  # row columns of the same name, plus the head count, limit, fullness
    limit: Callable[[Any], int | None]  # the row's limit (None: no limit)
    limit_as: str  # refusal member holding the limit
    count_field: str  # view field and refusal member holding the head count
    refusal: Refusal
    section: str | None = None  # the `CapacitySnapshot` field its views fill
    event_of: Callable[[Any], str] = attrgetter("event_id")
    # Live spaces: the path word of the join route under `path` (None: not live) ...
    join: str | None = None
    # ... of the organizer's list of who is in (None: no such route) ...
    holders: str | None = None
    # ... and, for spaces an organizer can close, the refusal a join gets after closing
    # (closing marks the row closed, evicts every lease, and refuses joins from then on).
    closed: Refusal | None = None
    may_join: JoinRule = anyone
    managed: Managed | None = None
    # Live spaces: what one place is held by (a person, or each connection) ...
    count: Count = Count.USERS
    # ... and how long (seconds) a place whose connection was lost without a leave stays
    # its holder's: None takes HEADCOUNT_PRESENCE_GRACE; `grace_of` may read the row's own.
    grace: float | None = None
    grace_of: Callable[[Any], float | None] = no_override

    @property
    def live(self) -> bool:
        return self.join is not None

    def grace_for(self, row: Any, default: float) -> float:
        """The grace a place of this space gets: the row's own, else the space's, else
        `default` (the setting)."""
        own = self.grace_of(row)
        if own is not None:
            return own
        return default if self.grace is None else self.grace

    @property
    def change_kind(self) -> str:
        return self.resource or self.kind

    def is_closed(self, row: Any) -> bool:
        return self.closed is not None and row.status == CLOSED

    def refuse(self, place_id: str, limit: int | None, count: int) -> HeadcountError:
        return self._error(self.refusal, place_id, limit, count)

    def refuse_closed(self, place_id: str) -> HeadcountError:
        assert self.closed is not None
        return self._error(self.closed, place_id, None, 0)

    def _error(
        self, refusal: Refusal, place_id: str, limit: int | None, count: int
    ) -> HeadcountError:
        members: dict[str, Any] = dict(refusal.flags)
        if refusal.id_as is not None:
            members[refusal.id_as] = place_id
        if refusal.counts:
            members[self.limit_as] = limit
            members[self.count_field] = count
        return refusal.error(refusal.detail.format(limit=limit, count=count), **members)


SPACES: dict[str, Space[Any]] = {}
_KIND = re.compile(KIND_PATTERN)


def register(space: Space[V]) -> Space[V]:
    if not _KIND.fullmatch(space.kind) or space.kind in SPACES:
        raise ValueError(f"space kind {space.kind!r} is malformed or taken")
    SPACES[space.kind] = space
    return space


def live_space(kind: str) -> Space[Any] | None:
    """The live space whose leases carry `kind`, if there is one."""
    space = SPACES.get(kind)
    return space if space is not None and space.live else None


# --- inputs of the places organizers create -------------------------------------------

TIER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
MAX_HUDDLE_CAPACITY = 1_000
PlaceName = Annotated[str, Field(min_length=1, max_length=300)]


class BoothDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlaceName
    description: str = Field(default="", max_length=10_000)
    tier: str = Field(default="standard", pattern=TIER_PATTERN)
    chat_enabled: bool = True
    video_enabled: bool = False
    max_visitors: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


class BoothPatch(Patch):
    """Only the fields sent change; `max_visitors: null` removes the cap."""

    NULLABLE = frozenset({"description", "max_visitors"})
    CLEARED = {"description": ""}

    name: PlaceName | None = None
    description: str | None = Field(default=None, max_length=10_000)
    tier: str | None = Field(default=None, pattern=TIER_PATTERN)
    chat_enabled: bool | None = None
    video_enabled: bool | None = None
    max_visitors: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


class BreakoutRoomDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlaceName
    capacity: int = Field(strict=True, ge=0, le=MAX_LIMIT)


class BreakoutRoomPatch(Patch):
    name: PlaceName | None = None
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


class HuddleDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlaceName
    topic: str = Field(default="", max_length=2_000)
    capacity: int = Field(strict=True, ge=1, le=MAX_HUDDLE_CAPACITY)


class HuddlePatch(Patch):
    NULLABLE = frozenset({"topic"})
    CLEARED = {"topic": ""}

    name: PlaceName | None = None
    topic: str | None = Field(default=None, max_length=2_000)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_HUDDLE_CAPACITY)


# --- the registry ---------------------------------------------------------------------

IN_EVENT = Parent(Event, "event", "/events/{event_id}", attrgetter("id"))
IN_SESSION = Parent(Session, "session", "/sessions/{session_id}", attrgetter("event_id"))


# What every space whose place is the event itself shares (the stream, a lounge).
_THE_EVENT: dict[str, Any] = {
    "noun": IN_EVENT.noun,
    "model": IN_EVENT.model,
    "path": IN_EVENT.path,
    "event_of": IN_EVENT.event_of,
    "limit_as": "limit",
}


def on_event(kind: str, view: type[V], **entry: Any) -> Space[V]:
    """A live space of one place per event, the event itself (the stream, a lounge).

    Such spaces differ only in what their entry says: the kind is also the word of the
    join route under the event's path (`POST /events/{event_id}/<kind>`) and the OpenAPI
    tag, and a refusal carries the limit as `limit`.
    """
    return Space(kind=kind, tag=kind, join=kind, view=view, **_THE_EVENT, **entry)


def organized(
    kind: str, model: type[Any], view: type[V], managed: Managed, *, capacity: str, **entry: Any
) -> Space[V]:
    """A place organizers create in its parent (a booth, a breakout room, a huddle).

    Its words come from its collection's, so that its routes, docs and errors agree: one
    place's REST path is the collection and the place's id (`/booths/{booth_id}`), its
    refusals (`refusal`, `closed`) name it by that id, the collection names its OpenAPI
    tag and its snapshot section, and its noun is its change-log resource's (the kind's if
    not given). Its limit is the row's `capacity` column, which a refusal carries under
    that name.
    """
    id_as = f"{kind}_id"
    resource = entry.pop("resource", kind)
    words = managed.collection.replace("-", " ")
    for refusal in ("refusal", "closed"):
        if refusal in entry:
            entry[refusal] = replace(entry[refusal], id_as=id_as)
    return Space(
        kind=kind,
        resource=resource,
        noun=resource.replace("_", " "),
        model=model,
        path=f"/{managed.collection}/{{{id_as}}}",
        tag=words,
        section=words.replace(" ", "_"),
        view=view,
        limit=attrgetter(capacity),
        limit_as=capacity,
        managed=managed,
        **entry,
    )


VIEWERS = register(
    on_event(
        "viewers",
        ViewerCapacity,
        limit=lambda event: viewer_limit(event.virtual_settings),
        count_field="viewers",
        refusal=Refusal(
            ViewerLimitReached,
            "the stream has reached its limit of {limit} concurrent viewers; try again later",
        ),
        resource="stream",
        section="viewers",
        grace_of=lambda event: stream_grace(event.virtual_settings),
    )
)

BOOTH = register(
    organized(
        "booth",
        Booth,
        BoothView,
        Managed(IN_EVENT, "booths", BoothDraft, BoothPatch, id_prefix="bth"),
        capacity="max_visitors",
        count_field="visitors",
        refusal=Refusal(
            BoothFull, "the booth is full ({count} of {limit} visitors); try again shortly"
        ),
        join="visits",
        holders="visits",
    )
)

BREAKOUT_ROOM = register(
    organized(
        "room",
        BreakoutRoom,
        BreakoutRoomView,
        Managed(
            IN_SESSION,
            "breakout-rooms",
            BreakoutRoomDraft,
            BreakoutRoomPatch,
            id_prefix="brk",
            initial={"status": OPEN, "closed_at": None},
        ),
        capacity="capacity",
        resource="breakout_room",
        count_field="participants",
        refusal=Refusal(
            RoomFull, "the breakout room is full ({count} of {limit}); try another room"
        ),
        join="join",
        holders="participants",
        closed=Refusal(RoomClosed, "the breakout room is closed", counts=False),
    )
)

# Durable, not live: membership is rows in the ledger (`capacity/huddles.py`).
HUDDLE = register(
    organized(
        "huddle",
        Huddle,
        HuddleView,
        Managed(
            IN_EVENT,
            "huddles",
            HuddleDraft,
            HuddlePatch,
            id_prefix="hud",
            initial={"members": 0, "version": 0},
        ),
        capacity="capacity",
        count_field="members",
        refusal=Refusal(
            HuddleFull, "the huddle is full ({count} of {limit})", flags={"huddle_full": True}
        ),
    )
)
