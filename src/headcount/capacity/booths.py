"""Expo booths by name, for GraphQL's resolvers.

A booth is the registry entry `spaces.BOOTH`; reading one is `places.get`/`places.listed`
like every place. These names go once the resolvers call those directly.
"""

from __future__ import annotations

from headcount.capacity import places
from headcount.capacity.spaces import BOOTH
from headcount.capacity.views import BoothView
from headcount.runtime import Runtime


async def get_booth(rt: Runtime, booth_id: str) -> BoothView:
    return await places.get(rt, BOOTH, booth_id)


async def list_booths(rt: Runtime, event_id: str) -> list[BoothView]:
    return await places.listed(rt, BOOTH, event_id)
