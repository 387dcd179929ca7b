"""The `headcount` command: serve, relay, migrate, demo, token, sweep, reconcile."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.ledger.urls import redacted

if TYPE_CHECKING:
    from headcount.runtime import Runtime

T = TypeVar("T")

app = typer.Typer(
    help="Headcount: the capacity authority of an event platform.", no_args_is_help=True
)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _migrate(settings: Settings) -> None:
    """Bring the schema up to date, or exit 3 with one clear line if the database is away.

    Serving from a process that could not migrate would answer 503s (or worse) forever;
    exiting lets the orchestrator restart it once the database is back.
    """
    from headcount.ledger.migrate import DatabaseUnreachable, upgrade

    try:
        upgrade(settings.database_url)
    except DatabaseUnreachable as exc:
        typer.secho(
            f"database unreachable at {redacted(settings.database_url)}: {exc}", fg="red", err=True
        )
        raise typer.Exit(3) from exc


async def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    from headcount.runtime import Runtime

    rt = Runtime.from_settings(settings)
    try:
        return await work(rt)
    finally:
        await rt.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = _settings()
    _migrate(settings)
    typer.echo(f"migrated {redacted(settings.database_url)}")


@app.command()
def demo() -> None:
    """Load the demo event (idempotent)."""
    from headcount.demo import DEMO_EVENT_ID, load_demo

    settings = _settings()
    _migrate(settings)
    created = asyncio.run(_with_runtime(settings, load_demo))
    typer.echo(f"demo event {DEMO_EVENT_ID} {'created' if created else 'already present'}")


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="user id (the `sub` claim)")],
    role: Annotated[Role, typer.Option(help="attendee, organizer or service")] = Role.ATTENDEE,
    hours: Annotated[float, typer.Option(help="lifetime in hours")] = 12.0,
) -> None:
    """Mint a JWT signed with HEADCOUNT_JWT_SECRET, for local use and tests."""
    from headcount.tokens import mint

    typer.echo(mint(_settings(), sub, role, ttl=timedelta(hours=hours)))


@app.command()
def sweep() -> None:
    """Expire every due hold now (serve also does this every HEADCOUNT_SWEEP_INTERVAL s)."""
    from headcount.capacity.orders import sweep_expired_holds

    count = asyncio.run(_with_runtime(_settings(), sweep_expired_holds))
    typer.echo(f"expired {count} holds")
    from headcount.capacity.waitlists import sweep_expired_offers

    lapsed = asyncio.run(_with_runtime(_settings(), sweep_expired_offers))
    typer.echo(f"passed on {lapsed} lapsed waitlist offers")


@app.command()
def reconcile(
    fix: Annotated[bool, typer.Option(help="write the recomputed counters")] = False,
) -> None:
    """Recompute every counter from the rows that explain it; exit 1 on any drift."""
    from headcount.ledger.reconcile import Drift
    from headcount.ledger.reconcile import reconcile as run

    async def work(rt: Runtime) -> list[Drift]:
        async with rt.db.transaction() as tx:
            return await run(tx, fix=fix)

    drifts = asyncio.run(_with_runtime(_settings(), work))
    for drift in drifts:
        typer.echo(f"drift: {drift}")
    if drifts:
        history = [d for d in drifts if d.basis != "rows"]
        fixed = len(drifts) - len(history)
        typer.echo(f"{len(drifts)} counters drifted" + (f" ({fixed} fixed)" if fix else ""))
        # The change log cannot be fixed: drift from it stays an error after --fix.
        raise typer.Exit(1 if history or not fix else 0)
    typer.echo("no drift: every counter equals its rows and the change log replayed")


@app.command()
def relay(
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Deliver webhooks only: sequence, fan out and send until SIGTERM (docs/webhooks.md).

    `serve` runs the same relay in every replica; dedicated relays can run beside it (or
    instead of it, with HEADCOUNT_WEBHOOK_RELAY=0 on the servers), any number at once.
    The database must be migrated (`headcount migrate`).
    """
    from headcount.capacity.relay import run_until_signalled

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_with_runtime(_settings(), run_until_signalled))


@app.command()
def serve(  # noqa: PLR0917 - Typer options, never passed positionally
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    load_demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="load the demo event")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    keep_alive: Annotated[
        int, typer.Option(help="seconds an idle keep-alive connection stays open")
    ] = 75,
) -> None:
    """Migrate, optionally load the demo, and serve the API."""
    import uvicorn

    from headcount.demo import DEMO_EVENT_ID, DEMO_ORGANIZER
    from headcount.demo import load_demo as loader
    from headcount.tokens import mint

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = _settings()
    if workers > 1 and not settings.redis_url:
        # In-process presence is per process: each worker would admit up to every live limit.
        typer.secho(
            "--workers > 1 needs HEADCOUNT_REDIS_URL: the in-process presence engine "
            "cannot share leases between processes",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    _migrate(settings)
    base = f"http://{host}:{port}"
    if load_demo:
        asyncio.run(_with_runtime(settings, loader))
        attendee = mint(settings, "demo-attendee", Role.ATTENDEE)
        organizer = mint(settings, DEMO_ORGANIZER.sub, Role.ORGANIZER)
        typer.echo(
            f"\nHeadcount on {base}  (database {redacted(settings.database_url)}, presence "
            f"{'redis' if settings.redis_url else 'in-process'})\n"
            f"  API docs      {base}/docs\n"
            f"  demo event    {base}/api/v1/events/{DEMO_EVENT_ID}/capacity\n"
            f"  event page    {base}/events/{DEMO_EVENT_ID}?token={attendee}\n"
            f"  dashboard     {base}/events/{DEMO_EVENT_ID}/dashboard\n"
            f"  GraphQL       {base}/graphql\n"
            f"  attendee token   {attendee}\n"
            f"  organizer token  {organizer}\n"
            f"  try:  curl -H 'Authorization: Bearer <attendee token>' "
            f"{base}/api/v1/events/{DEMO_EVENT_ID}/ticket-types\n"
        )
    sys.stdout.flush()
    os.environ.setdefault("HEADCOUNT_DATABASE_URL", settings.database_url)
    uvicorn.run(
        "headcount.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        # Our frames are ~100-byte JSON: compressing them halves nothing but costs a zlib
        # context per socket (85 -> 42 KiB per viewer without it; bench/RESULTS.md).
        ws_per_message_deflate=False,
        # Longer than a client's or proxy's own idle expiry (httpx 5 s, load balancers
        # ~60 s): with uvicorn's 5 s both sides closed at the same moment, and a request
        # sent on the closing connection got no answer (a POST is not retried).
        timeout_keep_alive=keep_alive,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
