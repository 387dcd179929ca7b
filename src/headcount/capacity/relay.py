"""The webhook relay: positions changes, fans them out, and sends them, in every replica.

One loop per process (started by `serve`, or alone by `headcount relay`), each round in
one transaction:

1. **sequence** the committed changes (ledger/changes.py; SKIP LOCKED, so one replica at
   a time does it and the others move on);
2. **fan out** new positions to the endpoints they match (ledger/webhooks.fan_out);
3. **claim** due group heads, at most as many as free sending slots
   (`HEADCOUNT_WEBHOOK_CONCURRENCY`), and send each group in its own task: the head, then
   the deliveries queued behind it, each only after the previous one got a 2xx, so an
   endpoint sees the changes of an event in position order. A failure stops the group
   and schedules the retry (full-jitter backoff, domain/webhooks.py). While a batch is
   sent, the group's next one is leased behind it, and the `Bookkeeper` records every
   group's outcomes and takes every group's next lease in one transaction per round:
   under load, round trips to the database are what a delivery waits for.

The loop runs again at once while there is work, and otherwise waits
`HEADCOUNT_WEBHOOK_POLL_INTERVAL` (or less: a finished group wakes it, since the next
delivery of its event is now claimable). Everything is safe to run in any number of
processes at once: the claims use SKIP LOCKED and leases, and a lease outlives the longest
send by a margin, so a delivery is never sent by two relays at the same time unless one
of them stalled for longer than that margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from datetime import datetime, timedelta

from headcount import metrics, origin, outbound
from headcount.domain import webhooks as rules
from headcount.domain.errors import HeadcountError
from headcount.ledger import changes
from headcount.ledger import webhooks as ledger
from headcount.ledger.db import Tx
from headcount.ledger.webhooks import Attempt, Claimed, Outgoing
from headcount.runtime import Runtime, utc_now

log = logging.getLogger(__name__)

# Deliveries one claim queues behind a group head (sent one by one after it).
FOLLOW = 100
# A lease covers the longest send plus this margin, and a relay starts no send with less
# than one send's time plus the margin left on its lease.
LEASE_MARGIN_SECONDS = 20.0
# How long a relay keeps trying to record what it sent before leaving it to the lease.
SETTLE_PATIENCE_SECONDS = 10.0
# Settled deliveries are kept this long in the log, then pruned in small batches.
LOG_RETENTION = timedelta(days=30)
PRUNE_EVERY_SECONDS = 60.0
PRUNE_BATCH = 1_000
# Waiting between rounds after an error (the database away): doubles up to this.
MAX_ERROR_PAUSE_SECONDS = 5.0


def relay_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{id(asyncio.get_running_loop()) & 0xFFFF:x}"


class Relay:
    def __init__(self, rt: Runtime, *, name: str | None = None, sequences: bool = True) -> None:
        """`sequences`: position committed changes itself, each round. Inside `serve` the
        sequencer loop does (capacity/sequencer.py), throttled so that the sale it follows
        hardly notices; a relay that also sequenced in every busy round would undo that."""
        settings = rt.settings
        self.rt = rt
        self.name = name
        self.sequences = sequences
        self.concurrency = settings.webhook_concurrency
        self.timeout = settings.webhook_timeout
        self.interval = settings.webhook_poll_interval
        self.retry_cap = settings.webhook_retry_cap
        self.lease = timedelta(seconds=self.timeout * 2 + LEASE_MARGIN_SECONDS)
        self.http = outbound.Sender(
            allow_private=settings.webhook_allow_private,
            timeout=self.timeout,
            connections=max(self.concurrency, 4),
        )
        self.books = Bookkeeper(rt, self.lease)
        self.inflight: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.next_prune = 0.0
        # Set once the relay is told to stop: a group finishes the batch it holds and
        # leases no more, so that stopping takes one batch, not a whole backlog.
        self.stopping = False

    # The loop.

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then waits for the sends in flight (bounded by the timeout)."""
        origin.as_system()
        self.name = self.name or relay_name()
        errors = 0
        try:
            while not stop.is_set():
                try:
                    busy = await self.step()
                    errors = 0
                except HeadcountError as exc:  # the database is away: keep trying, quietly
                    log.warning("webhook relay: %s", exc.detail)
                    busy, errors = False, errors + 1
                except Exception:
                    log.exception("webhook relay round failed")
                    busy, errors = False, errors + 1
                if busy:
                    await asyncio.sleep(0)
                    continue
                pause = self.interval * 2**errors if errors else self.interval
                await self._idle(stop, min(pause, MAX_ERROR_PAUSE_SECONDS))
        finally:
            self.stopping = True
            await self.drain()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        self.wake.clear()
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def step(self) -> bool:
        """One round; True if it found work (so the next should come at once).

        Sequencing, fan-out and the claim share one transaction: under load each round
        trip to the database is what a change waits for, and three transactions cost four
        more of them than one.
        """
        free = self.concurrency - len(self.inflight)
        now = self.rt.clock()
        async with self.rt.db.transaction() as tx:
            sequenced = await self._sequence(tx) if self.sequences else 0
            fanned = await ledger.fan_out(tx, now=now)
            claims = await self._claim(tx, now, free) if free > 0 else []
        self._start(claims)
        await self._prune_now_and_then()
        return bool(sequenced or fanned or claims)

    async def sequence(self) -> int:
        async with self.rt.db.transaction() as tx:
            return await self._sequence(tx)

    async def fan_out(self) -> int:
        async with self.rt.db.transaction() as tx:
            return await ledger.fan_out(tx, now=self.rt.clock())

    async def _sequence(self, tx: Tx) -> int:
        if not await changes.has_unsequenced(tx):
            return 0
        done = await changes.sequence(tx)
        return done.count if done is not None else 0

    async def _claim(self, tx: Tx, now: datetime, free: int) -> list[Claimed]:
        """Lease up to `free` group heads."""
        return await ledger.claim(
            tx,
            now=now,
            leased_until=now + self.lease,
            relay=self.name or "relay",
            limit=free,
            follow=FOLLOW,
        )

    def _start(self, claims: list[Claimed]) -> None:
        """Send each claimed group in its own task."""
        for claimed in claims:
            task = asyncio.create_task(self.deliver(claimed), name=f"webhook-{claimed.endpoint_id}")
            self.inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.inflight.discard(task)
        self.wake.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("webhook group failed: %r", exc)

    async def drain(self) -> None:
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self.books.drain()
        await self.http.aclose()

    # Sending one group.

    async def deliver(self, claimed: Claimed) -> None:
        """Send the group in order, stopping at the first failure.

        While a batch is being sent, its group's next due deliveries are leased behind it
        (`ledger.lease_behind_many`); once the whole batch got 2xx answers, its outcome goes to
        the bookkeeper and the next batch is sent at once: the sends do not wait for
        the settling. The task ends once its last outcome is recorded:
        only then may the group's next head be claimed (`_done` wakes the loop).
        """
        current: Claimed | None = claimed
        settled: asyncio.Future[None] | None = None
        while current is not None:
            ahead = None if self.stopping else self.books.lease_behind(current)
            attempts = await self._send(current)
            settled = self.books.settle(current, attempts)
            following = await ahead if ahead is not None else None
            whole = len(attempts) == len(current.queue) and all(a.ok for a in attempts)
            if not whole and following is not None:
                settled = self.books.settle(following, [])  # not sent: give it back
                following = None
            current = following
        if settled is not None:
            await settled

    async def _send(self, claimed: Claimed) -> list[Attempt]:
        attempts: list[Attempt] = []
        for delivery in claimed.queue:
            left = (claimed.leased_until - self.rt.clock()).total_seconds()
            if left < self.timeout + LEASE_MARGIN_SECONDS / 2:
                break  # the rest waits for the next claim: never send past our lease
            attempt = await self.attempt(claimed, delivery)
            attempts.append(attempt)
            if not attempt.ok:
                break
        return attempts

    async def attempt(self, claimed: Claimed, delivery: Outgoing) -> Attempt:
        at = self.rt.clock()
        # The signed timestamp is the wall clock's, whatever clock schedules the retries:
        # receivers compare it with their own clock (5 minutes' tolerance).
        headers = rules.signature_headers(delivery.id, utc_now(), delivery.body, claimed.secrets)
        status: int | None = None
        response: str | None = None
        error: str | None = None
        try:
            status, response = await self.http.post(
                claimed.url,
                delivery.body.encode(),
                headers,
                total=self.timeout,
                keep=ledger.RESPONSE_SNIPPET,
            )
        except TimeoutError:
            error = f"no complete answer within {self.timeout:g} s"
        except outbound.SendFailed as exc:
            error = str(exc)
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"HTTP {status}" + (
                " (redirects are not followed)" if 300 <= status < 400 else ""
            )
        metrics.WEBHOOK_ATTEMPTS.labels("delivered" if ok else "failed").inc()
        return Attempt(
            delivery=delivery,
            at=at,
            ok=ok,
            status_code=status,
            error=error,
            response=response,
            retry_in=0.0 if ok else rules.retry_delay(delivery.attempts + 1, cap=self.retry_cap),
        )

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() < self.next_prune:
            return
        self.next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        async with self.rt.db.transaction() as tx:
            await ledger.prune_log(
                tx, older_than=self.rt.clock() - LOG_RETENTION, batch=PRUNE_BATCH
            )


