"""Expo booths: durable definitions (ledger) with live visitors (presence leases)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.events import MAX_LIMIT, load_event, require_manager
from headcount.capacity.live import admit, keyed, lease_view, signal_change
from headcount.capacity.views import BoothView, LeaseView
from headcount.domain.errors import BoothFull, InvalidRequest, NotFound, ServiceUnavailable
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.ledger.spaces import Booth
from headcount.presence import Resource
from headcount.runtime import Runtime

KIND = "booth"
TIER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class BoothDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    tier: str = Field(default="standard", pattern=TIER_PATTERN)
    chat_enabled: bool = True
    video_enabled: bool = False
    max_visitors: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


class BoothPatch(BaseModel):
    """Only the fields present change; `max_visitors: null` removes the cap."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    tier: str | None = Field(default=None, pattern=TIER_PATTERN)
    chat_enabled: bool | None = None
    video_enabled: bool | None = None
    max_visitors: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


def booth_resource(booth_id: str) -> Resource:
    return Resource(KIND, booth_id)


def booth_view(booth: Booth, visitors: int | None) -> BoothView:
    cap = booth.max_visitors
    return BoothView(
        id=booth.id,
        event_id=booth.event_id,
        name=booth.name,
        description=booth.description,
        tier=booth.tier,
        chat_enabled=booth.chat_enabled,
        video_enabled=booth.video_enabled,
        max_visitors=cap,
        visitors=visitors,
        is_full=None if visitors is None else (cap is not None and visitors >= cap),
        created_at=booth.created_at,
        updated_at=booth.updated_at,
    )


async def _load(tx: AsyncSession, booth_id: str) -> Booth:
    if not is_well_formed(booth_id):
        raise NotFound(f"no booth {booth_id!r}")
    booth = await tx.get(Booth, booth_id, populate_existing=True)
    if booth is None:
        raise NotFound(f"no booth {booth_id!r}")
    return booth


async def _visitors(rt: Runtime, booths: list[Booth]) -> dict[str, int | None]:
    try:
        counts = await rt.presence.occupancies([booth_resource(b.id) for b in booths])
    except ServiceUnavailable:
        return {b.id: None for b in booths}
    return {r.id: n for r, n in counts.items()}


async def create_booth(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: BoothDraft,
    *,
    booth_id: str | None = None,
) -> BoothView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        require_manager(principal, event)
        booth = Booth(
            id=booth_id or new_id("bth"),
            event_id=event.id,
            created_at=now,
            updated_at=now,
            **draft.model_dump(),
        )
        tx.add(booth)
        await tx.flush()
    signal_change(rt, booth.event_id)
    return booth_view(booth, 0)


async def get_booth(rt: Runtime, booth_id: str) -> BoothView:
    async with rt.db.transaction() as tx:
        booth = await _load(tx, booth_id)
    return booth_view(booth, (await _visitors(rt, [booth]))[booth.id])


async def list_booths(rt: Runtime, event_id: str) -> list[BoothView]:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        booths = list(
            await tx.scalars(
                select(Booth).where(Booth.event_id == event.id).order_by(Booth.created_at, Booth.id)
            )
        )
    visitors = await _visitors(rt, booths)
    return [booth_view(b, visitors[b.id]) for b in booths]


async def update_booth(
    rt: Runtime, principal: Principal, booth_id: str, patch: BoothPatch
) -> BoothView:
    """Lowering `max_visitors` turns nobody out: newcomers wait until it is below the cap."""
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    for required in ("name", "tier", "chat_enabled", "video_enabled"):
        if required in changes and changes[required] is None:
            raise InvalidRequest(f"{required} cannot be null")
    if "description" in changes and changes["description"] is None:
        changes["description"] = ""
    async with rt.db.transaction() as tx:
        booth = await _load(tx, booth_id)
        require_manager(principal, await load_event(tx, booth.event_id))
        if changes:
            changes["updated_at"] = rt.clock()
            await tx.execute(
                update(Booth)
                .where(Booth.id == booth.id)
                .values(**changes)
                .execution_options(synchronize_session=False)
            )
        booth = await _load(tx, booth.id)
    signal_change(rt, booth.event_id)
    return booth_view(booth, (await _visitors(rt, [booth]))[booth.id])


async def limit_of(rt: Runtime, booth_id: str) -> tuple[str, int | None]:
    async with rt.db.transaction() as tx:
        booth = await _load(tx, booth_id)
        return booth.event_id, booth.max_visitors


async def enter_booth(
    rt: Runtime, principal: Principal, booth_id: str, *, idempotency_key: str | None = None
) -> LeaseView:
    event_id, limit = await limit_of(rt, booth_id)  # before the keyed transaction (SQLite)

    def refuse(visitors: int) -> BoothFull:
        return BoothFull(
            f"the booth is full ({visitors} of {limit} visitors); try again shortly",
            booth_id=booth_id,
            max_visitors=limit,
            visitors=visitors,
        )

    return await keyed(
        rt,
        principal,
        f"booths.visit:{booth_id}",
        idempotency_key,
        lambda: admit(
            rt,
            booth_resource(booth_id),
            principal.sub,
            event_id=event_id,
            limit=limit,
            refuse=refuse,
        ),
    )


async def list_visits(rt: Runtime, principal: Principal, booth_id: str) -> list[LeaseView]:
    """Who is at the booth now: for the event's organizer (booth staff dashboards)."""
    async with rt.db.transaction() as tx:
        booth = await _load(tx, booth_id)
        require_manager(principal, await load_event(tx, booth.event_id))
    leases = await rt.presence.leases(booth_resource(booth.id))
    return [
        lease_view(rt, lease, occupancy=len(leases), limit=booth.max_visitors) for lease in leases
    ]
