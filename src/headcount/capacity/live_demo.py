"""Demo booths, huddles and breakout rooms: small limits so they visibly fill up."""

from __future__ import annotations

from headcount.capacity import booths, breakouts, huddles
from headcount.capacity.booths import BoothDraft
from headcount.capacity.breakouts import BreakoutRoomDraft
from headcount.capacity.huddles import HuddleDraft
from headcount.domain.identity import Principal
from headcount.runtime import Runtime

DEMO_ROOMS_SESSION = "ses_demo_workshop"


async def load_demo_presence(rt: Runtime, event_id: str, organizer: Principal) -> None:
    for booth_id, name, tier, video, cap in (
        ("bth_demo_acme", "Acme Cloud", "platinum", True, 5),
        ("bth_demo_tiny", "Tiny Startup", "standard", False, 2),
    ):
        await booths.create_booth(
            rt,
            organizer,
            event_id,
            BoothDraft(name=name, tier=tier, video_enabled=video, max_visitors=cap),
            booth_id=booth_id,
        )
    for huddle_id, name, cap in (
        ("hud_demo_rust", "Rustaceans", 4),
        ("hud_demo_ai", "AI in production", 3),
    ):
        await huddles.create_huddle(
            rt, organizer, event_id, HuddleDraft(name=name, capacity=cap), huddle_id=huddle_id
        )
    for room_id, name in (("brk_demo_table1", "Table 1"), ("brk_demo_table2", "Table 2")):
        await breakouts.create_room(
            rt,
            organizer,
            DEMO_ROOMS_SESSION,
            BreakoutRoomDraft(name=name, capacity=3),
            room_id=room_id,
        )
