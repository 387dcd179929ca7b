"""One buyer process of the batched-admission hammer (tests/integration/test_batch_hammer.py).

Run as `python -m support.batch_buyers URL PLAN OUT`: places every order of its plan at
once, started in plan order (its arrival order, since nothing awaits before an order
queues), and writes each order's outcome — its id, or the refusal's code — to OUT.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from headcount.capacity import orders
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.domain.errors import HeadcountError
from headcount.runtime import Runtime
from support.auth import attendee
from support.runtimes import open_runtime


async def place(rt: Runtime, order: dict[str, Any]) -> dict[str, Any]:
    draft = OrderDraft(
        event_id=order["event_id"],
        items=[OrderItemInput(ticket_type_id=t, quantity=q) for t, q in order["lines"]],
    )
    try:
        view = await orders.create_order(
            rt, attendee(order["owner"]), draft, idempotency_key=order.get("key")
        )
    except HeadcountError as exc:
        return {"code": exc.code}
    return {"code": "ok", "id": view.id}


async def run(url: str, plan: list[dict[str, Any]]) -> dict[str, Any]:
    settings = {"db_pool_size": 8, "db_pool_timeout": 120, "db_statement_timeout_ms": 120_000}
    async with open_runtime(url, **settings) as rt:
        tasks = [asyncio.ensure_future(place(rt, order)) for order in plan]
        found = await asyncio.gather(*tasks)
        return {
            "outcomes": found,
            "batches": rt.hold_batches.batches,
            "largest": rt.hold_batches.largest,
        }


def main(url: str, plan_path: str, out_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    Path(out_path).write_text(json.dumps(asyncio.run(run(url, plan))))


if __name__ == "__main__":
    main(*sys.argv[1:4])
