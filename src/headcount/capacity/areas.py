"""Areas of an event: the venue, its halls and rooms, each with a maximum occupancy.

An area hangs under at most one parent of the same event; the tree only grows (a parent
is fixed at creation), so the nesting every scan folds by never changes under it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from headcount.capacity.events import MAX_LIMIT, load_event, managed_event
from headcount.capacity.inputs import Patch, new_row
from headcount.capacity.views import AreaView
from headcount.domain import occupancy
from headcount.domain.changes import ChangeType
from headcount.domain.errors import InvalidRequest, NotFound
from headcount.domain.identity import Principal
from headcount.ledger import areas, journal, rows
from headcount.ledger.db import Tx
from headcount.ledger.venue import Area
from headcount.runtime import Runtime


class AreaDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    parent_id: str | None = Field(
        default=None, max_length=80, description="The area this one is inside (a hall's venue)."
    )
    max_occupancy: int | None = Field(default=None, strict=True, ge=0, le=MAX_LIMIT)
    allow_reentry: bool = Field(
        default=False,
        description="Let a second entry without an exit through (counted once) instead of "
        "refusing it with `already_inside`.",
    )
    checkout_at: AwareDatetime | None = Field(
        default=None, description="Check everyone still inside out at this moment (once)."
    )
    _in_range = field_validator("checkout_at")(occupancy.check_moment)


class AreaPatch(Patch):
    """Only the fields present change. A maximum lowered below the people inside evicts
    nobody: it only stops entries until enough have left."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"max_occupancy", "checkout_at"})

    name: str | None = Field(default=None, min_length=1, max_length=300)
    max_occupancy: int | None = Field(default=None, strict=True, ge=0, le=MAX_LIMIT)
    allow_reentry: bool | None = None
    checkout_at: AwareDatetime | None = None
    _in_range = field_validator("checkout_at")(occupancy.check_moment)


def area_view(area: Area) -> AreaView:
    return AreaView.from_row(
        area,
        remaining=occupancy.remaining(area.inside, area.max_occupancy),
        is_full=area.max_occupancy is not None and area.inside >= area.max_occupancy,
        warning=occupancy.warns(area.inside, area.max_occupancy),
    )


async def load_area(tx: Tx, area_id: str) -> Area:
    return await rows.find(tx, Area, area_id, noun="area")


async def managed_area(tx: Tx, principal: Principal, area_id: str) -> Area:
    """The area, for its event's organizer (scanners carry the organizer's token)."""
    area = await load_area(tx, area_id)
    await managed_event(tx, principal, area.event_id)
    return area


async def area_views(tx: Tx, event_id: str) -> list[AreaView]:
    return [area_view(a) for a in await areas.listed(tx, event_id)]


async def create_area(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: AreaDraft,
    *,
    area_id: str | None = None,
) -> AreaView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        event = await managed_event(tx, principal, event_id)
        if draft.parent_id is not None:
            try:
                parent = await load_area(tx, draft.parent_id)
            except NotFound as exc:
                raise InvalidRequest(f"no area {draft.parent_id!r} to put this one in") from exc
            if parent.event_id != event.id:
                raise InvalidRequest("an area's parent must be an area of the same event")
        area = new_row(Area, draft, now, area_id, "area", event_id=event.id, inside=0)
        await rows.add(tx, area)
        journal.audit(tx, ChangeType.AREA_CREATED, ("area", area), None, draft.model_dump(), at=now)
        return area_view(area)


async def list_areas(rt: Runtime, event_id: str) -> list[AreaView]:
    async with rt.db.snapshot() as tx:
        event = await load_event(tx, event_id)
        return await area_views(tx, event.id)


async def get_area(rt: Runtime, area_id: str) -> AreaView:
    async with rt.db.snapshot() as tx:
        return area_view(await load_area(tx, area_id))


async def update_area(
    rt: Runtime, principal: Principal, area_id: str, patch: AreaPatch
) -> AreaView:
    changes = patch.changes()
    now = rt.clock()
    async with rt.db.transaction() as tx:
        area = await managed_area(tx, principal, area_id)
        fields = ("name", "max_occupancy", "allow_reentry", "checkout_at")
        before = {k: getattr(area, k) for k in fields}
        if changes:
            await rows.change(
                tx, Area, area.id, {**changes, "updated_at": now}, event_id=area.event_id
            )
        after = {**before, **changes}
        journal.audit(tx, ChangeType.AREA_CHANGED, ("area", area), before, after, at=now)
        return area_view(await load_area(tx, area.id))
