"""Refusals as typed GraphQL results, one type per error of `domain/errors.py`.

Each type is built from its error: `code`, `title` and `detail` (the very strings REST
sends) and the extension members the error declares. An operation returns a union of its
success type and the refusals it can give, so a client branches on `__typename` or `code`
exactly as a REST client branches on the problem body's `code`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError

from headcount.api.graphql.generate import field_type, graphql_type, graphql_words
from headcount.domain import errors

T = TypeVar("T")


@strawberry.interface(description="A request understood and deliberately not carried out.")
class Refusal:
    code: str = strawberry.field(description="Stable machine-readable code, same as REST.")
    title: str
    detail: str = strawberry.field(description="Human-readable explanation; show it as is.")


@strawberry.type(description="A refusal with no dedicated type yet; branch on `code`.")
class Refused(Refusal):
    pass


def _retry_later(error: type[errors.HeadcountError]) -> bool:
    """Rate limits and outages (429, 5xx) say nothing about the resource: they stay GraphQL
    errors, with the same `code` in `extensions`, and the client retries as with REST."""
    return error.status >= 500 or error.status == 429


def _answers_in_graphql(error: type[errors.HeadcountError]) -> bool:
    """Refusals about what was asked get a type; an unreadable or oversized body (400, 413)
    is answered by the HTTP layer before any resolver runs."""
    return not _retry_later(error) and error.status not in (400, 413)


def _refusal_type(error: type[errors.HeadcountError]) -> type[Refusal]:
    members = {name: field_type(name, hint) for name, hint in errors.members_of(error).items()}
    shell = type(error.__name__, (Refusal,), {"__annotations__": members})
    made: type[Refusal] = strawberry.type(shell, description=graphql_words(error.__doc__))
    return made


TYPES: dict[type[errors.HeadcountError], type[Refusal]] = {
    error: _refusal_type(error)
    for error in vars(errors).values()
    if isinstance(error, type)
    and issubclass(error, errors.HeadcountError)
    and error is not errors.HeadcountError
    and _answers_in_graphql(error)
}
ALL_TYPES: tuple[type[Refusal], ...] = (*TYPES.values(), Refused)

# Every union gets these: any operation may meet a bad token, a missing id or bad input.
COMMON = (errors.NotFound, errors.Unauthorized, errors.Forbidden, errors.InvalidRequest)


def result_union(name: str, success: Any, *refusals: type[errors.HeadcountError]) -> Any:
    """The union `name` of `success` (a view, or another model), the given refusals, the
    common ones and `Refused`. Bind it to a module constant annotated `Any`
    (`RsvpResult: Any = result_union(...)`) so declarations can name it as their return type."""
    kinds = dict.fromkeys((*refusals, *COMMON))
    members = (graphql_type(success), *(TYPES[kind] for kind in kinds), Refused)
    return Annotated[Union[members], strawberry.union(name)]  # noqa: UP007 (built from a tuple)


def refusals_in(result: Any) -> frozenset[type]:
    """The refusal types a union made by `result_union` may hold; empty for any other type."""
    if get_origin(result) is not Annotated:
        return frozenset()
    return frozenset(get_args(get_args(result)[0])) & frozenset(ALL_TYPES)


def refusal_for(exc: errors.HeadcountError, allowed: frozenset[type]) -> Refusal:
    """The typed refusal for `exc`; `Refused` (same code) when the union lacks its type."""
    kind = TYPES.get(type(exc))
    if kind is None or kind not in allowed:
        return Refused(code=exc.code, title=exc.title, detail=exc.detail)
    members = {name: getattr(exc, name) for name in errors.members_of(type(exc))}
    return kind(code=exc.code, title=exc.title, detail=exc.detail, **members)


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


async def attempt(work: Callable[[], Awaitable[T]], result: Any) -> T | Refusal:
    """Run a service call; its refusals become typed members of `result`, when a union."""
    allowed = refusals_in(result)
    if not allowed:
        return await work()
    try:
        return await work()
    except ValidationError as exc:
        return refusal_for(from_validation(exc), allowed)
    except errors.HeadcountError as exc:
        if _retry_later(type(exc)):
            raise GraphQLError(exc.detail, extensions={"code": exc.code}) from exc
        return refusal_for(exc, allowed)
