"""Demo booths, huddles and breakout rooms: small limits so they visibly fill up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from headcount.capacity import places
from headcount.capacity.spaces import (
    BOOTH,
    BREAKOUT_ROOM,
    HUDDLE,
    BoothDraft,
    BreakoutRoomDraft,
    HuddleDraft,
    Space,
)
from headcount.domain.identity import Principal
from headcount.runtime import Runtime

DEMO_ROOMS_SESSION = "ses_demo_workshop"


async def load_demo_presence(rt: Runtime, event_id: str, organizer: Principal) -> None:
    demo: list[tuple[Space[Any], str, str, BaseModel]] = [
        (
            BOOTH,
            event_id,
            "bth_demo_acme",
            BoothDraft(name="Acme Cloud", tier="platinum", video_enabled=True, max_visitors=5),
        ),
        (BOOTH, event_id, "bth_demo_tiny", BoothDraft(name="Tiny Startup", max_visitors=2)),
        (HUDDLE, event_id, "hud_demo_rust", HuddleDraft(name="Rustaceans", capacity=4)),
        (HUDDLE, event_id, "hud_demo_ai", HuddleDraft(name="AI in production", capacity=3)),
        (
            BREAKOUT_ROOM,
            DEMO_ROOMS_SESSION,
            "brk_demo_table1",
            BreakoutRoomDraft(name="Table 1", capacity=3),
        ),
        (
            BREAKOUT_ROOM,
            DEMO_ROOMS_SESSION,
            "brk_demo_table2",
            BreakoutRoomDraft(name="Table 2", capacity=3),
        ),
    ]
    for space, parent_id, place_id, draft in demo:
        await places.create(rt, organizer, space, parent_id, draft, place_id=place_id)
