"""Batched admission: one transaction for the holds on one ticket type that queued together.

A hot ticket type's row admits one transaction at a time, and each order paid a BEGIN, a
COMMIT (a WAL flush) and a turn in PostgreSQL's lock queue of its own. Here the orders of
one process for one ticket type queue in arrival order, and whatever queued while a
batch was in flight goes next, together: one transaction, the orders run one after the
other in arrival order, each inside its own savepoint (`changes.savepoint`, which also
forgets the change rows it recorded), then one COMMIT.

Why each order keeps its own rules: an order runs the very body the single path runs
(`capacity/orders.create_order`), so terms, `max_per_customer`, the per-user hold limit,
pools, the event cap and waitlist offers are decided per order exactly as before, and
within the transaction each order's lock-free early reads see the orders before it. A
refusal rolls back its own savepoint only; the others commit.

Confirms and cancels of one-type orders queue here too (`capacity/orders._change`): they
move the same stock row, and outside the batch each was a transaction waiting on the row
behind it. In a batch they run after its holds, body by body in arrival order, so the
change feed lists what was decided in the order it was decided (a hold never sees stock
that a cancel of the same batch frees; the next batch does). The stock itself is still
the ledger's conditional UPDATE (guarded by `qty <= available`), now on a row the batch
holds after its first order: the orders behind it never queue on the lock.

What is served alone, in its turn (a batch of one, through its own unit of work):
`Idempotency-Key` orders (their record and replay are `capacity/keyed.py`'s), and any
order that arrives while the batcher is off (`HEADCOUNT_HOLD_BATCH_MAX = 0`). Orders over
several ticket types do not come here: they keep the gates (`gates.py`).

Lock order (ledger/locks.py): every buyer's lock of the batch is taken first, in one
statement, ordered by lock key (`locks.users`), before any row; each order's own user
lock is then already held. So a batch never takes a user lock while holding a row.

Shared fate: a database failure (an error that is not a refusal) aborts the batch; its
unit of work retries it whole on deadlock, and otherwise every order in it fails with
that error, as the orders queued behind a failed one in a gate do.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from headcount.domain.errors import HeadcountError
from headcount.ledger import changes, locks
from headcount.ledger.db import Database, Tx

# An order's body in a batch's transaction, and its answer.
Body = Callable[[Tx], Coroutine[Any, Any, Any]]
# A batch of one served outside the batch's transaction (a keyed order).
Alone = Callable[[], Awaitable[Any]]


# A whole batch of plain orders at once: each order's (admitted, answer or refusal), or
# `NotPlain` raised (the batch is rolled back and run one savepoint per order instead).
Together = Callable[[Tx, list[Any]], Coroutine[Any, Any, list[tuple[bool, Any]]]]


class NotPlain(Exception):
    """The batch's orders are not of the shape `Together` takes (pools, offers, limits…)."""


# Checked when the order's batch starts, before its savepoint: a refusal known without
# the database by then (a sold-out mark set while it queued), or None.
Recheck = Callable[[], Exception | None]


