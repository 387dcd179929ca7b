"""In-process wake-ups for the capacity push channel: "something of event X changed".

Only a hint that lets a local subscriber push at once; subscribers also poll, which is
what carries changes made by other API processes (docs/concurrency.md, "Live presence").
Held by `Runtime`, so it lives outside `capacity/` and imports nothing of it.
"""

from __future__ import annotations

import asyncio


class ChangeSignals:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, event_id: str) -> asyncio.Event:
        flag = asyncio.Event()
        self._waiters.setdefault(event_id, set()).add(flag)
        return flag

    def unsubscribe(self, event_id: str, flag: asyncio.Event) -> None:
        waiters = self._waiters.get(event_id)
        if waiters is not None:
            waiters.discard(flag)
            if not waiters:
                del self._waiters[event_id]

    def notify(self, event_id: str) -> None:
        for flag in self._waiters.get(event_id, ()):
            flag.set()
