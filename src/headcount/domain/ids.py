"""Public identifiers: short, prefixed, opaque strings (the prefix tells a reader what it is)."""

from __future__ import annotations

import re
import secrets

_ID_RE = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9_-]{1,64}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def is_well_formed(value: str) -> bool:
    """Ids are checked before touching the database so garbage gets a 404, not a 500."""
    return bool(_ID_RE.match(value))
