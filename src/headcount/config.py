"""Settings from the environment.

Every knob has a safe default so that `headcount serve` works with no configuration at all
(SQLite file + in-process presence); production refuses the development signing secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "headcount-dev-secret-change-me-in-production"  # noqa: S105 - refused in production


class Settings(BaseSettings):
    """Runtime configuration, read from `HEADCOUNT_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HEADCOUNT_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    # Add `?pooler=transaction` to a PostgreSQL URL that goes through PgBouncer (or any
    # transaction-mode pooler): ledger/urls.py.
    database_url: str = "sqlite:///./headcount.db"
    # A streaming replica for reads that may lag (capacity snapshots, listings, the
    # dashboard): `Database.snapshot(may_lag=True)`. Admissions never read from it.
    database_read_url: str | None = None
    read_max_lag: float = Field(
        default=5.0,
        gt=0,
        description="seconds a replica may be behind the primary and still serve reads; "
        "a replica further behind, or unreachable, is skipped and the primary serves",
    )
    # `redis://`/`rediss://` for one Redis, `redis+cluster://`/`rediss+cluster://` (any
    # node) for a Redis Cluster; unset = in-process presence (presence/redis.py).
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="hc", pattern=r"^[^{}]*$")  # braces: hash tags
    # The failover guard (presence/batching.py): after an admission, `WAIT` this many
    # milliseconds for `redis_replica_acks` replicas to confirm it before answering, and
    # refuse with 503 when they do not. 0 = off (a Redis without replicas could never
    # confirm). Costs a replica round trip per admitting batch; docs/scale-out.md.
    redis_replica_ack_ms: int = Field(default=0, ge=0, le=10_000)
    redis_replica_acks: int = Field(default=1, ge=1, le=16)

    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    hold_ttl: int = Field(default=900, ge=1, description="seconds a pending order holds stock")
    presence_ttl: int = Field(default=30, ge=1, description="seconds a lease lives unrenewed")
    presence_grace: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="seconds a live place stays its holder's after their connection is lost "
        "without a leave (a dropped socket, heartbeats stopped); a space or an event may "
        "set its own (capacity/spaces.py)",
    )
    offer_ttl: int = Field(default=3600, ge=1, description="seconds a waitlist offer is held")
    sweep_interval: float = Field(default=5.0, gt=0, description="seconds between expiry sweeps")

    # A fixed pool is the admission queue in front of the database: overflow connections
    # are opened and closed per request under load (a backend fork each), and more
    # transactions queued on one hot row only lengthen its lock queue (bench/RESULTS.md).
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    hot_row_concurrency: int = Field(
        default=2,
        ge=0,
        description="orders per ticket type one process lets into the database at once "
        "(the rest queue in-process; 0 = no gate); see gates.py",
    )
    hold_batch_max: int = Field(
        default=64,
        ge=0,
        description="single-line orders of one ticket type one process applies in one "
        "transaction (0 = no batching); see capacity/batching.py",
    )
    sold_out_mark_ttl: float = Field(
        default=0.5,
        ge=0,
        description="seconds a sold-out mark refuses orders without the database; a release "
        "in another process is seen within this (0 = no marks); see capacity/soldout.py",
    )
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_items_per_order: int = Field(default=20, ge=1)
    max_pending_orders_per_user: int = Field(
        default=5, ge=0, description="live holds one user may have at once; 0 = no limit"
    )

    # Webhooks (capacity/relay.py, docs/webhooks.md).
    webhook_allow_private: bool = Field(
        default=False,
        description="allow webhook URLs on private, loopback or link-local addresses "
        "(and plain http); for tests and closed networks only",
    )
    webhook_relay: bool = Field(
        default=True,
        description="run the webhook relay inside `serve`; turn off where dedicated "
        "`headcount relay` processes send instead",
    )
    webhook_poll_interval: float = Field(
        default=0.05, gt=0, le=10, description="seconds an idle relay waits before looking again"
    )
    webhook_concurrency: int = Field(
        default=16, ge=1, le=1000, description="deliveries one relay process sends at once"
    )
    webhook_retry_cap: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="longest wait between two attempts of a failing delivery, in seconds",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, le=60, description="seconds one delivery may take, all in"
    )
    change_log: bool = Field(
        default=True,
        description="record every decision in the change log; `off` exists only to measure "
        "what recording costs (the feed, webhooks and reconcile-from-log need it on)",
    )
    change_retention_days: float = Field(
        default=30, gt=0, description="days a change is kept once every consumer has taken it"
    )

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Settings:
        if (
            self.env == "production"
            and self.jwt_algorithm == "HS256"
            and self.jwt_secret == DEV_JWT_SECRET
        ):
            raise ValueError(
                "HEADCOUNT_JWT_SECRET is the development secret; set a real one in production"
            )
        if self.env == "production" and self.jwt_algorithm == "HS256" and len(self.jwt_secret) < 32:
            raise ValueError("HEADCOUNT_JWT_SECRET must be at least 32 bytes for HS256 (RFC 7518)")
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise ValueError("HEADCOUNT_JWT_ALGORITHM=RS256 needs HEADCOUNT_JWT_PUBLIC_KEY")
        return self
