"""What the door's tests share: an event with one area and its credentials, and the
checkpoint read (the counter and the position rows it must equal, at one instant)."""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine, func, select, text

from headcount.capacity import areas, events, registrations
from headcount.capacity.areas import AreaDraft
from headcount.capacity.events import EventDraft
from headcount.capacity.registrations import RegistrationDraft
from headcount.ledger.venue import Area, AreaPosition
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.ledger_checks import sync_url

ORG = organizer("org-door")


async def door_event(rt: Runtime, people: int, maximum: int | None) -> tuple[str, list[str]]:
    """(area id, registration credentials) of a fresh event with one area."""
    event = await events.create_event(rt, ORG, EventDraft(name="Door"))
    area = await areas.create_area(rt, ORG, event.id, AreaDraft(name="Hall", max_occupancy=maximum))
    found = []
    for n in range(people):
        made, _ = await registrations.register(
            rt, attendee(f"door-{event.id}-{n}"), event.id, RegistrationDraft()
        )
        found.append(f"registration:{made.id}")
    return area.id, found


async def checkpoint(rt: Runtime, area_id: str) -> tuple[int, int]:
    """(the area's counter, the position rows in it), read in one snapshot."""
    async with rt.db.snapshot() as tx:
        counter = await tx.scalar(select(Area.inside).where(Area.id == area_id))
        rows = await tx.scalar(
            select(func.count()).select_from(AreaPosition).where(AreaPosition.area_id == area_id)
        )
    return int(counter or 0), int(rows or 0)


def checkpoint_rows(database_url: str, area_id: str) -> tuple[int, int]:
    """The same, straight from the database in one statement (one snapshot), for tests
    whose servers run elsewhere."""
    with _engine(database_url).connect() as conn:
        found = conn.execute(
            text(
                "SELECT a.inside, (SELECT COUNT(*) FROM area_positions p"
                " WHERE p.area_id = a.id) FROM areas a WHERE a.id = :id"
            ),
            {"id": area_id},
        ).one()
    return int(found[0]), int(found[1])


@functools.cache
def _engine(database_url: str) -> Engine:
    """One small pool per database for the whole run: a checker reads many times a second."""
    return create_engine(sync_url(database_url), pool_size=1, max_overflow=0)
