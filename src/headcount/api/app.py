"""The app factory: `create_app(settings)` builds everything; nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from headcount import __version__, origin
from headcount.api import graphql, problems, web
from headcount.api.middleware import BodyLimit, Latency, RequestId
from headcount.api.realtime import capacity as capacity_ws
from headcount.api.realtime import queue as queue_ws
from headcount.api.realtime import stream as stream_ws
from headcount.api.rest import allotments as allotments_rest
from headcount.api.rest import (
    areas,
    changes,
    events,
    ops,
    orders,
    registrations,
    sessions,
    tickets,
    waitlists,
)
from headcount.api.rest import pools as pools_rest
from headcount.api.rest import presence as presence_rest
from headcount.api.rest import waiting_rooms as waiting_rooms_rest
from headcount.api.rest import webhooks as webhooks_rest
from headcount.capacity import queue_pump, sequencer, sold_out_news
from headcount.capacity.allotments import sweep_due_holds
from headcount.capacity.live import prune_presence
from headcount.capacity.orders import sweep_expired_holds
from headcount.capacity.relay import run_in_background as run_webhook_relay
from headcount.capacity.retention import prune_changes
from headcount.capacity.scans import sweep_checkouts
from headcount.capacity.waitlists import sweep_expired_offers
from headcount.config import Settings
from headcount.domain.errors import HeadcountError
from headcount.runtime import Runtime

log = logging.getLogger(__name__)

# Background duties run by every replica; each must be safe to run concurrently everywhere.
Duty = Callable[[Runtime], Awaitable[object]]
DUTIES: list[Duty] = [sweep_expired_holds, sweep_expired_offers, prune_presence, prune_changes]
DUTIES.append(sweep_due_holds)  # organizer holds whose release time came
DUTIES.append(sweep_checkouts)


async def _run_duties(rt: Runtime) -> None:
    origin.as_system()  # what the duties record is the service's own doing
    while True:
        await asyncio.sleep(rt.settings.sweep_interval)
        for duty in DUTIES:
            try:
                await duty(rt)
            except HeadcountError as exc:  # e.g. database briefly unreachable
                log.warning("background duty %s: %s", duty.__name__, exc.detail)
            except Exception:
                log.exception("background duty %s failed", duty.__name__)


# Allocations between young-generation collections, and young collections per older one.
GC_THRESHOLDS = (50_000, 20, 100)


def _quiet_collector() -> None:
    """Keep Python's cycle collector from stalling the event loop under many sockets.

    Each open WebSocket keeps a few hundred live objects; with the default thresholds the
    collector walked them all again and again, and at 3,000 viewers a ping's p99 was 446 ms
    instead of 7 ms (bench/RESULTS.md). What exists at startup is frozen out of collection
    and the generations are collected less often. Reference counting still frees almost
    everything at once; only cyclic garbage waits a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else Settings())
    rt = runtime or Runtime.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_run_duties(rt), name="headcount-duties"),
            # The change log's sequencer runs in every replica (capacity/sequencer.py).
            asyncio.create_task(sequencer.run(rt), name="headcount-sequencer"),
            # Waiting rooms admit a few times a second (capacity/queue_pump.py).
            asyncio.create_task(queue_pump.run(rt), name="headcount-waiting-rooms"),
            # Sold-out marks hear releases committed by other processes (sold_out_news.py).
            asyncio.create_task(sold_out_news.run(rt), name="headcount-sold-out-news"),
        ]
        # The webhook relay keeps its own, much shorter loop (capacity/relay.py).
        stop_relay = asyncio.Event()
        relay = (
            asyncio.create_task(run_webhook_relay(rt, stop_relay), name="headcount-relay")
            if settings.webhook_relay
            else None
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if relay is not None:
                stop_relay.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="Headcount",
        version=__version__,
        summary="The capacity authority of an event platform.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    problems.install(app)
    api = "/api/v1"
    # Sockets first: routes are matched in order, and when a stream starts thousands of
    # handshakes arrive at once; behind ~100 REST routes matching cost ~9 % of a join.
    app.include_router(stream_ws.router)
    app.include_router(capacity_ws.router)
    app.include_router(queue_ws.router)
    for router in (events.router, tickets.router, orders.router):
        app.include_router(router, prefix=api)
    for router in (registrations.router, sessions.router, waitlists.router):
        app.include_router(router, prefix=api)
    app.include_router(presence_rest.router(), prefix=api)
    app.include_router(pools_rest.router, prefix=api)
    app.include_router(allotments_rest.router, prefix=api)
    app.include_router(webhooks_rest.router, prefix=api)
    app.include_router(changes.router, prefix=api)
    app.include_router(waiting_rooms_rest.router, prefix=api)
    app.include_router(areas.router, prefix=api)
    app.include_router(ops.router)
    graphql.install(app)
    web.install(app)
    app.add_middleware(Latency)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # Outermost: every answer (a 413 too) carries the request id, and what the request
    # records in the change log is attributed to it.
    app.add_middleware(RequestId)
    return app


def app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory` (`headcount serve`): one per server process."""
    app = create_app(Settings())
    _quiet_collector()
    return app
