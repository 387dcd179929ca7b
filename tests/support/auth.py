"""Tokens and principals for tests."""

from __future__ import annotations

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
