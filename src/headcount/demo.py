"""The demo event loaded by `headcount demo` and `headcount serve --demo`.

Fixed ids make loading idempotent: running it twice leaves one demo event.
"""

from __future__ import annotations

from datetime import timedelta

from headcount.capacity import events, pools, tickets
from headcount.capacity.events import EventDraft, VirtualSettings
from headcount.capacity.live_demo import load_demo_presence
from headcount.capacity.pools import PoolDraft
from headcount.capacity.sessions import load_demo_sessions
from headcount.capacity.tickets import TicketTypeDraft
from headcount.domain.errors import NotFound
from headcount.domain.identity import Principal, Role
from headcount.runtime import Runtime

DEMO_EVENT_ID = "evt_demo"
DEMO_ORGANIZER = Principal(sub="demo-organizer", role=Role.ORGANIZER)

# Features append loaders here (sessions, booths, huddles …); each gets the demo event id.
EXTRA_LOADERS: list = []  # type: ignore[type-arg]


async def load_demo(rt: Runtime) -> bool:
    """Create the demo event if it is missing; returns whether anything was created."""
    try:
        await events.get_event(rt, DEMO_EVENT_ID)
        return False
    except NotFound:
        pass
    now = rt.clock()
    await events.create_event(
        rt,
        DEMO_ORGANIZER,
        EventDraft(
            name="Headcount Demo Conference",
            description="A demo event: small caps so you can watch things fill up.",
            starts_at=now + timedelta(days=30),
            ends_at=now + timedelta(days=31),
            max_attendees=50,
            virtual_settings=VirtualSettings(max_concurrent_viewers=25),
        ),
        event_id=DEMO_EVENT_ID,
    )
    for tt_id, name, total, per_order in (
        ("tt_demo_early", "Early Bird", 10, 2),
        ("tt_demo_regular", "Regular", 30, 4),
        ("tt_demo_vip", "VIP", 5, 1),
    ):
        await tickets.create_ticket_type(
            rt,
            DEMO_ORGANIZER,
            DEMO_EVENT_ID,
            TicketTypeDraft(name=name, quantity_total=total, max_per_order=per_order),
            ticket_type_id=tt_id,
        )
    # A shared pool: Early Bird and Regular share the 35 seats of the main hall (10 + 30 > 35).
    await pools.create_pool(
        rt,
        DEMO_ORGANIZER,
        DEMO_EVENT_ID,
        PoolDraft(
            name="Main hall", capacity=35, ticket_type_ids=["tt_demo_early", "tt_demo_regular"]
        ),
        pool_id="pool_demo_hall",
    )
    await load_demo_sessions(rt, DEMO_EVENT_ID, DEMO_ORGANIZER)
    await load_demo_presence(rt, DEMO_EVENT_ID, DEMO_ORGANIZER)
    for loader in EXTRA_LOADERS:
        await loader(rt, DEMO_EVENT_ID)
    return True
