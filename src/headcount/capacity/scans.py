"""Scans at the door: entries and exits, offline batches, an organizer's corrections.

One scan is one transaction (ledger/locks.py step 0): the credential's advisory lock, so
two gates reading the same person queue (Hi.Events #889), then the rows of the areas its
position leaves and enters, each moved by one conditional UPDATE in ascending id. The
new position is the fold of every stored scan of the credential in scan-time order
(domain/occupancy.py), so late, repeated or shuffled uploads end in one state.

Online, a refusal (`area_full`, `already_inside`, a bad credential) stores nothing and
changes nothing; the scanner may retry the same `scan_id`. Offline, the scan already
happened at the door: it is stored, an entry past the maximum is counted and flagged,
and one that moved nobody is stored as such (`conflicted` in the batch's answer).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from headcount.capacity.areas import area_view, load_area, managed_area
from headcount.capacity.events import managed_event
from headcount.capacity.views import AreaResetView, BatchScanResult, ScanBatchView, ScanView
from headcount.domain import occupancy
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    AlreadyInside,
    AreaFull,
    CredentialOtherEvent,
    HeadcountError,
    InvalidRequest,
    ScanIdReused,
    TicketReleased,
    UnknownCredential,
)
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.domain.occupancy import (
    Credential,
    CredentialKind,
    Direction,
    Outcome,
    ScanStep,
    Source,
)
from headcount.ledger import areas, journal, locks, scans
from headcount.ledger.db import Tx
from headcount.ledger.venue import Area, Scan
from headcount.runtime import Runtime

_SCAN_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


class ScanDraft(BaseModel):
    """A scan as a gate reports it."""

    model_config = ConfigDict(extra="forbid")

    scan_id: str = Field(
        pattern=_SCAN_ID, description="Made by the scanner, unique per event: retries reuse it."
    )
    credential: str = Field(min_length=1, max_length=occupancy.MAX_CREDENTIAL)
    direction: Direction
    scanned_at: AwareDatetime | None = Field(
        default=None, description="When the gate saw it; the server's time when left out."
    )

    _in_range = field_validator("scanned_at")(occupancy.check_moment)


class BatchScan(ScanDraft):
    area_id: str = Field(min_length=1, max_length=80)
    scanned_at: AwareDatetime  # offline scans always carry the time they happened


class ScanBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scans: list[BatchScan] = Field(min_length=1, max_length=occupancy.MAX_BATCH)


class CheckoutDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(min_length=1, max_length=occupancy.MAX_CREDENTIAL)


_CHANGE = {
    (Direction.ENTRY, Outcome.ACCEPTED): ChangeType.AREA_ENTERED,
    (Direction.ENTRY, Outcome.ALREADY_INSIDE): ChangeType.AREA_ENTRY_REPEATED,
    (Direction.ENTRY, Outcome.FLAGGED): ChangeType.AREA_ENTRY_FLAGGED,
    (Direction.EXIT, Outcome.ACCEPTED): ChangeType.AREA_EXITED,
    (Direction.EXIT, Outcome.NOT_INSIDE): ChangeType.AREA_EXIT_UNMATCHED,
}


def _view(
    scan: Scan, inside: int, maximum: int | None, *, duplicate: bool = False, released: bool = False
) -> ScanView:
    outcome = Outcome(scan.outcome)
    return ScanView.from_row(
        scan,
        outcome=outcome.value,
        admitted=outcome is not Outcome.NOT_INSIDE,
        duplicate=duplicate,
        inside=inside,
        max_occupancy=maximum,
        released_to_sale=released,
    )


async def _apply(
    tx: Tx,
    area: Area,
    raw_credential: str,
    direction: Direction,
    *,
    scan_id: str,
    scanned_at: datetime,
    source: Source,
    now: datetime,
) -> ScanView:
    """Apply one scan at `area` (see the module docstring); raises the online refusals."""
    journal.stamp(tx, now)
    credential = occupancy.parse_credential(raw_credential)
    name = str(credential)
    # The lock first: a retry of a scan that already gave its ticket back to sale must
    # find that scan, not a released ticket.
    await locks.credential(tx, area.event_id, name)
    if (earlier := await scans.find(tx, area.event_id, scan_id)) is not None:
        same = (earlier.area_id, earlier.credential, earlier.direction)
        if same != (area.id, name, direction.value):
            raise ScanIdReused(
                f"scan id {scan_id!r} was used for a different scan", scan_id=scan_id
            )
        node = (await areas.tree(tx, area.event_id))[area.id]
        return _view(earlier, node.inside, node.max_occupancy, duplicate=True)
    holder = await _holder(tx, credential, area.event_id, direction)
    if holder.event_id != area.event_id:
        raise CredentialOtherEvent(
            f"{credential} is for another event than area {area.name!r}",
            credential=name,
            event_id=area.event_id,
        )
    nodes = await areas.tree(tx, area.event_id)
    links = areas.parents(nodes)
    past = await scans.history(tx, area.event_id, name)
    before = await areas.position(tx, area.event_id, name)
    if source is not Source.OFFLINE and past:
        # Applied now, after everything stored: never folded in before a scan it followed.
        scanned_at = max(scanned_at, *(p.at for p in past))
    # Judged against the position at the scan's own time (a late offline scan may land
    # before scans already stored); the final position is the fold of all of them.
    here = ScanStep(scanned_at, 2**62, area.id, direction)
    then = occupancy.fold([s for s in past if (s.at, s.seq) < (here.at, here.seq)], links)
    _, outcome = occupancy.step(then, direction, area.id, links)
    after = occupancy.fold([*past, here], links)
    online = source is Source.ONLINE
    if online and outcome is Outcome.ALREADY_INSIDE and not nodes[area.id].allow_reentry:
        raise AlreadyInside(
            f"{name} is already inside {area.name!r}: scan an exit first",
            area_id=area.id,
            credential=name,
        )
    moves = occupancy.moves(before, after, links)
    await areas.place(tx, area.event_id, name, after, now)
    scan = await scans.record(
        tx,
        Scan(
            event_id=area.event_id,
            scan_id=scan_id,
            area_id=area.id,
            credential=name,
            direction=direction.value,
            source=source.value,
            outcome=outcome.value,
            scanned_at=scanned_at,
            recorded_at=now,
        ),
    )
    # The counters last: every gate queues on the area's row from this UPDATE to COMMIT,
    # so nothing else runs while it is held but the change row that rides with it.
    moved, refused = await areas.move(tx, moves, event_id=area.event_id, enforce=online)
    if refused is not None:
        full = nodes[refused]
        raise AreaFull(
            f"{full.name!r} is at its maximum of {full.max_occupancy}",
            area_id=refused,
            max_occupancy=full.max_occupancy,
            inside=full.inside,
        )
    if direction is Direction.ENTRY and any(m.over and moves[m.area_id] > 0 for m in moved):
        outcome = Outcome.FLAGGED
        await scans.flag(tx, scan)
    kind = ChangeType.AREA_CHECKED_OUT if source is Source.CORRECTION else None
    journal.scan(tx, kind or _CHANGE[(direction, outcome)], scan, moves, after)
    released = False
    if (
        holder.release_after_exit
        and credential.kind is CredentialKind.TICKET
        and before is not None
        and after is None
    ):
        released = await scans.release_unit(tx, credential, area.event_id, now)
    inside = next((m.inside for m in moved if m.area_id == area.id), nodes[area.id].inside)
    return _view(scan, inside, nodes[area.id].max_occupancy, released=released)


async def _holder(
    tx: Tx, credential: Credential, event_id: str, direction: Direction
) -> scans.Holder:
    """Who the credential admits; someone inside whose credential stopped being valid
    meanwhile (a refund, a cancelled registration or RSVP) may still be let out."""
    try:
        return await scans.holder(tx, credential)
    except (UnknownCredential, TicketReleased):
        inside = await areas.position(tx, event_id, str(credential)) is not None
        if direction is Direction.EXIT and inside:
            return scans.Holder(event_id)
        raise


async def scan(rt: Runtime, principal: Principal, area_id: str, draft: ScanDraft) -> ScanView:
    """An online scan: `entry` admitted or refused, `exit` recorded. `scan_id` makes a
    retry safe: a scan already applied answers as it did (`duplicate`)."""

    async def work(tx: Tx) -> ScanView:
        now = rt.clock()
        area = await managed_area(tx, principal, area_id)
        return await _apply(
            tx,
            area,
            draft.credential,
            draft.direction,
            scan_id=draft.scan_id,
            scanned_at=draft.scanned_at or now,
            source=Source.ONLINE,
            now=now,
        )

    return await rt.db.atomically(work)


async def scan_batch(
    rt: Runtime, principal: Principal, event_id: str, batch: ScanBatch
) -> ScanBatchView:
    """An offline gate's upload: every scan applied in scan-time order, each in its own
    transaction; the answer lists each scan's fate in upload order."""
    async with rt.db.snapshot() as tx:
        event = await managed_event(tx, principal, event_id)
    ordered = sorted(enumerate(batch.scans), key=lambda p: (p[1].scanned_at, p[1].scan_id))
    results: dict[int, BatchScanResult] = {}
    for index, item in ordered:
        results[index] = await _offline(rt, event.id, item)
    shown = [results[i] for i in range(len(batch.scans))]
    return ScanBatchView(
        event_id=event.id,
        accepted=sum(r.status == "accepted" for r in shown),
        duplicates=sum(r.status == "duplicate" for r in shown),
        conflicted=sum(r.status == "conflicted" for r in shown),
        rejected=sum(r.status == "rejected" for r in shown),
        results=shown,
    )


