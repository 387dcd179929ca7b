"""What every live-presence policy shares: admit-or-refuse, lease views, change signals.

Each policy (viewers, booths, breakout rooms) reads its limit from the ledger, then asks
the presence engine for one atomic admission. The limit is read fresh on every join, so
an organizer lowering it takes effect at once for newcomers and evicts nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from headcount import metrics
from headcount.capacity.views import LeaseView
from headcount.domain.errors import HeadcountError
from headcount.domain.identity import Principal
from headcount.ledger.idempotency import run_idempotent
from headcount.presence import Lease, Resource
from headcount.runtime import Runtime

Refusal = Callable[[int], HeadcountError]


def lease_view(rt: Runtime, lease: Lease, *, occupancy: int, limit: int | None) -> LeaseView:
    return LeaseView(
        lease_id=lease.lease_id,
        kind=lease.resource.kind,
        resource_id=lease.resource.id,
        holder=lease.holder,
        expires_at=datetime.fromtimestamp(lease.expires_at, UTC),
        ttl_seconds=float(rt.settings.presence_ttl),
        occupancy=occupancy,
        limit=limit,
    )


async def admit(
    rt: Runtime,
    resource: Resource,
    holder: str,
    *,
    event_id: str,
    limit: int | None,
    refuse: Refusal,
    closed: Refusal | None = None,
) -> LeaseView:
    """One atomic admission; a refusal raises the policy's own error and changes nothing."""
    admission = await rt.presence.admit(
        resource, holder, limit=limit, ttl=float(rt.settings.presence_ttl)
    )
    if admission.lease is None:
        metrics.ADMISSIONS.labels(resource.kind, "refused").inc()
        if admission.closed and closed is not None:
            raise closed(admission.occupancy)
        raise refuse(admission.occupancy)
    metrics.ADMISSIONS.labels(resource.kind, "admitted").inc()
    signal_change(rt, event_id)
    return lease_view(rt, admission.lease, occupancy=admission.occupancy, limit=limit)


async def keyed(
    rt: Runtime,
    principal: Principal,
    scope: str,
    key: str | None,
    join: Callable[[], Awaitable[LeaseView]],
) -> LeaseView:
    """Idempotency-Key for joins: a retry with the same key gets the first lease back.

    The key row is written in the ledger around the admission, so a concurrent retry waits
    and replays instead of taking a second place. If the ledger transaction fails after
    the admission, that lease is held by nobody and simply expires within the TTL.
    """
    if key is None:
        return await join()

    async def work(_session: Any) -> dict[str, Any]:
        return (await join()).model_dump(mode="json")

    answer = await run_idempotent(
        rt.db,
        owner=principal.sub,
        scope=scope,
        key=key,
        payload={"scope": scope},
        now=rt.clock(),
        work=work,
    )
    return LeaseView.model_validate(answer)


class ChangeSignals:
    """In-process wake-ups for the capacity push channel: "something of event X changed".

    Only a hint that lets a local subscriber push at once; subscribers also poll, which is
    what carries changes made by other API processes (see docs/concurrency.md).
    """

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, event_id: str) -> asyncio.Event:
        flag = asyncio.Event()
        self._waiters.setdefault(event_id, set()).add(flag)
        return flag

    def unsubscribe(self, event_id: str, flag: asyncio.Event) -> None:
        waiters = self._waiters.get(event_id)
        if waiters is not None:
            waiters.discard(flag)
            if not waiters:
                del self._waiters[event_id]

    def notify(self, event_id: str) -> None:
        for flag in self._waiters.get(event_id, ()):
            flag.set()


def signals(rt: Runtime) -> ChangeSignals:
    found = rt.extras.get("capacity_signals")
    if not isinstance(found, ChangeSignals):
        found = rt.extras["capacity_signals"] = ChangeSignals()
    return found


def signal_change(rt: Runtime, event_id: str) -> None:
    signals(rt).notify(event_id)


async def prune_presence(rt: Runtime) -> int:
    """Background duty: the in-process engine forgets lapsed leases (Redis expires its own)."""
    prune = getattr(rt.presence, "prune", None)
    if prune is None:
        return 0
    expired: int = await prune()
    return expired
