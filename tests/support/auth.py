"""Tokens and principals for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from headcount.config import Settings
from headcount.domain.identity import Principal, Role
from headcount.tokens import mint


def bearer(
    sub: str, role: Role = Role.ATTENDEE, settings: Settings | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings or Settings(), sub, role)}"}


def organizer(sub: str = "org-1") -> Principal:
    return Principal(sub=sub, role=Role.ORGANIZER)


def attendee(sub: str) -> Principal:
    return Principal(sub=sub, role=Role.ATTENDEE)


def claims(sub: str, /, **overrides: object) -> dict[str, object]:
    """A valid attendee token's claims for `sub`, five minutes from expiry; overrides
    replace any claim (`sub` too), and None leaves it out, to build the tokens that must
    be refused."""
    base: dict[str, object] = {
        "sub": sub,
        "role": "attendee",
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}