async def _offline(rt: Runtime, event_id: str, item: BatchScan) -> BatchScanResult:
    async def work(tx: Tx) -> ScanView:
        area = await load_area(tx, item.area_id)
        if area.event_id != event_id:
            raise InvalidRequest(f"area {item.area_id!r} is not an area of this event")
        return await _apply(
            tx,
            area,
            item.credential,
            item.direction,
            scan_id=item.scan_id,
            scanned_at=item.scanned_at,
            source=Source.OFFLINE,
            now=rt.clock(),
        )

    try:
        view = await rt.db.atomically(work)
    except HeadcountError as exc:
        return BatchScanResult(
            scan_id=item.scan_id, status="rejected", code=exc.code, detail=exc.detail
        )
    if view.duplicate:
        status = "duplicate"
    elif view.outcome == Outcome.ACCEPTED:
        status = "accepted"
    else:
        status = "conflicted"
    return BatchScanResult(scan_id=item.scan_id, status=status, code=None, scan=view)


async def force_exit(
    rt: Runtime, principal: Principal, area_id: str, draft: CheckoutDraft
) -> ScanView:
    """An organizer checks someone out of an area (and what is inside it): recorded as a
    correction scan, so the fold and reconcile see it like any exit."""

    async def work(tx: Tx) -> ScanView:
        area = await managed_area(tx, principal, area_id)
        return await _correct(tx, area, draft.credential, rt.clock())

    return await rt.db.atomically(work)


