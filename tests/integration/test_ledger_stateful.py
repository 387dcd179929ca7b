"""Random histories of the ledger, checked after every step (hypothesis stateful testing).

A state machine drives the service layer — the same functions REST and GraphQL call — with
random sequences of: order create / confirm / cancel / refund, the clock running past
hold and offer lifetimes (and the sweepers the servers run), event registration and its
cancellation, session RSVP and leave, ticket waitlist join and leave. After every step:

* no limit is exceeded (tickets, event attendees, session seats, per-user live holds);
* every counter equals the rows that explain it (`ledger.reconcile`, as the CLI runs it);
* a refused step changed nothing (row counts per table and status, and every counter of
  the event, are the same before and after).

It runs on SQLite and PostgreSQL, with a bounded number of short histories, each backend
on a database of its own: `reconcile` and the row counts read whole tables after every
step, and on the session's shared database (every other suite's rows) a step took 0.7 s.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from headcount.api.app import DUTIES
from headcount.capacity import events, orders, registrations, sessions, tickets, waitlists
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.config import Settings
from headcount.domain.errors import HeadcountError
from headcount.domain.identity import Principal
from headcount.ledger.attendance import EventCapacity, SessionCapacity
from headcount.ledger.models import Base, Order, TicketType
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer

T = TypeVar("T")
# An order step adds (order id, buyer) to the `orders` bundle, or nothing when refused.
Made = tuple[str, int] | MultipleResults[tuple[str, int]]
SEEN: Counter[str] = Counter()  # refusals met, so the test can show it reached the edges

TOTALS = (4, 8)
MAX_ATTENDEES = 8  # people: registrations and tickets together
SEATS = 2
MAX_HOLDS = 2
HOLD_TTL = 60
OFFER_TTL = 30

RUN = settings(
    max_examples=8,
    stateful_step_count=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class LedgerMachine(RuleBasedStateMachine):
    database_url = ""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.offset = timedelta()
        self.base = datetime.now(UTC)
        self.rt = Runtime.from_settings(
            Settings(
                database_url=self.database_url,
                env="test",
                hold_ttl=HOLD_TTL,
                offer_ttl=OFFER_TTL,
                max_pending_orders_per_user=MAX_HOLDS,
            )
        )
        self.rt.clock = lambda: self.base + self.offset
        nonce = secrets.token_hex(3)
        self.org = organizer(f"org-sm-{nonce}")
        self.users = [attendee(f"sm-{nonce}-{i}") for i in range(4)]
        self.event_id, self.tt_ids, self.session_id = self.run(self._setup())

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    async def _setup(self) -> tuple[str, list[str], str]:
        event = await events.create_event(
            self.rt, self.org, EventDraft(name="Stateful", max_attendees=MAX_ATTENDEES)
        )
        tts = [
            await tickets.create_ticket_type(
                self.rt, self.org, event.id, TicketTypeDraft(name=f"T{i}", quantity_total=n)
            )
            for i, n in enumerate(TOTALS)
        ]
        session = await sessions.create_session(
            self.rt, self.org, event.id, SessionDraft(title="Talk", max_participants=SEATS)
        )
        return event.id, [tt.id for tt in tts], session.id

    def teardown(self) -> None:
        self.run(self.rt.close())
        self.loop.close()

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, name: str, work: Awaitable[T]) -> T | None:
        """Run one step; a refusal must leave everything as it was."""
        before = self.run(self._state())
        try:
            return self.run(work)
        except HeadcountError as exc:
            refused = exc.code
        SEEN[f"{name}:{refused}"] += 1
        assert self.run(self._state()) == before, f"refused {name} ({refused}) changed the ledger"
        return None

    async def _state(self) -> dict[str, Any]:
        """Row counts per table (and per status) plus every counter of this event."""
        state: dict[str, Any] = {}
        async with self.rt.db.transaction() as tx:
            for table in Base.metadata.sorted_tables:
                if "status" in table.c:
                    rows = await tx.execute(
                        select(table.c.status, func.count()).group_by(table.c.status)
                    )
                    state[table.name] = sorted(rows.all())
                else:
                    state[table.name] = await tx.scalar(select(func.count()).select_from(table))
            state["tickets"] = (
                await tx.execute(
                    select(TicketType.quantity_sold, TicketType.quantity_reserved)
                    .where(TicketType.id.in_(self.tt_ids))
                    .order_by(TicketType.id)
                )
            ).all()
        return state

    def user(self, n: int) -> Principal:
        return self.users[n]

    # -- rules -----------------------------------------------------------------------------

    @rule(
        target=orders,
        # Mostly two buyers, so the per-user hold limit is reached too, not only the stock.
        who=st.sampled_from([0, 0, 1, 1, 2, 3]),
        lines=st.lists(
            st.tuples(st.integers(0, len(TOTALS) - 1), st.integers(1, 3)), min_size=1, max_size=2
        ),
    )
    def create_order(self, who: int, lines: list[tuple[int, int]]) -> Made:
        draft = OrderDraft(
            event_id=self.event_id,
            items=[OrderItemInput(ticket_type_id=self.tt_ids[i], quantity=q) for i, q in lines],
        )
        made = self.attempt("create", orders.create_order(self.rt, self.user(who), draft))
        return multiple() if made is None else (made.id, who)

    @rule(target=orders, tt=st.integers(0, len(TOTALS) - 1))
    def hoard(self, tt: int) -> Made:
        """One buyer keeps asking for one more ticket: the hold limit must stop them."""
        return self.create_order(0, [(tt, 1)])

    @rule(order=orders)
    def confirm(self, order: tuple[str, int]) -> None:
        self.attempt("confirm", orders.confirm_order(self.rt, self.org, order[0]))

    @rule(order=consumes(orders), by_owner=st.booleans())
    def cancel_or_refund(self, order: tuple[str, int], by_owner: bool) -> None:
        who = self.user(order[1]) if by_owner else self.org
        self.attempt("cancel", orders.cancel_order(self.rt, who, order[0]))

    @rule(seconds=st.sampled_from([5, OFFER_TTL + 1, HOLD_TTL + 1]))
    def time_passes(self, seconds: int) -> None:
        self.offset += timedelta(seconds=seconds)
        for duty in DUTIES:
            self.run(duty(self.rt))

    @rule(who=st.integers(0, 3), party=st.integers(1, 3))
    def register(self, who: int, party: int) -> None:
        self.attempt(
            "register",
            registrations.register(
                self.rt, self.user(who), self.event_id, RegistrationDraft(party_size=party)
            ),
        )

    @rule(who=st.integers(0, 3))
    def unregister(self, who: int) -> None:
        self.attempt(
            "unregister", registrations.cancel_registration(self.rt, self.user(who), self.event_id)
        )

    @rule(who=st.integers(0, 3))
    def rsvp(self, who: int) -> None:
        self.attempt("rsvp", sessions.rsvp(self.rt, self.user(who), self.session_id))

    @rule(who=st.integers(0, 3))
    def leave_session(self, who: int) -> None:
        self.attempt("leave", sessions.leave(self.rt, self.user(who), self.session_id))

    @rule(who=st.integers(0, 3), tt=st.integers(0, len(TOTALS) - 1), quantity=st.integers(1, 2))
    def join_ticket_waitlist(self, who: int, tt: int, quantity: int) -> None:
        self.attempt(
            "waitlist",
            waitlists.join_ticket_waitlist(
                self.rt, self.user(who), self.tt_ids[tt], TicketWaitlistDraft(quantity=quantity)
            ),
        )

    @rule(who=st.integers(0, 3), tt=st.integers(0, len(TOTALS) - 1))
    def leave_ticket_waitlist(self, who: int, tt: int) -> None:
        self.attempt(
            "unwaitlist",
            waitlists.leave_ticket_waitlist(self.rt, self.user(who), self.tt_ids[tt]),
        )

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def books_balance_and_no_limit_is_exceeded(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        async with self.rt.db.transaction() as tx:
            drifts = await reconcile(tx)
            assert [str(d) for d in drifts] == []
            for total, sold, reserved in (
                await tx.execute(
                    select(
                        TicketType.quantity_total,
                        TicketType.quantity_sold,
                        TicketType.quantity_reserved,
                    ).where(TicketType.id.in_(self.tt_ids))
                )
            ).all():
                assert 0 <= sold + reserved <= total
            people = (
                await tx.execute(
                    select(EventCapacity.registered, EventCapacity.tickets).where(
                        EventCapacity.event_id == self.event_id
                    )
                )
            ).first()
            assert people is None or sum(people) <= MAX_ATTENDEES, people
            seated = await tx.scalar(
                select(SessionCapacity.current_attendance).where(
                    SessionCapacity.session_id == self.session_id
                )
            )
            assert (seated or 0) <= SEATS
            holds = await tx.execute(
                select(Order.owner_id, func.count())
                .where(
                    Order.event_id == self.event_id,
                    Order.status == "pending",
                    Order.expires_at > self.rt.clock(),
                )
                .group_by(Order.owner_id)
            )
            for owner, count in holds.all():
                assert count <= MAX_HOLDS, (owner, count)
            # Lapsed holds never outlive a sweep: the sweep runs whenever time passes.
            lapsed = await tx.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    Order.event_id == self.event_id,
                    Order.status == "pending",
                    Order.expires_at <= self.rt.clock(),
                )
            )
            assert lapsed == 0


@pytest.mark.slow
def test_random_histories_keep_the_books_balanced(own_database: str) -> None:
    machine = type("Machine", (LedgerMachine,), {"database_url": own_database})
    SEEN.clear()
    run_state_machine_as_test(machine, settings=RUN)
    print(f"\nrefusals met: {dict(sorted(SEEN.items()))}")
    # The histories reached the limits, not only the happy path.
    for edge in ("create:rate_limited", "register:event_full"):
        assert SEEN[edge] > 0, (edge, SEEN)
    # Tickets share max_attendees with registrations: either limit is an edge.
    assert SEEN["create:sold_out"] + SEEN["create:event_full"] > 0, SEEN
