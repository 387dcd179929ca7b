"""Sold-out marks: after a sell-out, refusals answered from this process's memory.

A refusal used to cost as much as a hold: a transaction with the order's basket read, a
second one releasing lapsed holds, and a third asking again. Once a single-line order
for a ticket type was refused for stock and a read found no room left at all (its own
stock, its pools and its event's cap, for even one ticket) and no live waitlist offer
on it, the type is marked, and later orders for it are refused here without touching the
database.

The bound (docs/concurrency.md, "Sold-out marks"): a mark lives `HEADCOUNT_SOLD_OUT_MARK_TTL`
seconds from the read that found no room, and a release in this process (a cancel, the
expiry sweep, a lapsed hold released on demand, a raised total) drops it at once. A
release in another process is therefore seen here at most that long after it commits:
no order is refused "sold out" for longer than the TTL while stock is free. A refusal in
the mark's second half starts one lock-free renewal read (`due`, `renew`): still no room,
the mark lives a TTL from that read; otherwise it goes. A mark nobody asks about lapses,
and the next order goes to the database and either buys or marks the type again.

Never answered from a mark: orders with an `Idempotency-Key` (a retry must replay the
order it created, not be refused), orders over several lines, and orders whose line
breaks the type's terms as last read (the database path gives that refusal its own code).
A type with a `max_per_customer` is never marked: that refusal comes before stock's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from headcount.domain.errors import HeadcountError
from headcount.domain.tickets import OrderLine, TicketTypeTerms, check_line

_MAX_MARKS = 10_000


@dataclass(slots=True)
class _Mark:
    event_id: str
    terms: TicketTypeTerms
    until: float
    refusals: dict[int, HeadcountError] = field(default_factory=dict)  # per quantity
    renewing: bool = False  # a renewal read is under way (`due` hands out one at a time)


class SoldOutMarks:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._marks: dict[str, _Mark] = {}
        # When a release in this process last made stock free (per type, and for any):
        # a read taken before it must not mark the type.
        self._freed: dict[str, float] = {}
        self._freed_any = 0.0
        self.answered = 0  # refusals served from a mark, for tests and the bench

    def refusal(
        self, event_id: str, lines: Sequence[OrderLine], now: datetime
    ) -> HeadcountError | None:
        """The refusal a fresh mark gives this order, or None: ask the database."""
        if len(lines) != 1 or self.ttl <= 0:
            return None
        line = lines[0]
        mark = self._marks.get(line.ticket_type_id)
        if mark is None or mark.event_id != event_id:
            return None
        if time.monotonic() >= mark.until:
            del self._marks[line.ticket_type_id]
            return None
        known = mark.refusals.get(line.quantity)
        if known is None:
            return None
        try:
            check_line(line, mark.terms, event_id=event_id, now=now)
        except HeadcountError:
            return None
        self.answered += 1
        return copy.copy(known)

    def mark(
        self,
        line: OrderLine,
        event_id: str,
        terms: TicketTypeTerms,
        refused: HeadcountError,
        *,
        read_at: float,
    ) -> None:
        """No room was left for `line`'s type as of `read_at` (monotonic, taken before
        the read that found none): mark it until `read_at + ttl`."""
        if self.ttl <= 0 or read_at <= max(
            self._freed_any, self._freed.get(line.ticket_type_id, 0)
        ):
            return
        mark = self._marks.get(line.ticket_type_id)
        if mark is None or mark.until < read_at + self.ttl:
            if len(self._marks) >= _MAX_MARKS:
                self._marks.clear()
            old = mark.refusals if mark is not None else {}
            mark = self._marks[line.ticket_type_id] = _Mark(
                event_id, terms, read_at + self.ttl, old
            )
        mark.refusals[line.quantity] = refused

    def due(self, ticket_type_id: str) -> bool:
        """Whether the caller should renew this type's mark now: it is in the second half
        of its life and no renewal is under way (then it is the caller's, until `renew`).

        A mark that simply lapsed sent every order arriving in the next moment to the
        database at once, each waiting behind the batch that marks the type again: under
        a steady stream of refusals that was the whole tail of their latency. Renewed
        ahead by one lock-free read, the mark never lapses while the type stays sold out,
        and the bound is unchanged: a mark still ends `ttl` after the last read that
        found no room."""
        mark = self._marks.get(ticket_type_id)
        if mark is None or mark.renewing or time.monotonic() < mark.until - self.ttl / 2:
            return False
        mark.renewing = True
        return True

    def renew(self, ticket_type_id: str, terms: TicketTypeTerms | None, *, read_at: float) -> None:
        """The renewal read taken at `read_at` (monotonic, before it) found no room with
        these terms (extend the mark to `read_at + ttl`), or found the type may sell
        (None: the mark goes now)."""
        if terms is None:
            self.forget([ticket_type_id])
            return
        mark = self._marks.get(ticket_type_id)
        if mark is None:
            return  # forgotten meanwhile: a release wins over the read
        mark.renewing = False
        if read_at <= max(self._freed_any, self._freed.get(ticket_type_id, 0)):
            return
        mark.terms = terms
        mark.until = max(mark.until, read_at + self.ttl)

    def forget(self, ticket_type_ids: Iterable[str] | None = None) -> None:
        """Stock may be free again on these types (None: on any)."""
        now = time.monotonic()
        if ticket_type_ids is None:
            self._marks.clear()
            self._freed.clear()
            self._freed_any = now
            return
        if len(self._freed) >= _MAX_MARKS:
            self._freed.clear()
            self._freed_any = now
        for tid in ticket_type_ids:
            self._marks.pop(tid, None)
            self._freed[tid] = now
