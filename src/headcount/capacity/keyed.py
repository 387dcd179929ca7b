"""The one Idempotency-Key wrapper every keyed mutation goes through.

A use case hands over its transaction body and the view type it answers with; with a
key, the first successful answer is stored beside the work in the same transaction and
replayed to retries (`ledger/idempotency.py`), without one the body simply runs in a
transaction retried whole on deadlock. Scopes name the operation and its resource
(`orders.cancel:<id>`), so the same key on two different operations is two requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from headcount.domain.identity import Principal
from headcount.ledger.db import Tx
from headcount.ledger.idempotency import run_idempotent
from headcount.runtime import Runtime

Answer = TypeVar("Answer", bound=BaseModel)


async def once(
    rt: Runtime,
    principal: Principal,
    *,
    scope: str,
    key: str | None,
    payload: object,
    answer: type[Answer],
    work: Callable[[Tx], Awaitable[Answer]],
) -> Answer:
    """Run `work` in one transaction, at most once per (caller, scope, key)."""
    if key is None:
        return await rt.db.atomically(work)

    async def stored(tx: Tx) -> dict[str, Any]:
        return (await work(tx)).model_dump(mode="json")

    first = await run_idempotent(
        rt.db,
        owner=principal.sub,
        scope=scope,
        key=key,
        payload=payload,
        now=rt.clock(),
        work=stored,
    )
    return answer.model_validate(first)
