"""Exact attendance invariants read straight from the database (not through the service).

Each function opens its own synchronous connection, so it can be used after concurrent
runs in-process or against server processes, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from support.ledger_checks import direct_connection


@dataclass(frozen=True)
class RegistrationRows:
    max_attendees: int | None
    registered: int  # the counter
    heads_in_rows: int  # sum of party sizes of active registrations
    active_attendees: list[str]


@dataclass(frozen=True)
class SessionRows:
    maximum: int
    attendance: int  # the counter
    confirmed: list[str]  # confirmed seat rows
    waiting: list[tuple[str, int]]  # (attendee, seq) still waiting, in seq order
    promoted: list[tuple[str, int]]  # (attendee, seq) promoted, in seq order
    left: list[tuple[str, int]]


@dataclass(frozen=True)
class TicketRows:
    total: int
    sold: int
    reserved: int
    pending_rows: int
    paid_rows: int
    offered_rows: int
    waiting: list[tuple[str, int]]
    offered: list[tuple[str, int]]


def registration_rows(database_url: str, event_id: str) -> RegistrationRows:
    with direct_connection(database_url) as conn:
        cap = conn.execute(
            text("SELECT max_attendees FROM events WHERE id = :id"), {"id": event_id}
        ).scalar_one()
        counter = conn.execute(
            text("SELECT registered FROM event_capacity WHERE event_id = :id"),
            {"id": event_id},
        ).scalar()
        active = conn.execute(
            text(
                "SELECT attendee_id, party_size FROM registrations "
                "WHERE event_id = :id AND status = 'active' ORDER BY attendee_id"
            ),
            {"id": event_id},
        ).all()
    return RegistrationRows(
        max_attendees=cap,
        registered=int(counter or 0),
        heads_in_rows=sum(int(p) for _, p in active),
        active_attendees=[a for a, _ in active],
    )


def session_rows(database_url: str, session_id: str) -> SessionRows:
    with direct_connection(database_url) as conn:
        maximum, attendance = conn.execute(
            text(
                "SELECT maximum_capacity, current_attendance FROM session_capacity "
                "WHERE session_id = :id"
            ),
            {"id": session_id},
        ).one()
        confirmed = conn.execute(
            text(
                "SELECT attendee_id FROM session_seats "
                "WHERE session_id = :id AND status = 'confirmed' ORDER BY attendee_id"
            ),
            {"id": session_id},
        ).all()
        entries = conn.execute(
            text(
                "SELECT attendee_id, seq, status FROM waitlist_entries "
                "WHERE session_id = :id ORDER BY seq"
            ),
            {"id": session_id},
        ).all()

    def of(status: str) -> list[tuple[str, int]]:
        return [(a, int(s)) for a, s, st in entries if st == status]

    return SessionRows(
        maximum=int(maximum),
        attendance=int(attendance),
        confirmed=[a for (a,) in confirmed],
        waiting=of("waiting"),
        promoted=of("promoted"),
        left=of("left"),
    )


def ticket_rows(database_url: str, ticket_type_id: str) -> TicketRows:
    with direct_connection(database_url) as conn:
        total, sold, reserved = conn.execute(
            text(
                "SELECT quantity_total, quantity_sold, quantity_reserved FROM ticket_types "
                "WHERE id = :id"
            ),
            {"id": ticket_type_id},
        ).one()
        pending, paid = conn.execute(
            text(
                "SELECT COALESCE(SUM(CASE WHEN o.status = 'pending' THEN i.quantity END), 0),"
                " COALESCE(SUM(CASE WHEN o.status = 'paid' THEN i.quantity END), 0) "
                "FROM order_items i JOIN orders o ON o.id = i.order_id "
                "WHERE i.ticket_type_id = :id"
            ),
            {"id": ticket_type_id},
        ).one()
        entries = conn.execute(
            text(
                "SELECT attendee_id, seq, status, offered_quantity FROM waitlist_entries "
                "WHERE ticket_type_id = :id ORDER BY seq"
            ),
            {"id": ticket_type_id},
        ).all()
    return TicketRows(
        total=int(total),
        sold=int(sold),
        reserved=int(reserved),
        pending_rows=int(pending),
        paid_rows=int(paid),
        offered_rows=sum(int(q or 0) for _, _, st, q in entries if st == "offered"),
        waiting=[(a, int(s)) for a, s, st, _ in entries if st == "waiting"],
        offered=[(a, int(s)) for a, s, st, _ in entries if st == "offered"],
    )


def assert_session_invariants(rows: SessionRows) -> None:
    """No cap exceeded, counter == rows, no seat empty while someone waits."""
    assert rows.attendance <= rows.maximum
    assert rows.attendance == len(rows.confirmed)
    if rows.waiting:
        assert rows.attendance == rows.maximum, "a seat is empty while someone waits"
    waiting_people = {a for a, _ in rows.waiting}
    assert not waiting_people & set(rows.confirmed), "someone is both seated and waiting"
    assert len(waiting_people) == len(rows.waiting), "someone waits twice"


def assert_ticket_invariants(rows: TicketRows) -> None:
    assert rows.sold + rows.reserved <= rows.total
    assert rows.reserved == rows.pending_rows + rows.offered_rows
    assert rows.sold == rows.paid_rows
    if rows.waiting:
        assert rows.sold + rows.reserved == rows.total, "stock is free while someone waits"
