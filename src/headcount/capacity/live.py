"""The live-space policy: join, heartbeat, leave, drop, close, for every live kind alike.

A live space (`capacity/spaces.py`: the event's stream, an expo booth, a breakout room)
holds people as presence leases. A join reads the place's row fresh from the ledger in
one short transaction (its limit, its event, whether it is closed, its grace), checks who
may join, then asks the presence engine for one atomic admission: an organizer lowering
a limit takes effect at once for newcomers and evicts nobody. A space that counts users
gives a person's second socket their existing place; a person whose connection was lost
(a dropped socket, heartbeats stopped) gets their place back if they join again within
the space's grace, full or not, and nobody else can take it meanwhile. A heartbeat
renews the lease and shows a limit at most a second old; a leave frees the place at once
(no grace). Only the lease's holder may renew or release it: someone else's lease id
answers 404, like an unknown one, so lease ids cannot be probed; a lease that ran out
(or was lost in a Redis restart, or evicted by a closing) answers 410 `lease_expired`:
join again.

Closing is two steps in a fixed order: mark the place closed in the ledger (commit),
then close its presence resource, which evicts every lease and refuses new ones
atomically in the store. A join checks the ledger first and the store refuses it too,
so a join racing a close cannot slip in after the eviction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from headcount import metrics
from headcount.capacity import keyed
from headcount.capacity.places import record, require_organizer, view_of
from headcount.capacity.spaces import Space, V, live_space
from headcount.capacity.views import LeaseView
from headcount.domain.errors import HeadcountError, InvalidRequest, LeaseExpired, NotFound
from headcount.domain.identity import Principal
from headcount.ledger import changes, rows
from headcount.ledger import spaces as ledger
from headcount.ledger.models import Event
from headcount.presence import Lease, LeaseState, Place, Resource, parse_lease_id
from headcount.runtime import Runtime

log = logging.getLogger(__name__)


def lease_view(
    rt: Runtime,
    lease: Lease,
    *,
    occupancy: int,
    limit: int | None,
    grace: float,
    place: str | None = None,
) -> LeaseView:
    return LeaseView(
        lease_id=lease.lease_id,
        kind=lease.resource.kind,
        resource_id=lease.resource.id,
        holder=lease.holder,
        expires_at=datetime.fromtimestamp(lease.expires_at, UTC),
        ttl_seconds=float(rt.settings.presence_ttl),
        grace_seconds=grace,
        occupancy=occupancy,
        limit=limit,
        place=place,
    )


def grace_of(rt: Runtime, space: Space[Any], row: Any) -> float:
    return space.grace_for(row, rt.settings.presence_grace)


async def _read(rt: Runtime, space: Space[Any], place_id: str) -> Any:
    """The place's row, in a transaction of its own that ends before presence is asked."""
    async with rt.db.transaction() as tx:
        return await rows.find(tx, space.model, place_id, noun=space.noun)


async def _read_for_join(rt: Runtime, space: Space[Any], place_id: str) -> Any:
    """The row as a join must see it: read after the join arrived (its limit, closed or
    not, its grace), in a read shared with the joins that arrived with it (fresh.py)."""
    return await rt.join_reads.get(
        Resource(space.kind, place_id), lambda: _read(rt, space, place_id)
    )


async def must_exist(rt: Runtime, space: Space[Any], place_id: str) -> None:
    """NotFound unless the place exists: a request naming a place answers 404 for one that
    does not, whatever else it does (leaving its line changes nothing either way)."""
    await _read_for_join(rt, space, place_id)


