"""Idempotency-Key storage: the first successful answer is kept and replayed.

The key row is inserted *before* the mutation runs, in the same transaction. A concurrent
request with the same key therefore blocks on the primary key (PostgreSQL) or on the
write lock (SQLite) until the first commits, then fails its insert and replays the stored
answer: the work is never done twice. Refusals are not stored: a refused request changes
nothing, so retrying it simply asks again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import IdempotencyKeyReused, InvalidRequest
from headcount.ledger.db import Database
from headcount.ledger.models import IdempotencyRecord

JSONDict = dict[str, Any]
MAX_KEY_LENGTH = 200


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")


def _replay(record: IdempotencyRecord, print_: str) -> JSONDict:
    if record.fingerprint != print_:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request; use a new key"
        )
    return record.response


async def run_idempotent(
    db: Database,
    *,
    owner: str,
    scope: str,
    key: str | None,
    payload: Any,
    now: datetime,
    work: Callable[[AsyncSession], Awaitable[JSONDict]],
) -> JSONDict:
    """Run `work` once per (owner, scope, key); later calls get the first answer back."""
    if key is None:
        return await db.atomically(work)
    _check_key(key)
    print_ = fingerprint(payload)
    ident = (owner, scope, key)

    async def attempt(tx: AsyncSession) -> JSONDict:
        existing = await tx.get(IdempotencyRecord, ident)
        if existing is not None:
            return _replay(existing, print_)
        record = IdempotencyRecord(
            owner_id=owner, scope=scope, key=key, fingerprint=print_, response={}, created_at=now
        )
        tx.add(record)
        await tx.flush()
        result = await work(tx)
        record.response = result
        return result

    try:
        return await db.atomically(attempt)
    except IntegrityError:
        async with db.transaction() as tx:
            existing = await tx.get(IdempotencyRecord, ident)
            if existing is None:
                raise
            return _replay(existing, print_)