async def _correct(tx: Tx, area: Area, credential: str, now: datetime) -> ScanView:
    return await _apply(
        tx,
        area,
        credential,
        Direction.EXIT,
        scan_id=new_id("fix"),
        scanned_at=now,
        source=Source.CORRECTION,
        now=now,
    )


async def reset_area(rt: Runtime, principal: Principal, area_id: str) -> AreaResetView:
    """Check everyone out of the area and the areas inside it (the nightly reset): one
    recorded correction per credential, each atomic."""
    async with rt.db.snapshot() as tx:
        await managed_area(tx, principal, area_id)
    checked_out = await _check_out_everyone(rt, area_id)
    async with rt.db.snapshot() as tx:
        return AreaResetView(area=area_view(await load_area(tx, area_id)), checked_out=checked_out)


async def _check_out_everyone(rt: Runtime, area_id: str) -> int:
    async with rt.db.snapshot() as tx:
        area = await load_area(tx, area_id)
        within = areas.descendants(area.id, await areas.tree(tx, area.event_id))
        inside = await areas.credentials_within(tx, within)
    checked_out = 0
    for credential in inside:

        async def work(tx: Tx, credential: str = credential) -> bool:
            found = await load_area(tx, area_id)
            return (await _correct(tx, found, credential, rt.clock())).outcome == Outcome.ACCEPTED

        try:
            checked_out += await rt.db.atomically(work)
        except HeadcountError:
            continue  # the credential stopped being valid meanwhile: nothing to move
    return checked_out


async def sweep_checkouts(rt: Runtime, *, batch: int = 20) -> int:
    """The auto checkout: areas whose `checkout_at` passed are reset, each by one replica
    (claimed SKIP LOCKED and cleared in one transaction). A background duty."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            due = await areas.due_checkouts(tx, rt.clock(), limit=batch)
        for area_id in due:
            total += await _check_out_everyone(rt, area_id)
        if len(due) < batch:
            return total
