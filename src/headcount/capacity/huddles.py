"""Huddles: small networking groups with durable membership and optimistic locking.

A join reads the huddle's `version`, then claims a place with one conditional statement:
`UPDATE huddles SET members = members + 1, version = version + 1 WHERE id = :id AND
version = :v AND members < capacity`. If another join (or leave) committed in between,
the version no longer matches, nothing changes, and the whole transaction is retried
after a short random delay (bounded, full jitter). The membership row is inserted in the
same transaction, so `members` always equals the rows (checked by `reconcile`).
Racing for the last place therefore has exactly one winner; every other racer re-reads,
sees the huddle full, and gets `huddle_full`.

Creating, reading and changing a huddle are the same use cases as for every place
(`capacity/places.py`, entry `spaces.HUDDLE`); `create_huddle`, `get_huddle` and
`list_huddles` are those, named for callers that want them typed.
"""

from __future__ import annotations

import asyncio

from headcount import metrics
from headcount.capacity import places
from headcount.capacity.events import load_event
from headcount.capacity.spaces import HUDDLE, HuddleDraft, HuddlePatch
from headcount.capacity.views import HuddleMembershipView, HuddleView
from headcount.domain.changes import ChangeType
from headcount.domain.errors import Forbidden, Timeout
from headcount.domain.identity import Principal
from headcount.domain.presence import HUDDLE_JOIN_ATTEMPTS, backoff_delays
from headcount.ledger import journal, rows
from headcount.ledger import spaces as ledger
from headcount.ledger.spaces import Huddle
from headcount.runtime import Runtime

__all__ = [
    "HuddleDraft",
    "HuddlePatch",
    "create_huddle",
    "get_huddle",
    "join_huddle",
    "leave_huddle",
    "list_huddles",
    "list_members",
]


async def create_huddle(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: HuddleDraft,
    *,
    huddle_id: str | None = None,
) -> HuddleView:
    return await places.create(rt, principal, HUDDLE, event_id, draft, place_id=huddle_id)


async def get_huddle(rt: Runtime, huddle_id: str) -> HuddleView:
    return await places.get(rt, HUDDLE, huddle_id)


async def list_huddles(rt: Runtime, event_id: str) -> list[HuddleView]:
    return await places.listed(rt, HUDDLE, event_id)


def _membership(joined: bool, huddle: Huddle) -> HuddleMembershipView:
    return HuddleMembershipView(
        joined=joined, huddle=places.view_of(HUDDLE, huddle, huddle.members)
    )


async def list_members(rt: Runtime, principal: Principal, huddle_id: str) -> list[str]:
    """Members see each other (it is a networking group); so does the organizer."""
    async with rt.db.transaction() as tx:
        huddle = await rows.find(tx, Huddle, huddle_id, noun=HUDDLE.noun)
        event = await load_event(tx, huddle.event_id)
        if not (
            principal.manages(event.organizer_id)
            or await ledger.is_member(tx, huddle.id, principal.sub)
        ):
            raise Forbidden("only members and the organizer see who is in a huddle")
        return await ledger.member_ids(tx, huddle.id)


async def join_huddle(rt: Runtime, principal: Principal, huddle_id: str) -> HuddleMembershipView:
    """Join (idempotent: a member joining again is told `joined`, nothing is counted twice)."""
    delays = backoff_delays(HUDDLE_JOIN_ATTEMPTS)
    for _attempt in range(HUDDLE_JOIN_ATTEMPTS):
        outcome = await _try_join(rt, principal, huddle_id)
        if outcome is not None:
            metrics.ADMISSIONS.labels(HUDDLE.kind, "admitted").inc()
            rt.signals.notify(outcome.huddle.event_id)
            return outcome
        delay = next(delays, None)
        if delay is None:
            break
        await asyncio.sleep(delay)
    metrics.ADMISSIONS.labels(HUDDLE.kind, "contended").inc()
    raise Timeout(
        "the huddle is changing too fast to join right now; try again",
        huddle_id=huddle_id,
    )


async def _try_join(
    rt: Runtime, principal: Principal, huddle_id: str
) -> HuddleMembershipView | None:
    """One optimistic attempt: the membership, or None when the version moved under us."""
    async with rt.db.transaction() as tx:
        huddle = await rows.find(tx, Huddle, huddle_id, noun=HUDDLE.noun)
        if await ledger.is_member(tx, huddle.id, principal.sub):
            return _membership(True, huddle)
        if huddle.members >= huddle.capacity:
            metrics.ADMISSIONS.labels(HUDDLE.kind, "refused").inc()
            raise HUDDLE.refuse(huddle.id, huddle.capacity, huddle.members)
        now = rt.clock()
        if not await ledger.claim(tx, huddle, principal.sub, now):
            return None
        joined = await rows.find(tx, Huddle, huddle.id, noun=HUDDLE.noun)
        journal.membership(tx, ChangeType.HUDDLE_JOINED, joined, principal.sub, now)
        return _membership(True, joined)


async def leave_huddle(rt: Runtime, principal: Principal, huddle_id: str) -> HuddleMembershipView:
    """Leave and free the place in one transaction; leaving twice is harmless."""
    async with rt.db.transaction() as tx:
        now = rt.clock()
        huddle = await rows.find(tx, Huddle, huddle_id, noun=HUDDLE.noun)
        if await ledger.give_back(tx, huddle.id, principal.sub, now, event_id=huddle.event_id):
            huddle = await rows.find(tx, Huddle, huddle.id, noun=HUDDLE.noun)
            journal.membership(tx, ChangeType.HUDDLE_LEFT, huddle, principal.sub, now)
    rt.signals.notify(huddle.event_id)
    return _membership(False, huddle)
