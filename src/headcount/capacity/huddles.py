"""Huddles: small networking groups with durable membership and optimistic locking.

A join reads the huddle's `version`, then claims a place with one conditional statement:
`UPDATE huddles SET members = members + 1, version = version + 1 WHERE id = :id AND
version = :v AND members < capacity`. If another join (or leave) committed in between,
the version no longer matches, nothing changes, and the whole transaction is retried
after a short random delay (bounded, full jitter). The membership row is inserted in the
same transaction, so `members` always equals the rows (checked by `reconcile`).
Racing for the last place therefore has exactly one winner; every other racer re-reads,
sees the huddle full, and gets `huddle_full`.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount import metrics
from headcount.capacity.events import load_event, require_manager
from headcount.capacity.live import signal_change
from headcount.capacity.views import HuddleMembershipView, HuddleView
from headcount.domain.errors import Conflict, Forbidden, HuddleFull, NotFound, Timeout
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.domain.presence import HUDDLE_JOIN_ATTEMPTS, backoff_delays
from headcount.ledger.spaces import Huddle, HuddleMember
from headcount.runtime import Runtime

MAX_HUDDLE_CAPACITY = 1_000


class HuddleDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    topic: str = Field(default="", max_length=2_000)
    capacity: int = Field(strict=True, ge=1, le=MAX_HUDDLE_CAPACITY)


class HuddlePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    topic: str | None = Field(default=None, max_length=2_000)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_HUDDLE_CAPACITY)


def huddle_view(huddle: Huddle) -> HuddleView:
    return HuddleView(
        id=huddle.id,
        event_id=huddle.event_id,
        name=huddle.name,
        topic=huddle.topic,
        capacity=huddle.capacity,
        members=huddle.members,
        available=max(0, huddle.capacity - huddle.members),
        is_full=huddle.members >= huddle.capacity,
        version=huddle.version,
        created_at=huddle.created_at,
    )


async def _load(tx: AsyncSession, huddle_id: str) -> Huddle:
    if not is_well_formed(huddle_id):
        raise NotFound(f"no huddle {huddle_id!r}")
    huddle = await tx.get(Huddle, huddle_id, populate_existing=True)
    if huddle is None:
        raise NotFound(f"no huddle {huddle_id!r}")
    return huddle


async def _is_member(tx: AsyncSession, huddle_id: str, user_id: str) -> bool:
    found = await tx.get(HuddleMember, (huddle_id, user_id))
    return found is not None


async def create_huddle(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: HuddleDraft,
    *,
    huddle_id: str | None = None,
) -> HuddleView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        require_manager(principal, event)
        huddle = Huddle(
            id=huddle_id or new_id("hud"),
            event_id=event.id,
            name=draft.name,
            topic=draft.topic,
            capacity=draft.capacity,
            members=0,
            version=0,
            created_at=now,
            updated_at=now,
        )
        tx.add(huddle)
        await tx.flush()
    signal_change(rt, huddle.event_id)
    return huddle_view(huddle)


async def get_huddle(rt: Runtime, huddle_id: str) -> HuddleView:
    async with rt.db.transaction() as tx:
        return huddle_view(await _load(tx, huddle_id))


async def list_huddles(rt: Runtime, event_id: str) -> list[HuddleView]:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        rows = await tx.scalars(
            select(Huddle).where(Huddle.event_id == event.id).order_by(Huddle.created_at, Huddle.id)
        )
        return [huddle_view(h) for h in rows]


async def list_members(rt: Runtime, principal: Principal, huddle_id: str) -> list[str]:
    """Members see each other (it is a networking group); so does the organizer."""
    async with rt.db.transaction() as tx:
        huddle = await _load(tx, huddle_id)
        event = await load_event(tx, huddle.event_id)
        if not (
            principal.manages(event.organizer_id) or await _is_member(tx, huddle.id, principal.sub)
        ):
            raise Forbidden("only members and the organizer see who is in a huddle")
        rows = await tx.scalars(
            select(HuddleMember.user_id)
            .where(HuddleMember.huddle_id == huddle.id)
            .order_by(HuddleMember.joined_at, HuddleMember.user_id)
        )
        return list(rows)


async def update_huddle(
    rt: Runtime, principal: Principal, huddle_id: str, patch: HuddlePatch
) -> HuddleView:
    """A smaller capacity keeps every member; joins are refused until below it.

    Bumps `version` too, so a join that read the old capacity retries against the new one.
    """
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    async with rt.db.transaction() as tx:
        huddle = await _load(tx, huddle_id)
        require_manager(principal, await load_event(tx, huddle.event_id))
        if changes:
            await tx.execute(
                update(Huddle)
                .where(Huddle.id == huddle.id)
                .values(version=Huddle.version + 1, updated_at=rt.clock(), **changes)
                .execution_options(synchronize_session=False)
            )
        huddle = await _load(tx, huddle.id)
    signal_change(rt, huddle.event_id)
    return huddle_view(huddle)


async def join_huddle(rt: Runtime, principal: Principal, huddle_id: str) -> HuddleMembershipView:
    """Join (idempotent: a member joining again is told `joined`, nothing is counted twice)."""
    delays = backoff_delays(HUDDLE_JOIN_ATTEMPTS)
    for _attempt in range(HUDDLE_JOIN_ATTEMPTS):
        outcome = await _try_join(rt, principal, huddle_id)
        if outcome is not None:
            metrics.ADMISSIONS.labels("huddle", "admitted").inc()
            signal_change(rt, outcome.huddle.event_id)
            return outcome
        delay = next(delays, None)
        if delay is None:
            break
        await asyncio.sleep(delay)
    metrics.ADMISSIONS.labels("huddle", "contended").inc()
    raise Timeout(
        "the huddle is changing too fast to join right now; try again",
        huddle_id=huddle_id,
    )


async def _try_join(
    rt: Runtime, principal: Principal, huddle_id: str
) -> HuddleMembershipView | None:
    """One optimistic attempt: the membership, or None when the version moved under us."""
    async with rt.db.transaction() as tx:
        huddle = await _load(tx, huddle_id)
        if await _is_member(tx, huddle.id, principal.sub):
            return HuddleMembershipView(joined=True, huddle=huddle_view(huddle))
        if huddle.members >= huddle.capacity:
            metrics.ADMISSIONS.labels("huddle", "refused").inc()
            raise HuddleFull(
                f"the huddle is full ({huddle.members} of {huddle.capacity})",
                huddle_full=True,
                huddle_id=huddle.id,
                capacity=huddle.capacity,
                members=huddle.members,
            )
        claimed = await tx.execute(
            update(Huddle)
            .where(
                Huddle.id == huddle.id,
                Huddle.version == huddle.version,
                Huddle.members < Huddle.capacity,
            )
            .values(members=Huddle.members + 1, version=Huddle.version + 1, updated_at=rt.clock())
            .returning(Huddle.id)
            .execution_options(synchronize_session=False)
        )
        if claimed.first() is None:
            return None
        tx.add(HuddleMember(huddle_id=huddle.id, user_id=principal.sub, joined_at=rt.clock()))
        await tx.flush()
        return HuddleMembershipView(joined=True, huddle=huddle_view(await _load(tx, huddle.id)))


async def leave_huddle(rt: Runtime, principal: Principal, huddle_id: str) -> HuddleMembershipView:
    """Leave and free the place in one transaction; leaving twice is harmless."""
    async with rt.db.transaction() as tx:
        huddle = await _load(tx, huddle_id)
        gone = await tx.execute(
            delete(HuddleMember)
            .where(HuddleMember.huddle_id == huddle.id, HuddleMember.user_id == principal.sub)
            .returning(HuddleMember.user_id)
            .execution_options(synchronize_session=False)
        )
        if gone.first() is not None:
            freed = await tx.execute(
                update(Huddle)
                .where(Huddle.id == huddle.id, Huddle.members > 0)
                .values(
                    members=Huddle.members - 1, version=Huddle.version + 1, updated_at=rt.clock()
                )
                .returning(Huddle.id)
                .execution_options(synchronize_session=False)
            )
            if freed.first() is None:  # pragma: no cover - the CHECK constraint's job
                raise Conflict("huddle counter is out of step with its members; run reconcile")
        huddle = await _load(tx, huddle.id)
    signal_change(rt, huddle.event_id)
    return HuddleMembershipView(joined=False, huddle=huddle_view(huddle))
