"""Webhooks against a real receiver: fan-out, ordering, leases, retries, disabling, SSRF.

The receiver (tests/support/receiver.py) verifies every request with the reference
verifier of the `standardwebhooks` package; changes are recorded the way every decision
records them (`changes.record` inside a transaction), some of them rolled back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from headcount.capacity import relay as relay_module
from headcount.capacity import webhooks
from headcount.capacity.events import EventDraft, create_event
from headcount.capacity.relay import Relay
from headcount.capacity.webhooks import WebhookDraft, WebhookPatch
from headcount.config import Settings
from headcount.domain import webhooks as rules
from headcount.domain.changes import decode_cursor
from headcount.domain.errors import Forbidden, InvalidRequest, NotFound, WebhookUrlRefused
from headcount.domain.identity import Principal, Role
from headcount.ledger import changes
from headcount.ledger import webhooks as ledger
from headcount.ledger.webhooks import DeliveryStatus
from headcount.runtime import Runtime
from support.auth import organizer
from support.changes import noted
from support.receiver import Receiver, running_receiver

SERVICE = Principal(sub="platform", role=Role.SERVICE)


def webhook_settings(database_url: str, **extra: Any) -> Settings:
    options: dict[str, Any] = {
        "webhook_allow_private": True,
        "webhook_poll_interval": 0.01,
        "webhook_timeout": 2.0,
        **extra,
    }
    return Settings(database_url=database_url, env="test", **options)


@pytest.fixture
def database_url(module_database: str) -> str:
    """A database of this module's own: its relays claim every due delivery, and an
    endpoint another module left enabled in the session's database would get one too
    (seen when test_webhooks_http.py ran first on the same worker)."""
    return module_database


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_settings(webhook_settings(database_url))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as got:
        yield got


class Clock:
    """A clock the test moves (retries and leases span days)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def event_of(rt: Runtime, organizer_sub: str) -> str:
    """A new event, its own `event.created` positioned at once: an endpoint registered
    afterwards starts past it, so it receives only what the test writes."""
    made = await create_event(rt, organizer(organizer_sub), EventDraft(name="Hooked"))
    async with rt.db.transaction() as tx:
        await changes.sequence(tx)
    return made.id


async def register(rt: Runtime, receiver: Receiver, who: Principal, **draft: Any) -> str:
    made = await webhooks.create_webhook(rt, who, WebhookDraft(url=receiver.url, **draft))
    receiver.secrets.append(made.secret)
    return made.id


