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
    database_url: str = "sqlite:///./headcount.db"
    redis_url: str | None = None
    redis_key_prefix: str = "hc"

    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    hold_ttl: int = Field(default=900, ge=1, description="seconds a pending order holds stock")
    presence_ttl: int = Field(default=30, ge=1, description="seconds a lease lives unrenewed")
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
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_items_per_order: int = Field(default=20, ge=1)
    max_pending_orders_per_user: int = Field(
        default=5, ge=0, description="live holds one user may have at once; 0 = no limit"
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