async def join(
    rt: Runtime,
    principal: Principal,
    space: Space[Any],
    place_id: str,
    *,
    idempotency_key: str | None = None,
) -> LeaseView:
    """Take a place: a lease, or the space's refusal (which changes nothing).

    With an `Idempotency-Key` a retry gets the first lease back: the key's row is written
    in the ledger around the admission, so a concurrent retry waits and replays instead
    of taking a second place. Without one no transaction is held across the admission.
    """
    if not space.live:
        raise InvalidRequest(f"a {space.noun} is not joined with a lease")
    # Read before (not inside) the key's transaction: on SQLite a second transaction
    # inside it would wait for the write lock the first one holds.
    row = await _read_for_join(rt, space, place_id)
    space.may_join(principal, row)
    if space.is_closed(row):
        raise space.refuse_closed(row.id)
    resource, limit, event_id = Resource(space.kind, row.id), space.limit(row), space.event_of(row)
    grace = grace_of(rt, space, row)
    filled: list[LeaseView] = []

    async def admit() -> LeaseView:
        admission = await rt.presence.admit(
            resource,
            principal.sub,
            limit=limit,
            ttl=float(rt.settings.presence_ttl),
            grace=grace,
            count=space.count,
        )
        if admission.lease is None:
            metrics.ADMISSIONS.labels(space.kind, "refused").inc()
            if admission.closed and space.closed is not None:
                raise space.refuse_closed(row.id)
            raise space.refuse(row.id, limit, admission.occupancy)
        metrics.ADMISSIONS.labels(space.kind, "admitted").inc()
        rt.signals.notify(event_id)
        view = lease_view(
            rt,
            admission.lease,
            occupancy=admission.occupancy,
            limit=limit,
            grace=grace,
            place=admission.place,
        )
        if limit is not None and admission.occupancy == limit and admission.place == Place.NEW:
            # This admission took the last free place (not a replay, not a second device
            # of someone already in, not a place taken back within its grace).
            filled.append(view)
        return view

    scope = f"{space.kind}.join:{row.id}"
    answer = await keyed.once(
        rt,
        principal,
        scope=scope,
        key=idempotency_key,
        payload={"scope": scope},
        answer=LeaseView,
        outside=admit,
    )
    if filled:
        await _record_full(rt, space, event_id, filled[0])
    return answer


async def _record_full(rt: Runtime, space: Space[Any], event_id: str, lease: LeaseView) -> None:
    """`<space>.full`: this admission took the last place, in a transaction of its own.

    Presence decided it, not the ledger, so there is no deciding transaction to ride in;
    only the join that fills the space pays for one (after its key's transaction, if it
    had one: on SQLite a second transaction inside it would wait for its own lock). Each
    admission that reaches the limit is a transition from room to full (occupancy was
    below the limit, or it would have been refused), so there is one row per filling.
    If the database cannot take the row the join still stands: live limits are recorded
    at most once per transition, not at least once (docs/changes.md).
    """
    try:
        async with rt.db.transaction() as tx:
            changes.record(
                tx,
                f"{space.change_kind}.full",
                event_id=event_id,
                resource=(space.change_kind, lease.resource_id),
                payload={
                    ("event_id" if space.model is Event else f"{space.change_kind}_id"): (
                        lease.resource_id
                    ),
                    "limit": lease.limit,
                    "occupancy": lease.occupancy,
                },
                at=rt.clock(),
            )
    except HeadcountError as exc:
        log.warning("%s.full of %s not recorded: %s", space.change_kind, lease.resource_id, exc)


def _leased(lease_id: str) -> tuple[Space[Any], Resource]:
    resource = parse_lease_id(lease_id)
    space = None if resource is None else live_space(resource.kind)
    if resource is None or space is None:
        raise NotFound(f"no lease {lease_id!r}")
    return space, resource


async def _displayed(
    rt: Runtime, space: Space[Any], resource: Resource
) -> tuple[str, int | None, float]:
    """(event id, limit, grace) of a lease's place as shown, at most
    `rt.displayed_limits` old."""

    async def read() -> tuple[str, int | None, float]:
        row = await _read(rt, space, resource.id)
        return space.event_of(row), space.limit(row), grace_of(rt, space, row)

    return await rt.displayed_limits.get(resource, read)


def _refuse(state: str, lease_id: str) -> Exception:
    if state == LeaseState.NOT_HOLDER:
        return NotFound(f"no lease {lease_id!r}")
    return LeaseExpired(
        "the lease has expired or was released; join again to get a new one",
        lease_id=lease_id,
    )