class Bookkeeper:
    """The senders' database work, every group's since the last round in one transaction:
    recording what was sent (`settle`) and leasing a group's next batch (`lease_behind`).

    One commit per round rather than one per batch and kind, off the senders' path: under
    load, round trips to the database are what a delivery waits for. A group asks for its
    next batch before it asks to record the current one, so the lease is taken in the same
    round as the settling or an earlier one, never later: while nobody else can claim the
    group (its batch pending and leased to us, or settled in this very transaction).

    Runs while there is work (a task started by `settle`/`lease_behind`, which ends once it
    has nothing left). If the database is away, leases are not taken (the next claim takes
    the group) and records are retried a while, then left to the lease: the group is sent
    again once the lease lapses (at least once).
    """

    def __init__(self, rt: Runtime, lease: timedelta) -> None:
        self.rt = rt
        self.lease = lease
        self.records: list[tuple[Claimed, list[Attempt], asyncio.Future[None]]] = []
        self.leases: list[tuple[Claimed, asyncio.Future[Claimed | None]]] = []
        self.task: asyncio.Task[None] | None = None

    def settle(self, claimed: Claimed, attempts: list[Attempt]) -> asyncio.Future[None]:
        """Record `attempts` of `claimed` (none: just give back its lease); done once recorded
        or given up on."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.records.append((claimed, attempts, done))
        self._wake()
        return done

    def lease_behind(self, claimed: Claimed) -> asyncio.Future[Claimed | None]:
        """The group's next due batch behind `claimed`, leased to us (None: nothing, or the
        database was away). Ask while `claimed` is still pending."""
        found: asyncio.Future[Claimed | None] = asyncio.get_running_loop().create_future()
        self.leases.append((claimed, found))
        self._wake()
        return found

    def _wake(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="webhook-bookkeeper")

    async def drain(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while self.records or self.leases:
            records, self.records = self.records, []
            leases, self.leases = self.leases, []
            try:
                await self._round(records, leases)
            finally:
                for _, _, done in records:
                    if not done.done():
                        done.set_result(None)
                for _, found in leases:
                    if not found.done():
                        found.set_result(None)

    async def _round(
        self,
        records: list[tuple[Claimed, list[Attempt], asyncio.Future[None]]],
        leases: list[tuple[Claimed, asyncio.Future[Claimed | None]]],
    ) -> None:
        deadline = time.monotonic() + SETTLE_PATIENCE_SECONDS
        pause = 0.2
        while True:
            try:
                now = self.rt.clock()
                async with self.rt.db.transaction() as tx:
                    leased = await ledger.lease_behind_many(
                        tx,
                        [claimed for claimed, _ in leases],
                        now=now,
                        follow=FOLLOW,
                        leased_until=now + self.lease,
                    )
                    given_up = await ledger.settle_many(
                        tx, [(claimed, attempts) for claimed, attempts, _ in records], now=now
                    )
                break
            except Exception as exc:
                leases = []  # left to the next claim; a retry may be past their moment
                if time.monotonic() + pause > deadline:
                    log.warning("could not record webhook attempts (%r); the lease will lapse", exc)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
        for (_, found), batch in zip(leases, leased, strict=True):
            found.set_result(batch)
        for delivery_id in given_up:
            log.warning("webhook delivery %s given up after the retry window", delivery_id)


async def run_in_background(rt: Runtime, stop: asyncio.Event, *, sequences: bool = False) -> None:
    """The relay as `serve` runs it (a duty of every replica, beside the sequencer loop)."""
    relay = Relay(rt, sequences=sequences)
    try:
        await relay.run(stop)
    finally:
        await relay.aclose()


async def run_until_signalled(rt: Runtime) -> None:
    """`headcount relay`: run until SIGTERM or SIGINT, then finish the sends in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("webhook relay started")
    await run_in_background(rt, stop, sequences=True)  # no sequencer loop runs beside it
    log.info("webhook relay stopped")
