"""The SQL of scans: what a credential names, its stored scans, and a ticket given back.

A credential is checked against the rows that make it valid at the moment of the scan:
a paid order's line (and which of its units were given back), an active registration's
party, a confirmed session seat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import RegistrationStatus, SeatStatus
from headcount.domain.changes import ChangeType
from headcount.domain.errors import ScanIdReused, TicketReleased, UnknownCredential
from headcount.domain.occupancy import Credential, CredentialKind, Direction, Outcome, ScanStep
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory, journal, locks
from headcount.ledger.attendance import Registration, Session, SessionSeat
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.venue import Scan, TicketRelease

_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True, slots=True)
class Holder:
    """What a valid credential belongs to."""

    event_id: str
    ticket_type_id: str | None = None
    release_after_exit: bool = False


def _unknown(credential: Credential) -> UnknownCredential:
    return UnknownCredential(
        f"no paid ticket, active registration or confirmed RSVP is {credential}",
        credential=str(credential),
    )


async def holder(tx: AsyncSession, credential: Credential) -> Holder:
    """The event a credential admits to, or `unknown_credential` / `ticket_released`."""
    if credential.kind is CredentialKind.TICKET:
        return await _ticket(tx, credential)
    if credential.kind is CredentialKind.REGISTRATION:
        found = (
            await tx.execute(
                select(Registration.event_id, Registration.party_size, Registration.status).where(
                    Registration.id == credential.ref
                )
            )
        ).first()
        if found is None or found[2] != RegistrationStatus.ACTIVE or credential.unit > found[1]:
            raise _unknown(credential)
        return Holder(found[0])
    seat = (
        await tx.execute(
            select(Session.event_id)
            .join(SessionSeat, SessionSeat.session_id == Session.id)
            .where(
                Session.id == credential.ref,
                SessionSeat.attendee_id == credential.sub_ref,
                SessionSeat.status == SeatStatus.CONFIRMED,
            )
        )
    ).first()
    if seat is None:
        raise _unknown(credential)
    return Holder(seat[0])


async def _ticket(tx: AsyncSession, credential: Credential) -> Holder:
    order_id, ticket_type_id = credential.ref, credential.sub_ref
    found = (
        await tx.execute(
            select(Order.event_id, Order.status, TicketType.release_after_exit)
            .join(TicketType, TicketType.event_id == Order.event_id)
            .where(Order.id == order_id, TicketType.id == ticket_type_id)
        )
    ).first()
    if found is None or found[1] != OrderStatus.PAID:
        raise _unknown(credential)
    quantity = await tx.scalar(
        select(OrderItem.quantity).where(
            OrderItem.order_id == order_id, OrderItem.ticket_type_id == ticket_type_id
        )
    )
    released = set(
        await tx.scalars(
            select(TicketRelease.unit).where(
                TicketRelease.order_id == order_id, TicketRelease.ticket_type_id == ticket_type_id
            )
        )
    )
    if credential.unit in released:
        raise TicketReleased(
            f"{credential} was given back to sale when its holder left",
            credential=str(credential),
        )
    # Units keep their numbers when others are given back: the line shrank by those.
    if credential.unit > (quantity or 0) + len(released):
        raise _unknown(credential)
    return Holder(found[0], ticket_type_id, bool(found[2]))


async def find(tx: AsyncSession, event_id: str, scan_id: str) -> Scan | None:
    return (
        await tx.scalars(select(Scan).where(Scan.event_id == event_id, Scan.scan_id == scan_id))
    ).first()


async def history(tx: AsyncSession, event_id: str, credential: str) -> list[ScanStep]:
    """A credential's stored scans, as the fold reads them."""
    found = await tx.execute(
        select(Scan.scanned_at, Scan.seq, Scan.area_id, Scan.direction).where(
            Scan.event_id == event_id, Scan.credential == credential
        )
    )
    return [ScanStep(at, seq, area, Direction(d)) for at, seq, area, d in found.all()]


