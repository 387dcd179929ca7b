"""The one Idempotency-Key wrapper every keyed mutation goes through.

A use case hands over its transaction body and the view type it answers with; with a
key, the first successful answer is stored beside the work in the same transaction and
replayed to retries (`ledger/idempotency.py`), without one the body simply runs in a
transaction retried whole on deadlock. Scopes name the operation and its resource
(`orders.cancel:<id>`), so the same key on two different operations is two requests.

Work done in another store (a presence admission) is handed over as `outside` instead:
with a key it runs inside the key's transaction, so a concurrent retry waits for it and
replays its answer; without a key it runs with no transaction at all. A join to a
5,000-viewer stream start must not hold a database connection across a Redis call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from headcount.domain.identity import Principal
from headcount.ledger import journal
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
    work: Callable[[Tx], Awaitable[Answer]] | None = None,
    outside: Callable[[], Awaitable[Answer]] | None = None,
) -> Answer:
    """Run `work` in one transaction (or `outside` any), at most once per (caller, scope,
    key). Give exactly one of the two."""
    body = _body(work, outside)
    if key is None:
        return await (outside() if outside is not None else rt.db.atomically(body))

    async def stored(tx: Tx) -> dict[str, Any]:
        return (await body(tx)).model_dump(mode="json")

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


async def decided(
    rt: Runtime,
    principal: Principal,
    scope: str,
    payload: Mapping[str, object],
    *,
    key: str | None,
    answer: type[Answer],
    work: Callable[[Tx, datetime], Awaitable[Answer]],
) -> Answer:
    """`once` for a change decided at one moment: `work` gets its transaction and that
    moment, already stamped on the transaction for the thresholds its statements record
    (a retry after a deadlock decides again, at its own moment)."""

    async def stamped(tx: Tx) -> Answer:
        now = rt.clock()
        journal.stamp(tx, now)
        return await work(tx, now)

    return await once(
        rt, principal, scope=scope, key=key, payload=payload, answer=answer, work=stamped
    )


def _body(
    work: Callable[[Tx], Awaitable[Answer]] | None,
    outside: Callable[[], Awaitable[Answer]] | None,
) -> Callable[[Tx], Awaitable[Answer]]:
    if outside is None and work is not None:
        return work
    if outside is not None and work is None:
        return lambda _tx: outside()
    raise TypeError("once() takes either work or outside")
