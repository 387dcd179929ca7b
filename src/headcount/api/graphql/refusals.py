"""Refusals as typed GraphQL results, one type per `domain.errors` code.

Mutations (and lookups by id) return a union of their success type and these, so a
client branches on `__typename` or `code` exactly as a REST client branches on the problem
body's `code`; the `code`, `title` and `detail` are the very strings REST sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError

from headcount.domain import errors

T = TypeVar("T")


@strawberry.interface(description="A request understood and deliberately not carried out.")
class Refusal:
    code: str = strawberry.field(description="Stable machine-readable code, same as REST.")
    title: str
    detail: str = strawberry.field(description="Human-readable explanation; show it as is.")


@strawberry.type
class SoldOut(Refusal):
    ticket_type_id: strawberry.ID | None = None
    requested: int | None = None


@strawberry.type(description="A shared capacity pool has too little left (issue 4).")
class PoolExhausted(Refusal):
    pool_id: strawberry.ID | None = None
    pool_name: str | None = None
    remaining: int | None = None


@strawberry.type(description="The buyer reached a ticket type's or pool's max_per_customer.")
class CustomerLimitReached(Refusal):
    ticket_type_id: strawberry.ID | None = None
    pool_id: strawberry.ID | None = None
    max_per_customer: int | None = None
    already: int | None = None
    requested: int | None = None


@strawberry.type
class SalesClosed(Refusal):
    ticket_type_id: strawberry.ID | None = None


@strawberry.type
class HoldExpired(Refusal):
    ticket_type_id: strawberry.ID | None = None


@strawberry.type
class InvalidQuantity(Refusal):
    ticket_type_id: strawberry.ID | None = None
    max_per_order: int | None = None


@strawberry.type
class InvalidRequest(Refusal):
    pass


@strawberry.type
class Unauthorized(Refusal):
    pass


@strawberry.type
class Forbidden(Refusal):
    pass


@strawberry.type
class NotFound(Refusal):
    pass


@strawberry.type
class Conflict(Refusal):
    status: str | None = strawberry.field(default=None, description="The blocking state.")


@strawberry.type
class IdempotencyKeyReused(Refusal):
    pass


@strawberry.type
class EventFull(Refusal):
    pass


@strawberry.type
class SessionFull(Refusal):
    pass


@strawberry.type
class HuddleFull(Refusal):
    huddle_full: bool = True


@strawberry.type
class ViewerLimitReached(Refusal):
    pass


@strawberry.type
class BoothFull(Refusal):
    pass


@strawberry.type
class RoomFull(Refusal):
    pass


@strawberry.type
class NotRegistered(Refusal):
    pass


@strawberry.type
class RoomClosed(Refusal):
    pass


@strawberry.type
class LeaseExpired(Refusal):
    pass


@strawberry.type(description="A refusal with no dedicated type yet; branch on `code`.")
class Refused(Refusal):
    pass


BY_CODE: dict[str, type[Refusal]] = {
    errors.SoldOut.code: SoldOut,
    errors.PoolExhausted.code: PoolExhausted,
    errors.CustomerLimitReached.code: CustomerLimitReached,
    errors.SalesClosed.code: SalesClosed,
    errors.HoldExpired.code: HoldExpired,
    errors.InvalidQuantity.code: InvalidQuantity,
    errors.InvalidRequest.code: InvalidRequest,
    errors.MalformedRequest.code: InvalidRequest,
    errors.Unauthorized.code: Unauthorized,
    errors.Forbidden.code: Forbidden,
    errors.NotFound.code: NotFound,
    errors.Conflict.code: Conflict,
    errors.IdempotencyKeyReused.code: IdempotencyKeyReused,
    errors.EventFull.code: EventFull,
    errors.SessionFull.code: SessionFull,
    errors.HuddleFull.code: HuddleFull,
    errors.ViewerLimitReached.code: ViewerLimitReached,
    errors.BoothFull.code: BoothFull,
    errors.RoomFull.code: RoomFull,
    # Literal codes: their error classes arrive with the registration and presence features.
    "not_registered": NotRegistered,
    "room_closed": RoomClosed,
    "lease_expired": LeaseExpired,
}

# Every union gets these: any operation may meet a bad token, a missing id or bad input.
COMMON: tuple[type[Refusal], ...] = (Unauthorized, Forbidden, NotFound, InvalidRequest, Refused)


def refusal_for(exc: errors.HeadcountError, allowed: tuple[type[Refusal], ...]) -> Refusal:
    """The typed refusal for `exc`; `Refused` (same code) when the union lacks its type."""
    cls = BY_CODE.get(exc.code, Refused)
    if cls not in allowed:
        cls = Refused
    names = {f.name for f in dataclasses.fields(cls)}
    extra: dict[str, Any] = {k: v for k, v in exc.extra.items() if k in names}
    if "status" in extra:
        extra["status"] = str(extra["status"])
    return cls(code=exc.code, title=exc.title, detail=exc.detail, **extra)


def from_validation(exc: ValidationError) -> errors.HeadcountError:
    """Input the service models reject gets the code REST gives it (quantity has its own)."""
    problems = exc.errors()
    first: Mapping[str, Any] = problems[0] if problems else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid input"
    for problem in problems:
        if any(str(part).startswith("quantity") for part in problem.get("loc", ())):
            return errors.InvalidQuantity(detail)
    return errors.InvalidRequest(detail)


async def attempt(
    work: Callable[[], Awaitable[T]], allowed: tuple[type[Refusal], ...]
) -> T | Refusal:
    """Run a service call, turning refusals into typed results.

    Outages (503) and rate limits are not answers about the resource, so they stay GraphQL
    errors, carrying the same `code` in `extensions`, and the client retries as with REST.
    """
    try:
        return await work()
    except ValidationError as exc:
        return refusal_for(from_validation(exc), allowed)
    except errors.HeadcountError as exc:
        if exc.status >= 500 or exc.status == 429:
            raise GraphQLError(exc.detail, extensions={"code": exc.code}) from exc
        return refusal_for(exc, allowed)


ALL_TYPES: tuple[type[Refusal], ...] = (*dict.fromkeys(BY_CODE.values()), Refused)