async def heartbeat(rt: Runtime, principal: Principal, lease_id: str) -> LeaseView:
    space, resource = _leased(lease_id)
    renewed = await rt.presence.renew(lease_id, principal.sub, ttl=float(rt.settings.presence_ttl))
    if isinstance(renewed, str):
        raise _refuse(renewed, lease_id)
    _event_id, limit, grace = await _displayed(rt, space, resource)
    occupancy = await rt.presence.occupancy(resource)
    return lease_view(rt, renewed, occupancy=occupancy, limit=limit, grace=grace)


async def release(rt: Runtime, principal: Principal, lease_id: str) -> None:
    """Leave: frees the place at once, with no grace (unless another of the holder's
    connections still holds it). Leaving with a lease that already ran out is not an
    error, and gives up its place if it was still held in grace."""
    space, resource = _leased(lease_id)
    released = await rt.presence.release(lease_id, principal.sub)
    if released == LeaseState.NOT_HOLDER:
        raise NotFound(f"no lease {lease_id!r}")
    if released != LeaseState.GONE:
        await _changed(rt, space, resource)


async def drop(rt: Runtime, principal: Principal, lease_id: str) -> None:
    """The holder's connection is lost without a leave (a socket closed without `leave`,
    or its server going down): the lease ends now, and its place stays the holder's for
    the space's grace if no other connection of theirs holds it."""
    space, resource = _leased(lease_id)
    dropped = await rt.presence.drop(lease_id, principal.sub)
    if dropped == LeaseState.NOT_HOLDER:
        raise NotFound(f"no lease {lease_id!r}")
    if not isinstance(dropped, str):
        await _changed(rt, space, resource)


async def _changed(rt: Runtime, space: Space[Any], resource: Resource) -> None:
    """Wake this process's capacity channels for the place's event."""
    try:
        event_id, _limit, _grace = await _displayed(rt, space, resource)
    except NotFound:
        return
    rt.signals.notify(event_id)


async def holders(
    rt: Runtime, principal: Principal, space: Space[Any], place_id: str
) -> list[LeaseView]:
    """Who is in the place now: for the event's organizer (booth staff dashboards)."""
    async with rt.db.transaction() as tx:
        row = await rows.find(tx, space.model, place_id, noun=space.noun)
        await require_organizer(tx, principal, row, space.event_of(row))
    resource = Resource(space.kind, row.id)
    leases = await rt.presence.leases(resource)
    taken = await rt.presence.occupancy(resource)
    limit, grace = space.limit(row), grace_of(rt, space, row)
    return [lease_view(rt, lease, occupancy=taken, limit=limit, grace=grace) for lease in leases]


async def close(rt: Runtime, principal: Principal, space: Space[V], place_id: str) -> V:
    """Close and release everyone. Safe to repeat: a retry re-runs the eviction."""
    if space.closed is None:
        raise InvalidRequest(f"a {space.noun} cannot be closed")
    async with rt.db.transaction() as tx:
        row = await rows.find(tx, space.model, place_id, noun=space.noun)
        await require_organizer(tx, principal, row, space.event_of(row))
        if not space.is_closed(row):
            now = rt.clock()
            await ledger.close(tx, space.model, row.id, now, event_id=space.event_of(row))
            row = await rows.find(tx, space.model, row.id, noun=space.noun)
            after = {"status": row.status, "closed_at": row.closed_at}
            record(tx, space, "closed", row, before={"status": "open"}, after=after, at=now)
    # After the commit: any join that read "open" before it is refused by the store now.
    await rt.presence.close_resource(Resource(space.kind, row.id))
    rt.signals.notify(space.event_of(row))
    return view_of(space, row, 0)


async def prune_presence(rt: Runtime) -> int:
    """Background duty: the in-process engine forgets lapsed leases (Redis expires its own)."""
    prune = getattr(rt.presence, "prune", None)
    if prune is None:
        return 0
    expired: int = await prune()
    return expired
