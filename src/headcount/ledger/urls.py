"""Database URL handling: users write plain URLs, the engine needs async drivers.

One parameter of ours may ride on a PostgreSQL URL: `pooler=transaction` says the URL
reaches PostgreSQL through a transaction-mode pooler (PgBouncer, or any pooler that hands
a server connection to a client for one transaction only). It is a property of where a
URL points, so the primary's URL and a replica's may differ. `async_url` strips it;
`pooled` reads it (ledger/db.py turns prepared-statement caching off for such URLs).
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

POOLER_PARAMETER = "pooler"
POOLER_MODES = ("transaction",)


def async_url(url: str) -> URL:
    """`sqlite:///x.db` → aiosqlite, `postgresql://…` → asyncpg; explicit drivers are kept."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    pooled(url)  # validates the pooler parameter
    parsed = parsed.difference_update_query([POOLER_PARAMETER])
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    return parsed


def pooled(url: str) -> bool:
    """Whether `url` says `pooler=transaction` (refuses any other pooler mode)."""
    mode = make_url(url).query.get(POOLER_PARAMETER)
    if mode is None:
        return False
    if isinstance(mode, tuple) or mode not in POOLER_MODES:
        raise ValueError(f"{POOLER_PARAMETER}= must be one of {', '.join(POOLER_MODES)}")
    return True


def driver_options(url: str) -> dict[str, object]:
    """asyncpg connect arguments a URL's pooler needs (none for a direct connection).

    Behind a transaction pooler consecutive transactions of one client connection run on
    different server connections, so a statement prepared under a name in one is missing
    (or, worse, another client's) in the next. asyncpg's statement cache and SQLAlchemy's
    are turned off, which makes asyncpg use the unnamed statement, parsed and executed
    within one transaction. The alternative, PgBouncer's `max_prepared_statements`, needs
    PgBouncer 1.21 or newer and holds only for PgBouncer (docs/scale-out.md).
    """
    if not pooled(url):
        return {}
    return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}


def plain(url: str) -> str:
    """`url` without our parameter, as libpq and psycopg accept it."""
    clean = make_url(url).difference_update_query([POOLER_PARAMETER])
    return clean.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """For logs and banners: never print a password."""
    return make_url(url).render_as_string(hide_password=True)
