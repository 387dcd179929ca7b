"""View → GraphQL type for flat views: fields are taken by name, so the two cannot drift.

Nested members (lists of views, a view inside a view) are passed as overrides by the
caller, already converted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel

from headcount.domain.errors import InvalidRequest

T = TypeVar("T")


def flat(cls: type[T], view: BaseModel, **overrides: Any) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {name: getattr(view, name) for name in names if name not in overrides}
    return cls(**values, **overrides)


MAX_KEY_LENGTH = 200


def idempotency_key(value: str | None) -> str | None:
    """Same bound as REST's Idempotency-Key header, so a key works in either API."""
    if value is not None and not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidRequest(f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters")
    return value