async def record(tx: AsyncSession, scan: Scan) -> Scan:
    """Store a scan; `scan_id_reused` if its (event, scan_id) was taken meanwhile.

    `ON CONFLICT DO NOTHING`: a concurrent scan with the same id for another credential
    (its own lock does not cover this one) waits for the first, then stores nothing.
    """
    dialect = tx.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = {c.key: getattr(scan, c.key) for c in Scan.__table__.columns if c.key != "seq"}
    stored = await tx.execute(
        factory(Scan)
        .values(**columns)
        .on_conflict_do_nothing(index_elements=["event_id", "scan_id"])
        .returning(Scan.seq)
    )
    seq = stored.scalar()
    if seq is None:
        raise ScanIdReused(f"scan id {scan.scan_id!r} named another scan", scan_id=scan.scan_id)
    scan.seq = seq
    return scan


async def flag(tx: AsyncSession, scan: Scan) -> None:
    """An offline entry took an area past its maximum: it happened, so it counts."""
    scan.outcome = Outcome.FLAGGED.value
    await tx.execute(
        update(Scan)
        .where(Scan.seq == scan.seq, Scan.event_id == scan.event_id)
        .values(outcome=scan.outcome)
        .execution_options(**_NO_SYNC)
    )


async def every(tx: AsyncSession) -> dict[tuple[str, str], list[ScanStep]]:
    """Every stored scan by (event, credential). For reconcile."""
    found = await tx.execute(
        select(
            Scan.event_id, Scan.credential, Scan.scanned_at, Scan.seq, Scan.area_id, Scan.direction
        )
    )
    grouped: dict[tuple[str, str], list[ScanStep]] = {}
    for event_id, credential, at, seq, area, direction in found.all():
        grouped.setdefault((event_id, credential), []).append(
            ScanStep(at, seq, area, Direction(direction))
        )
    return grouped


async def release_unit(
    tx: AsyncSession, credential: Credential, event_id: str, now: datetime
) -> bool:
    """Give one ticket unit back to sale: its holder left the venue for good.

    The order's row is locked (step 3) so a refund cannot race it; the line shrinks by
    one (its last unit: the line goes) and the stock goes back through the one release
    path orders use (`inventory.refund`: the type, its pools, the event's cap), recorded
    in this transaction. False when the order is no longer paid: nothing to give back.
    """
    order_id, ticket_type_id = credential.ref, credential.sub_ref
    assert ticket_type_id is not None
    order = (
        await tx.execute(
            locks.exclusive(
                select(Order.status, Order.owner_id).where(
                    Order.id == order_id, Order.event_id == event_id
                )
            )
        )
    ).first()
    if order is None or order[0] != OrderStatus.PAID:
        return False
    shrunk = await tx.execute(
        update(OrderItem)
        .where(
            OrderItem.order_id == order_id,
            OrderItem.ticket_type_id == ticket_type_id,
            OrderItem.event_id == event_id,
            OrderItem.quantity > 1,
        )
        .values(quantity=OrderItem.quantity - 1)
        .returning(OrderItem.quantity)
        .execution_options(**_NO_SYNC)
    )
    if shrunk.first() is None:
        await tx.execute(
            delete(OrderItem)
            .where(
                OrderItem.order_id == order_id,
                OrderItem.ticket_type_id == ticket_type_id,
                OrderItem.event_id == event_id,
            )
            .execution_options(**_NO_SYNC)
        )
    tx.add(
        TicketRelease(
            order_id=order_id,
            ticket_type_id=ticket_type_id,
            event_id=event_id,
            unit=credential.unit,
            released_at=now,
        )
    )
    await tx.flush()
    lines: Sequence[OrderLine] = [OrderLine(ticket_type_id, 1)]
    journal.order(
        tx,
        ChangeType.TICKET_RELEASED,
        order_id=order_id,
        event_id=event_id,
        owner_id=order[1],
        status=OrderStatus.PAID.value,
        previous_status=OrderStatus.PAID.value,
        items=[{"ticket_type_id": ticket_type_id, "quantity": 1}],
        at=now,
        credential=str(credential),
    )
    await inventory.refund(tx, lines, event_id=event_id)
    return True