@dataclass(slots=True)
class _Waiting:
    owner: str
    body: Body | None
    alone: Alone | None
    recheck: Recheck | None = None
    together: Together | None = None
    plain: Any = None  # what `together` needs of this order
    # The caller's context (its request's origin, `origin.current()`): its order's change
    # rows name that caller, not whoever started the batch.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    answer: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class HoldBatches:
    """Per ticket type: a FIFO of orders and at most one batch of them in flight."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int,
        isolate: bool = True,
        shared_failures: tuple[type[Exception], ...] = (),
    ) -> None:
        self._shared_failures = shared_failures
        self.db = db
        self.max_batch = max_batch
        # Tests only: without savepoints a refused order's rows would commit with the
        # batch (the control test that shows what the savepoint guards).
        self._isolate = isolate
        self._queues: dict[str, deque[_Waiting]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._shared: dict[str, asyncio.Future[Any]] = {}
        self.batches = 0  # committed batches, for tests and the bench
        self.largest = 0

    @property
    def enabled(self) -> bool:
        return self.max_batch > 0

    async def hold(
        self,
        key: str,
        owner: str,
        body: Body,
        *,
        recheck: Recheck | None = None,
        together: tuple[Together, Any] | None = None,
    ) -> Any:
        """Run `body` for `owner` in the next batch on `key`; its answer or its refusal.

        `together`: a function applying a whole batch of such orders at once, and this
        order's part of its input; tried first when every order of the batch has the
        same one (`NotPlain`: the batch runs body by body instead).
        """
        waiting = _Waiting(owner, body, None, recheck)
        if together is not None:
            waiting.together, waiting.plain = together
        return await self._enqueue(key, waiting)

    async def shared(self, key: str, run: Alone) -> Any:
        """`run`'s answer, shared by every caller asking for `key` while one is in flight.

        A batch refuses its orders together; what each refusal does next (release lapsed
        holds, read whether anything is left) is then done once, not once per order.
        """
        found = self._shared.get(key)
        if found is None:
            found = asyncio.ensure_future(run())
            self._shared[key] = found
            found.add_done_callback(lambda _: self._shared.pop(key, None))
        return await asyncio.shield(found)

    async def alone(self, key: str, run: Alone) -> Any:
        """Run `run` on its own, in its arrival turn among `key`'s batches."""
        return await self._enqueue(key, _Waiting("", None, run))

    async def _enqueue(self, key: str, waiting: _Waiting) -> Any:
        self._queues.setdefault(key, deque()).append(waiting)
        if key not in self._draining:
            self._draining[key] = asyncio.create_task(self._drain(key))
        return await waiting.answer

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                taken = _next_batch(queue, self.max_batch)
                if taken:
                    await self._serve(taken)
                    self._share_fate(taken, queue)
        finally:
            # No await between the last empty check and here: nobody is left behind.
            del self._draining[key]
            if not queue:
                del self._queues[key]
            else:  # pragma: no cover - only if _serve raised past its own handling
                self._draining[key] = asyncio.create_task(self._drain(key))

    async def _serve(self, taken: list[_Waiting]) -> None:
        first = taken[0]
        if first.alone is not None:
            await _settle(first, first.alone())
            return
        if len(taken) == 1 and self._isolate:
            # Alone in its batch: exactly the single path, in a transaction of its own (a
            # refusal rolls it all back, so no savepoint; a one-line order's change can
            # ride in its hold, which `together` cannot do).
            await _settle(first, self._alone_in_batch(first))
            return
        found: dict[int, tuple[bool, Any]] = {}
        kinds = {w.together for w in taken if w.together is not None}
        together = kinds.pop() if len(kinds) == 1 else None

        async def batch(tx: Tx) -> None:
            found.clear()
            await locks.users(tx, sorted({w.owner for w in taken if w.owner}))
            rest = taken
            if together is not None:
                plain = [w for w in taken if w.together is together]
                rest = [w for w in taken if w.together is not together]
                answers = await self._together(tx, together, plain)
                found.update(zip(map(id, plain), answers, strict=True))
                changes.settle(tx)
            for waiting in rest:
                found[id(waiting)] = await self._one(tx, waiting)

        try:
            try:
                await self.db.atomically(batch)
            except NotPlain:
                together = None  # rolled back: one savepoint per order instead
                await self.db.atomically(batch)
        except BaseException as exc:
            for waiting in taken:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.largest = max(self.largest, len(taken))
        for waiting in taken:
            ok, value = found[id(waiting)]
            if waiting.answer.done():
                continue
            if ok:
                waiting.answer.set_result(value)
            else:
                waiting.answer.set_exception(value)

    def _share_fate(self, taken: list[_Waiting], queue: deque[_Waiting]) -> None:
        """Shared fate (as `gates.py`): when a batch failed because the database did not
        answer (frozen, unreachable, a lock held elsewhere), the orders already queued
        behind it fail the same way at once instead of each batch taking its own timeout
        in turn — twelve queued orders would otherwise answer the last after several."""
        failed = next(
            (
                w.answer.exception()
                for w in taken
                if w.answer.done() and not w.answer.cancelled() and w.answer.exception()
            ),
            None,
        )
        if not isinstance(failed, self._shared_failures):
            return
        while queue:
            waiting = queue.popleft()
            if not waiting.answer.done():
                waiting.answer.set_exception(copy.copy(failed))

    async def _alone_in_batch(self, waiting: _Waiting) -> Any:
        known = waiting.recheck() if waiting.recheck is not None else None
        if known is not None:
            raise known
        body = waiting.body
        assert body is not None

        async def run(tx: Tx) -> Any:
            return await asyncio.create_task(body(tx), context=waiting.context)

        found = await self.db.atomically(run)
        self.batches += 1
        self.largest = max(self.largest, 1)
        return found

    async def _together(
        self, tx: Tx, together: Together, taken: list[_Waiting]
    ) -> list[tuple[bool, Any]]:
        found: list[tuple[bool, Any] | None] = []
        going: list[_Waiting] = []
        for waiting in taken:
            known = waiting.recheck() if waiting.recheck is not None else None
            found.append(None if known is None else (False, known))
            if known is None:
                going.append(waiting)
        answers = iter(await together(tx, [w.plain for w in going]) if going else [])
        return [f if f is not None else next(answers) for f in found]

    async def _one(self, tx: Tx, waiting: _Waiting) -> tuple[bool, Any]:
        assert waiting.body is not None
        if waiting.recheck is not None and (known := waiting.recheck()) is not None:
            return False, known
        body = waiting.body
        if not self._isolate:
            try:
                done = await asyncio.create_task(body(tx), context=waiting.context)
            except HeadcountError as exc:
                return False, exc
            changes.settle(tx)
            return True, done
        try:
            async with changes.savepoint(tx):
                done = await asyncio.create_task(body(tx), context=waiting.context)
                changes.settle(tx)
        except HeadcountError as exc:
            return False, exc
        return True, done


def _next_batch(queue: deque[_Waiting], most: int) -> list[_Waiting]:
    """The queue's head: one order to serve alone, or the run of batchable orders behind
    it (at most `most`). Orders whose caller gave up before their turn are dropped."""
    taken: list[_Waiting] = []
    while queue and len(taken) < most:
        head = queue[0]
        if head.answer.done():  # cancelled by its caller (a client that went away)
            queue.popleft()
            continue
        if head.alone is not None:
            if not taken:
                taken.append(queue.popleft())
            break
        taken.append(queue.popleft())
    return taken


async def _settle(waiting: _Waiting, work: Awaitable[Any]) -> None:
    try:
        value = await work
    except Exception as exc:
        if not waiting.answer.done():
            waiting.answer.set_exception(exc)
        return
    if not waiting.answer.done():
        waiting.answer.set_result(value)
