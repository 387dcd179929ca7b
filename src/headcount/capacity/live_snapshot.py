"""The places part of an event's capacity snapshot: every registered space, alike.

Durable rows (booths, rooms, huddles, and the event itself for its stream) are read in
the snapshot's transaction; the live counts come from the presence store afterwards in
one pipelined round trip, so no database lock waits on Redis. If that store is down, the
live counts are `None` and the rest of the snapshot is still served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headcount.capacity.places import head_counts, view_of
from headcount.capacity.spaces import SPACES, Space
from headcount.ledger import spaces as ledger
from headcount.ledger.db import Tx
from headcount.ledger.models import Event
from headcount.runtime import Runtime


@dataclass
class LiveRows:
    """The durable rows, read inside the snapshot's transaction: (space, row) pairs."""

    event: Event
    places: list[tuple[Space[Any], Any]]


@dataclass
class LiveSections:
    # `CapacitySnapshot` field → its value: one view for a space that is the event itself
    # (the stream), else the list of the event's places of that kind.
    fields: dict[str, Any]
    # Heads in every place (connected now, or a durable place's members), by space kind
    # and place id (None: presence unreachable); places held in grace are in the views.
    counts: dict[str, dict[str, int | None]]


async def live_rows(tx: Tx, event: Event) -> LiveRows:
    places: list[tuple[Space[Any], Any]] = []
    for space in SPACES.values():
        places += [(space, row) for row in await ledger.of_event(tx, space.model, event)]
    return LiveRows(event, places)


async def live_sections(rt: Runtime, rows: LiveRows) -> LiveSections:
    """Adds the live counts, after the transaction: no database lock waits on Redis."""
    counts = await head_counts(rt, rows.places)
    sections = LiveSections(fields={}, counts={kind: {} for kind in SPACES})
    for (space, row), heads in zip(rows.places, counts, strict=True):
        sections.counts.setdefault(space.kind, {})[row.id] = heads.present
        if space.section is None:
            continue
        view = view_of(space, row, heads)
        if space.model is Event:
            sections.fields[space.section] = view
        else:
            sections.fields.setdefault(space.section, []).append(view)
    return sections
