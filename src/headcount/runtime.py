"""What a running Headcount process holds: settings, the ledger, the presence engine, a clock.

Built by the app factory (and by the CLI and tests); nothing here connects at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from headcount.capacity.batching import HoldBatches
from headcount.capacity.soldout import SoldOutMarks
from headcount.config import Settings
from headcount.domain.errors import ServiceUnavailable, Timeout
from headcount.fresh import FreshReads
from headcount.gates import Gates
from headcount.ledger.db import Database
from headcount.presence import MemoryPresence, Presence, Resource, build_presence
from headcount.recent import RecentReads
from headcount.signals import ChangeSignals


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Callable[[], datetime] = utc_now
    # The live engine: Redis when configured, else this process's memory (see presence/).
    presence: Presence = field(default_factory=MemoryPresence)
    # Wake-ups for this process's capacity push channels (signals.py).
    signals: ChangeSignals = field(default_factory=ChangeSignals)
    # Each live resource's (event id, limit, grace) as heartbeats and leaves show it, ≤ 1 s
    # old (recent.py); joins read the limit fresh instead.
    displayed_limits: RecentReads[Resource, tuple[str, int | None, float]] = field(
        default_factory=RecentReads
    )
    # A live place's row as joins read it: shared by joins that arrive together, never
    # begun before the join asked (fresh.py).
    join_reads: FreshReads[Resource, object] = field(default_factory=FreshReads)
    # In-process queues in front of hot ticket-type rows (gates.py).
    hold_gates: Gates = field(init=False)
    # Single-line orders of one ticket type, applied together (capacity/batching.py).
    hold_batches: HoldBatches = field(init=False)
    # Ticket types found with no room left: refused here for a bounded moment (soldout.py).
    sold_out: SoldOutMarks = field(init=False)

    def __post_init__(self) -> None:
        self.hold_gates = Gates(
            self.settings.hot_row_concurrency, shared_failures=(ServiceUnavailable, Timeout)
        )
        self.hold_batches = HoldBatches(
            self.db,
            max_batch=self.settings.hold_batch_max,
            shared_failures=(ServiceUnavailable, Timeout),
        )
        self.sold_out = SoldOutMarks(self.settings.sold_out_mark_ttl)
        self.db.stock_freed = self.sold_out.forget

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, db=Database(settings), presence=build_presence(settings))

    async def close(self) -> None:
        await self.db.dispose()
        closer = getattr(self.presence, "close", None)
        if closer is not None:
            await closer()
