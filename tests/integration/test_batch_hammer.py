"""Batched admission hammered from two processes with mixed orders, every invariant exact.

Two OS processes (tests/support/batch_buyers.py), each with its own runtime, pool and
batchers, place ~140 orders each at once against one database: one-row single-line
orders (batched), a bucketed type with `max_per_customer` whose customers order from
both processes, two types sharing a capacity pool, multi-line orders (the gates path)
and Idempotency-Key orders each sent twice by both processes. Afterwards, from the
database: no type, pool, customer limit or hold limit exceeded, every counter equals its
rows and the change log (`reconcile`), multi-line orders whole, one order per key, every
answer a deliberate refusal or an order that exists, and within each process the buyers
of the one-row type were served in arrival order.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from headcount.capacity import events, pools, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.pools import PoolDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.config import Settings
from headcount.domain.tickets import OrderStatus
from headcount.ledger.models import Order, OrderItem
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import organizer

pytestmark = pytest.mark.slow

ORG = organizer("org-hammer")
PROCESSES = 2
REFUSALS = {"sold_out", "pool_exhausted", "customer_limit_reached", "rate_limited"}
TESTS = Path(__file__).resolve().parents[1]


def plan(seed: int, event_id: str, ids: dict[str, str]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []
    for n in range(60):
        found.append(
            {"kind": "single", "owner": f"s-{seed}-{n}", "lines": [[ids["S"], rng.randint(1, 3)]]}
        )
    for n in range(20):
        found.append(
            {"kind": "capped", "owner": f"k-{n % 6}", "lines": [[ids["K"], rng.randint(1, 2)]]}
        )
    for n in range(30):
        tt = ids["P1"] if n % 2 else ids["P2"]
        found.append(
            {"kind": "pooled", "owner": f"p-{seed}-{n}", "lines": [[tt, rng.randint(1, 2)]]}
        )
    for n in range(16):
        lines = sorted([[ids["S"], 1], [ids["P1"], 1]])
        found.append({"kind": "multi", "owner": f"m-{seed}-{n}", "lines": lines})
    for n in range(6):
        for _ in range(2):
            found.append(
                {"kind": "keyed", "owner": f"i-{n}", "key": f"key-{n}", "lines": [[ids["S"], 1]]}
            )
    rng.shuffle(found)
    for order in found:
        order["event_id"] = event_id
    return found


async def setup(rt: Runtime) -> tuple[str, dict[str, str], dict[str, int]]:
    event = await events.create_event(rt, ORG, EventDraft(name="Hammer"))
    totals = {"S": 40, "K": 20, "P1": 15, "P2": 15}
    ids: dict[str, str] = {}
    for name, total in totals.items():
        extra: dict[str, Any] = {}
        if name == "K":
            extra = {"stock_buckets": 4, "max_per_customer": 2}
        tt = await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name=name, quantity_total=total, **extra)
        )
        ids[name] = tt.id
    pool = await pools.create_pool(
        rt,
        ORG,
        event.id,
        PoolDraft(name="Shared", capacity=14, ticket_type_ids=[ids["P1"], ids["P2"]]),
    )
    ids["pool"] = pool.id
    return event.id, ids, totals


def buyers(url: str, plans: list[list[dict[str, Any]]], tmp: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    running = []
    for n, orders in enumerate(plans):
        (tmp / f"plan-{n}.json").write_text(json.dumps(orders))
        running.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "support.batch_buyers",
                    url,
                    str(tmp / f"plan-{n}.json"),
                    str(tmp / f"out-{n}.json"),
                ],
                env=env,
                cwd=TESTS.parent,
            )
        )
    for proc in running:
        assert proc.wait(timeout=600) == 0
    return [json.loads((tmp / f"out-{n}.json").read_text()) for n in range(len(plans))]


async def test_mixed_orders_from_two_processes(database_url: str, tmp_path: Path) -> None:
    rt = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    try:
        event_id, ids, totals = await setup(rt)
        plans = [plan(seed, event_id, ids) for seed in range(PROCESSES)]
        reports = await asyncio.to_thread(buyers, database_url, plans, tmp_path)
        await check(rt, ids, totals, plans, reports)
    finally:
        await rt.close()


async def check(
    rt: Runtime,
    ids: dict[str, str],
    totals: dict[str, int],
    plans: list[list[dict[str, Any]]],
    reports: list[dict[str, Any]],
) -> None:
    answered: dict[str, dict[str, Any]] = {}  # order id -> the plan entry that got it
    by_key: dict[str, set[str]] = defaultdict(set)
    for orders, report in zip(plans, reports, strict=True):
        for order, outcome in zip(orders, report["outcomes"], strict=True):
            assert outcome["code"] == "ok" or outcome["code"] in REFUSALS, outcome
            if outcome["code"] == "ok":
                answered[outcome["id"]] = order
                if "key" in order:
                    by_key[order["key"]].add(outcome["id"])
    assert max(r["largest"] for r in reports) > 1, "no batch ever held two orders"
    # One order per key, whoever asked and however often.
    assert all(len(found) == 1 for found in by_key.values()), by_key

    async with rt.db.snapshot() as tx:
        rows = (
            await tx.execute(
                select(
                    Order.id,
                    Order.owner_id,
                    Order.status,
                    OrderItem.ticket_type_id,
                    OrderItem.quantity,
                )
                .join(OrderItem, OrderItem.order_id == Order.id)
                .where(Order.event_id == next(iter(answered.values()))["event_id"])
            )
        ).all()
        drift = [str(d) for d in await reconcile(tx)]
    assert drift == []
    items: dict[str, dict[str, int]] = defaultdict(dict)
    owners: dict[str, str] = {}
    for oid, owner, status, tid, qty in rows:
        assert status == OrderStatus.PENDING
        items[oid][tid] = qty
        owners[oid] = owner
    # Every order in the database was answered as created, and whole (multi-line too).
    assert set(items) == set(answered)
    for oid, order in answered.items():
        assert items[oid] == dict(order["lines"])
    used: dict[str, int] = defaultdict(int)
    per_customer: dict[str, int] = defaultdict(int)
    live: dict[str, int] = defaultdict(int)
    for oid, lines in items.items():
        live[owners[oid]] += 1
        for tid, qty in lines.items():
            used[tid] += qty
            if tid == ids["K"]:
                per_customer[owners[oid]] += qty
    for name, total in totals.items():
        assert used[ids[name]] <= total, name
    assert used[ids["P1"]] + used[ids["P2"]] <= 14
    assert all(n <= 2 for n in per_customer.values()), per_customer
    assert all(n <= rt.settings.max_pending_orders_per_user for n in live.values())
    # The one-row type sold out (the test means something), in arrival order.
    assert totals["S"] - used[ids["S"]] < 3
    in_arrival_order(plans, reports)


def in_arrival_order(plans: list[list[dict[str, Any]]], reports: list[dict[str, Any]]) -> None:
    """Within each process the one-row type's single-line buyers were served in arrival
    order: stock only falls, so a later buyer admitted after an earlier one was refused
    for stock must have asked for less."""
    for orders, report in zip(plans, reports, strict=True):
        refused_min = None
        for order, outcome in zip(orders, report["outcomes"], strict=True):
            if order["kind"] != "single":
                continue
            qty = order["lines"][0][1]
            if outcome["code"] == "ok" and refused_min is not None:
                assert qty < refused_min, "a later buyer was served before an earlier one"
            if outcome["code"] == "sold_out":
                refused_min = qty if refused_min is None else min(refused_min, qty)
