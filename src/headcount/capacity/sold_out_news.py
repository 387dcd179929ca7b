"""Sold-out marks end when any process frees stock, not only this one.

Runs in every `serve` process beside the sequencer: it listens for the notifications
the ledger sends with every commit that frees stock (ledger/stock_news.py) and drops this
process's marks for the types named. Without PostgreSQL reached directly there is nothing
to hear, and a mark ends by its TTL (capacity/soldout.py).
"""

from __future__ import annotations

from headcount.ledger import stock_news
from headcount.runtime import Runtime


def wanted(rt: Runtime) -> bool:
    return rt.sold_out.ttl > 0 and stock_news.possible(rt.settings.database_url)


async def run(rt: Runtime) -> None:
    """Until cancelled (a task of the app's lifespan)."""
    if wanted(rt):
        await stock_news.listen(
            rt.settings.database_url,
            rt.sold_out.forget,
            connect_timeout=rt.settings.db_connect_timeout,
        )
