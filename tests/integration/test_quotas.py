"""Per-user quota on live holds: one client cannot hold a whole stock, even concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from headcount.capacity import events, orders, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import TicketTypeView
from headcount.domain.errors import RateLimited
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-quotas")
LIMIT = 3


@pytest.fixture
def limited(runtime: Runtime) -> Runtime:
    runtime.settings = runtime.settings.model_copy(update={"max_pending_orders_per_user": LIMIT})
    return runtime


async def stock(rt: Runtime, total: int) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Quota test"))
    return await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=total)
    )


def one(tt: TicketTypeView) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)]
    )


async def test_a_user_cannot_hold_more_than_the_limit(limited: Runtime) -> None:
    tt = await stock(limited, 100)
    hoarder = attendee("hoarder-seq")
    held = [await orders.create_order(limited, hoarder, one(tt)) for _ in range(LIMIT)]
    with pytest.raises(RateLimited) as refused:
        await orders.create_order(limited, hoarder, one(tt))
    assert refused.value.status == 429
    assert refused.value.extra["max_pending_orders"] == LIMIT
    seen = await tickets.get_ticket_type(limited, tt.id)
    assert seen.quantity_reserved == LIMIT  # the refusal changed nothing

    # Someone else is not affected; paying for or cancelling a hold frees a slot.
    await orders.create_order(limited, attendee("bystander-seq"), one(tt))
    await orders.cancel_order(limited, hoarder, held[0].id)
    await orders.confirm_order(limited, ORG, held[1].id)
    await orders.create_order(limited, hoarder, one(tt))
    await orders.create_order(limited, hoarder, one(tt))
    with pytest.raises(RateLimited):
        await orders.create_order(limited, hoarder, one(tt))


async def test_lapsed_holds_do_not_count(limited: Runtime) -> None:
    tt = await stock(limited, 100)
    hoarder = attendee("hoarder-lapse")
    for _ in range(LIMIT):
        await orders.create_order(limited, hoarder, one(tt))
    start = limited.clock()
    limited.clock = lambda: start + timedelta(seconds=limited.settings.hold_ttl + 1)
    await orders.create_order(limited, hoarder, one(tt))


async def test_an_idempotent_retry_is_replayed_not_refused(limited: Runtime) -> None:
    tt = await stock(limited, 100)
    hoarder = attendee("hoarder-retry")
    first = [
        await orders.create_order(limited, hoarder, one(tt), idempotency_key=f"k{n}")
        for n in range(LIMIT)
    ]
    again = await orders.create_order(limited, hoarder, one(tt), idempotency_key="k0")
    assert again == first[0]


async def test_concurrent_orders_by_one_user_cannot_beat_the_limit(limited: Runtime) -> None:
    """30 simultaneous orders from one user: exactly LIMIT are admitted, on both databases."""
    tt = await stock(limited, 100)
    hoarder = attendee("hoarder-race")
    results = await asyncio.gather(
        *(orders.create_order(limited, hoarder, one(tt)) for _ in range(30)),
        return_exceptions=True,
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(admitted) == LIMIT, results
    assert len(refused) == 30 - LIMIT, results
    seen = await tickets.get_ticket_type(limited, tt.id)
    assert seen.quantity_reserved == LIMIT
    async with limited.db.transaction() as tx:
        assert await reconcile(tx) == []


async def test_zero_disables_the_quota(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"max_pending_orders_per_user": 0})
    tt = await stock(runtime, 100)
    whale = attendee("whale")
    for _ in range(8):
        await orders.create_order(runtime, whale, one(tt))