async def until(check: Callable[[], bool], *, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def committed(rt: Runtime, event_ids: set[str]) -> list[changes.Change]:
    """The changes the test wrote (`note`), in position order."""
    async with rt.db.transaction() as tx:
        found = await changes.page(tx, after=0, limit=100_000, event_ids=event_ids)
    return [c for c in found if "label" in c.payload]


def labels_by_event(receiver: Receiver) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for got in receiver.first_seen():
        found.setdefault(got.body["event_id"], []).append(got.body["payload"]["label"])
    return found


async def test_every_committed_change_arrives_once_in_order_per_event(
    rt: Runtime, receiver: Receiver
) -> None:
    """Writers commit and roll back while the relay runs: after dedupe the receiver holds
    exactly the committed changes of the endpoint's scope, in position order per event."""
    mine = [await event_of(rt, "org-a") for _ in range(3)]
    other = await event_of(rt, "org-b")
    await register(rt, receiver, organizer("org-a"))
    stop = asyncio.Event()
    relay = Relay(rt)
    running = asyncio.create_task(relay.run(stop))
    rolled_back: set[str] = set()

    async def writer(n: int) -> None:
        event_id = [*mine, other][n % 4]
        label = f"c{n}"
        back = random.random() < 0.2
        if back:
            rolled_back.add(label)
        await noted(rt, event_id, label, roll_back=back)

    for wave in range(6):
        await asyncio.gather(*(writer(wave * 20 + n) for n in range(20)))
    expected = await _settled(rt, set(mine))
    await until(lambda: sum(map(len, labels_by_event(receiver).values())) >= len(expected))
    stop.set()
    await running
    await relay.aclose()

    got = labels_by_event(receiver)
    assert other not in got, "an event of another organizer was sent"
    for event_id in mine:
        want = [c.payload["label"] for c in expected if c.event_id == event_id]
        assert got.get(event_id, []) == want
    assert not rolled_back & {label for labels in got.values() for label in labels}
    assert receiver.rejected == []
    cursors = [decode_cursor(r.body["cursor"]) for r in receiver.first_seen()]
    assert len(set(cursors)) == len(cursors)


async def _settled(rt: Runtime, event_ids: set[str]) -> list[changes.Change]:
    """Sequence everything committed so far and return it. One `sequence` is not enough:
    the relay's sequencer may hold the state row (this one then positions nothing), and
    one run positions at most a batch of the shared database's backlog."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with rt.db.transaction() as tx:
            await changes.sequence(tx)
            left = await changes.has_unsequenced(tx)
        if not left:
            return await committed(rt, event_ids)
        assert asyncio.get_running_loop().time() < deadline, "changes left unsequenced"
        await asyncio.sleep(0.02)


def refusing(refusals: dict[str, int]) -> Callable[[dict[str, Any]], int]:
    """An answer that refuses each label (503) as many times as `refusals` says, counting down."""

    def answer(body: dict[str, Any]) -> int:
        label = body["payload"]["label"]
        if refusals.get(label, 0) > 0:
            refusals[label] -= 1
            return 503
        return 200

    return answer


async def test_a_failing_head_holds_back_its_event_only(rt: Runtime, receiver: Receiver) -> None:
    first, second = await event_of(rt, "org-h"), await event_of(rt, "org-h")
    await register(rt, receiver, organizer("org-h"))
    refusals = {"a1": 3}
    receiver.answer = refusing(refusals)
    for label in ("a1", "a2", "a3"):
        await noted(rt, first, label)
    for label in ("b1", "b2"):
        await noted(rt, second, label)
    clock = Clock()
    rt.clock = clock
    relay = Relay(rt)
    for _ in range(12):
        await relay.step()
        await relay.drain()
        if labels_by_event(receiver).get(first) == ["a1", "a2", "a3"]:
            break
        clock.advance(seconds=5)  # past any retry delay of the first attempts
    await relay.aclose()
    got = labels_by_event(receiver)
    assert got[second] == ["b1", "b2"]
    assert got[first] == ["a1", "a2", "a3"]
    assert refusals["a1"] == 0
    async with rt.db.snapshot() as tx:
        logged = {
            d.body.split('"label":"')[1].split('"')[0]: d
            for d in await ledger.deliveries(
                tx, (await _endpoint_ids(rt))[0], status=None, before=None, limit=10
            )
        }
    assert logged["a1"].attempts == 4
    assert logged["a1"].status == DeliveryStatus.DELIVERED
    assert logged["a2"].attempts == 1


async def _endpoint_ids(rt: Runtime) -> list[str]:
    async with rt.db.snapshot() as tx:
        return [e.id for e in await ledger.endpoints(tx, organizer_id=None, limit=1000)]


@pytest.mark.postgres
async def test_two_relays_never_send_one_delivery_at_once(
    postgres_url: str, receiver: Receiver
) -> None:
    """Two relays (separate runtimes, as two processes would be) share a slow receiver."""
    settings = webhook_settings(postgres_url, webhook_concurrency=4)
    first, second = Runtime.from_settings(settings), Runtime.from_settings(settings)
    try:
        events = [await event_of(first, "org-two") for _ in range(6)]
        await register(first, receiver, organizer("org-two"))
        receiver.delay = 0.02
        for n in range(90):
            await noted(first, events[n % len(events)], f"t{n}")
        stop = asyncio.Event()
        relays = [Relay(first, name="one"), Relay(second, name="two")]
        tasks = [asyncio.create_task(r.run(stop)) for r in relays]
        expected = await _settled(first, set(events))
        await until(lambda: len(receiver.first_seen()) >= len(expected), within=60)
        stop.set()
        await asyncio.gather(*tasks)
        for relay in relays:
            await relay.aclose()
        assert receiver.overlapping() == []
        assert len(receiver.snapshot()) == len(expected), "no crash, so no delivery twice"
        got = labels_by_event(receiver)
        for event_id in events:
            assert got[event_id] == [c.payload["label"] for c in expected if c.event_id == event_id]
        async with first.db.snapshot() as tx:
            senders = {
                d.leased_by
                for d in await ledger.deliveries(
                    tx, (await _endpoint_ids(first))[0], status=None, before=None, limit=200
                )
            }
        assert senders <= {"one", "two", None}
    finally:
        await first.close()
        await second.close()


async def test_a_lapsed_lease_is_sent_again_with_the_same_id(
    rt: Runtime, receiver: Receiver
) -> None:
    """A relay that claimed and died (never settled): once the lease lapses, another sends it."""
    event_id = await event_of(rt, "org-lease")
    await register(rt, receiver, organizer("org-lease"))
    await noted(rt, event_id, "only")
    clock = Clock()
    rt.clock = clock
    dead = Relay(rt, name="dead")
    await dead.sequence()
    await dead.fan_out()
    async with rt.db.transaction() as tx:
        claimed = await ledger.claim(
            tx, now=clock(), leased_until=clock() + dead.lease, relay="dead", limit=10, follow=10
        )
    assert len(claimed) == 1
    await dead.aclose()
    alive = Relay(rt, name="alive")
    await alive.step()
    await alive.drain()
    assert receiver.snapshot() == [], "the lease still holds"
    clock.advance(seconds=alive.lease.total_seconds() + 1)
    await alive.step()
    await alive.drain()
    await alive.aclose()
    (got,) = receiver.snapshot()
    assert got.webhook_id == claimed[0].queue[0].id


async def test_sustained_failure_disables_and_reenabling_loses_nothing(
    rt: Runtime, receiver: Receiver
) -> None:
    event_id = await event_of(rt, "org-down")
    hook = await register(rt, receiver, organizer("org-down"))
    receiver.status = 500
    for n in range(3):
        await noted(rt, event_id, f"d{n}")
    clock = Clock()
    rt.clock = clock
    relay = Relay(rt)
    start = clock()
    rounds = 0
    while (await webhooks.get_webhook(rt, SERVICE, hook)).enabled:
        await relay.step()
        await relay.drain()
        clock.advance(hours=1, seconds=1)  # past the longest retry delay
        rounds += 1
        assert rounds < 200
    view = await webhooks.get_webhook(rt, SERVICE, hook)
    assert clock() - start >= rules.DISABLE_AFTER
    assert view.failures_in_a_row >= rules.DISABLE_MIN_FAILURES
    assert view.disabled_reason
    assert "in a row" in view.disabled_reason
    assert view.pending_deliveries == 3
    assert receiver.snapshot() == []
    # Nothing is sent while disabled, and nothing is given up.
    receiver.status = 200
    for _ in range(3):
        await relay.step()
        await relay.drain()
        clock.advance(hours=2)
    assert receiver.snapshot() == []
    await noted(rt, event_id, "d3")  # fanned out while disabled, kept for later
    await webhooks.update_webhook(rt, organizer("org-down"), hook, WebhookPatch(enabled=True))
    for _ in range(3):
        await relay.step()
        await relay.drain()
    await relay.aclose()
    assert labels_by_event(receiver)[event_id] == ["d0", "d1", "d2", "d3"]
    view = await webhooks.get_webhook(rt, SERVICE, hook)
    assert view.enabled
    assert view.disabled_reason is None
    assert view.pending_deliveries == 0


async def test_a_refused_message_is_given_up_after_the_window_then_redelivered(
    rt: Runtime, receiver: Receiver
) -> None:
    """The receiver refuses one message but takes others: the endpoint stays enabled, the
    message is given up after three days, the event's queue moves on, and a manual
    redelivery sends it again with the same id."""
    poisoned, busy = await event_of(rt, "org-p"), await event_of(rt, "org-p")
    hook = await register(rt, receiver, organizer("org-p"))
    receiver.answer = lambda body: 422 if body["payload"]["label"] == "bad" else 200
    await noted(rt, poisoned, "bad")
    await noted(rt, poisoned, "after")
    clock = Clock()
    rt.clock = clock
    relay = Relay(rt)
    start = clock()
    n = 0
    while clock() - start <= rules.RETRY_WINDOW + timedelta(hours=2):
        await noted(rt, busy, f"ok{n}")  # successes keep the endpoint healthy
        n += 1
        await relay.step()
        await relay.drain()
        clock.advance(hours=1, seconds=1)
    for _ in range(3):
        await relay.step()
        await relay.drain()
    got = labels_by_event(receiver)
    assert got[poisoned] == ["after"]
    failed = await webhooks.list_deliveries(rt, SERVICE, hook, status=DeliveryStatus.FAILED)
    assert [d.body["payload"]["label"] for d in failed] == ["bad"]
    assert failed[0].attempts > 20
    assert failed[0].last_status_code == 422
    assert (await webhooks.get_webhook(rt, SERVICE, hook)).enabled

    receiver.answer = None
    again = await webhooks.redeliver(rt, organizer("org-p"), hook, failed[0].id)
    assert again.status == "pending"
    await relay.step()
    await relay.drain()
    delivered = await webhooks.list_deliveries(
        rt, SERVICE, hook, status=DeliveryStatus.DELIVERED, limit=200
    )
    assert failed[0].id in {d.id for d in delivered}
    assert receiver.first_seen()[-1].webhook_id == failed[0].id
    # A delivered one can be sent again too; its id stays the same.
    await webhooks.redeliver(rt, SERVICE, hook, failed[0].id)
    await relay.step()
    await relay.drain()
    await relay.aclose()
    copies = [r for r in receiver.snapshot() if r.webhook_id == failed[0].id]
    assert len(copies) == 2


async def test_scope_and_type_filters(rt: Runtime, receiver: Receiver) -> None:
    listed, unlisted = await event_of(rt, "org-s"), await event_of(rt, "org-s")
    await register(rt, receiver, organizer("org-s"), event_ids=[listed], types=["session.*"])
    # Types whose replay moves no counter: the database is shared with tests that
    # reconcile it from the log (an `rsvp.*` without its session would break them).
    for event_id in (listed, unlisted):
        async with rt.db.transaction() as tx:
            for kind in ("order.created", "session.full", "session.reopened"):
                changes.record(
                    tx,
                    kind,
                    event_id=event_id,
                    resource=("x", "y"),
                    payload={"label": kind},
                    at=rt.clock(),
                )
    relay = Relay(rt)
    for _ in range(3):
        await relay.step()
        await relay.drain()
    await relay.aclose()
    assert labels_by_event(receiver) == {listed: ["session.full", "session.reopened"]}


async def test_a_new_endpoint_starts_at_the_head_and_holds_back_pruning(
    rt: Runtime, receiver: Receiver
) -> None:
    event_id = await event_of(rt, "org-r")
    await noted(rt, event_id, "before")
    await _settled(rt, {event_id})
    async with rt.db.snapshot() as tx:
        head = (await changes.watermarks(tx)).last_position
    hook = await register(rt, receiver, organizer("org-r"))
    async with rt.db.snapshot() as tx:
        assert await ledger.fanned_out_through(tx) is not None
        assert (await ledger.fanned_out_through(tx) or 0) <= head
    await webhooks.update_webhook(rt, SERVICE, hook, WebhookPatch(enabled=False))
    await noted(rt, event_id, "after")
    relay = Relay(rt)
    await relay.step()
    async with rt.db.snapshot() as tx:
        through = await ledger.fanned_out_through(tx)
        assert through is not None
        assert through > head  # fanned out although disabled
    # Pruning the change does not break the pending delivery: it carries its body.
    async with rt.db.transaction() as tx:
        await changes.prune(
            tx, older_than=rt.clock() + timedelta(days=1), through=through, batch=100
        )
    await webhooks.update_webhook(rt, SERVICE, hook, WebhookPatch(enabled=True))
    await relay.step()
    await relay.drain()
    await relay.aclose()
    assert labels_by_event(receiver) == {event_id: ["after"]}


async def test_secrets_are_shown_once_and_rotation_signs_with_both(
    rt: Runtime, receiver: Receiver
) -> None:
    event_id = await event_of(rt, "org-k")
    made = await webhooks.create_webhook(rt, organizer("org-k"), WebhookDraft(url=receiver.url))
    assert made.secret.startswith("whsec_")
    assert "secret" not in (await webhooks.get_webhook(rt, SERVICE, made.id)).model_dump()
    rotated = await webhooks.rotate_secret(rt, organizer("org-k"), made.id)
    assert rotated.secret != made.secret
    receiver.secrets[:] = [made.secret]  # a receiver that has not switched yet
    await noted(rt, event_id, "old")
    relay = Relay(rt)
    for _ in range(2):
        await relay.step()
        await relay.drain()
    receiver.secrets[:] = [rotated.secret]  # and one that has
    await noted(rt, event_id, "new")
    for _ in range(2):
        await relay.step()
        await relay.drain()
    await relay.aclose()
    assert labels_by_event(receiver) == {event_id: ["old", "new"]}
    assert receiver.rejected == []


async def test_the_url_rule(database_url: str) -> None:
    """https only, and no private destination, unless the override is on; nothing stored."""
    strict = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    who = organizer("org-ssrf")
    try:
        refused = [
            "https://127.0.0.1/hooks",
            "https://localhost:8443/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://0.0.0.0/x",
            "https://224.0.0.1/x",
            "http://example.com/x",
        ]
        for url in refused:
            with pytest.raises(WebhookUrlRefused):
                await webhooks.create_webhook(strict, who, WebhookDraft(url=url))
        for url in ("ftp://example.com/x", "hooks", "https://user:pw@example.com/x", "https:///x"):
            with pytest.raises(InvalidRequest):
                await webhooks.create_webhook(strict, who, WebhookDraft(url=url))
        assert await webhooks.list_webhooks(strict, who) == []
    finally:
        await strict.close()


async def test_the_relay_checks_the_address_again_when_it_sends(
    database_url: str, receiver: Receiver
) -> None:
    """Registered while private addresses were allowed, sent by a relay that refuses them."""
    lax = Runtime.from_settings(webhook_settings(database_url))
    strict = Runtime.from_settings(webhook_settings(database_url, webhook_allow_private=False))
    try:
        event_id = await event_of(lax, "org-dns")
        hook = await register(lax, receiver, organizer("org-dns"))
        await noted(lax, event_id, "x")
        relay = Relay(strict)
        await relay.step()
        await relay.drain()
        await relay.aclose()
        assert receiver.snapshot() == []
        (logged,) = await webhooks.list_deliveries(lax, SERVICE, hook)
        assert logged.status == "pending"
        assert logged.attempts == 1
        assert logged.last_error
        assert "loopback" in logged.last_error
    finally:
        await lax.close()
        await strict.close()


async def test_who_may_manage_what(rt: Runtime, receiver: Receiver) -> None:
    mine, theirs = await event_of(rt, "org-m"), await event_of(rt, "org-other")
    with pytest.raises(Forbidden):
        await webhooks.create_webhook(
            rt, organizer("org-m"), WebhookDraft(url=receiver.url, event_ids=[theirs])
        )
    with pytest.raises(NotFound):
        await webhooks.create_webhook(
            rt, organizer("org-m"), WebhookDraft(url=receiver.url, event_ids=["evt_nope"])
        )
    attendee = Principal(sub="someone", role=Role.ATTENDEE)
    with pytest.raises(Forbidden):
        await webhooks.create_webhook(rt, attendee, WebhookDraft(url=receiver.url))
    hook = await register(rt, receiver, organizer("org-m"), event_ids=[mine])
    with pytest.raises(Forbidden):
        await webhooks.get_webhook(rt, organizer("org-other"), hook)
    assert [w.id for w in await webhooks.list_webhooks(rt, organizer("org-other"))] == []
    assert hook in [w.id for w in await webhooks.list_webhooks(rt, SERVICE)]
    await webhooks.delete_webhook(rt, SERVICE, hook)
    with pytest.raises(NotFound):
        await webhooks.get_webhook(rt, organizer("org-m"), hook)


async def test_a_refusal_mid_backlog_gives_back_the_batch_leased_behind_it(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 4, each next one leased while the current one is sent (capacity/relay.py):
    a refusal stops its event there, the batch already leased behind it is given back
    unsent, and the event resumes in order once the refused message gets through."""
    monkeypatch.setattr(relay_module, "FOLLOW", 3)
    first, second = await event_of(rt, "org-b"), await event_of(rt, "org-b")
    hook = await register(rt, receiver, organizer("org-b"))
    refusals = {"a9": 2}
    receiver.answer = refusing(refusals)
    labels = [f"a{n}" for n in range(20)]
    for label in labels:
        await noted(rt, first, label)
    for n in range(6):
        await noted(rt, second, f"b{n}")
    clock = Clock()
    rt.clock = clock
    relay = Relay(rt)
    await relay.step()
    await relay.drain()
    got = labels_by_event(receiver)
    assert got[first] == labels[:9], "nothing behind the refused message was sent"
    assert got[second] == [f"b{n}" for n in range(6)]
    held = await webhooks.list_deliveries(rt, SERVICE, hook)
    assert [d for d in held if d.status == "pending"], "a9 and what follows wait"
    async with rt.db.snapshot() as tx:
        leased = await tx.scalar(
            select(func.count())
            .select_from(ledger.WebhookDelivery)
            .where(ledger.WebhookDelivery.lease_token.is_not(None))
        )
    assert leased == 0, "the batch leased behind the refused one was given back"
    for _ in range(10):
        if labels_by_event(receiver).get(first) == labels:
            break
        clock.advance(seconds=5)  # past any retry delay
        await relay.step()
        await relay.drain()
    await relay.aclose()
    assert labels_by_event(receiver)[first] == labels
    assert refusals["a9"] == 0
    assert all(d.status == "delivered" for d in await webhooks.list_deliveries(rt, SERVICE, hook))
