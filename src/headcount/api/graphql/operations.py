"""How an operation is declared: a method whose signature is the GraphQL field.

Its arguments are the field's arguments, its return annotation what the field answers
(views stand for their generated types; a union from `result_union` also says which
refusals it may give), and its docstring the field's description. Two ways to fill it in:

* `field`: the method's body is the resolver (it also gets `info`).
* `read`, `mine`, `change`, `drafted`, `from_input`: the method is only a declaration, and
  the decorator names the service call that answers it. The first argument is the id of the
  thing the call is about. `change` adds the optional `idempotencyKey` every change takes,
  and the fields of the service's input model (`draft=`, e.g. `partySize`) as arguments;
  `drafted` builds that model from the arguments the declaration spells out; `from_input`
  from an input object whose `target` field holds the id instead.

Resolvers return the service's views as they are: the GraphQL types are generated from the
views (`generate.py`) and recognise them, so nothing is copied or converted. Refusals the
call raises become typed members of the result union (`refusals.py`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, get_type_hints

import strawberry
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from headcount.api.graphql.generate import graphql_name, graphql_type, graphql_words
from headcount.api.graphql.refusals import attempt, result_union
from headcount.domain.errors import InvalidRequest
from headcount.domain.identity import Principal
from headcount.runtime import Runtime

Declaration = Callable[..., Any]
Public = Callable[[Runtime, str], Awaitable[Any]]
Callers = Callable[..., Awaitable[Any]]  # (runtime, principal, target id, **arguments)
Wrap = Callable[[Any], Any]


class Keyed(Protocol):
    """A change of one thing that `idempotencyKey` (REST: `Idempotency-Key`) makes safe."""

    def __call__(
        self, rt: Runtime, principal: Principal, target: str, /, *, idempotency_key: str | None
    ) -> Awaitable[Any]: ...


class Drafted(Protocol):
    """A keyed change that also takes the service's input model (e.g. `RegistrationDraft`)."""

    def __call__(
        self,
        rt: Runtime,
        principal: Principal,
        target: str,
        draft: Any,
        /,
        *,
        idempotency_key: str | None,
    ) -> Awaitable[Any]: ...


MAX_KEY_LENGTH = 200
_INFO = inspect.Parameter(
    "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
)
_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_KEY = inspect.Parameter(
    "idempotency_key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None
)


def checked_key(value: str | None) -> str | None:
    """Same bound as REST's Idempotency-Key header, so a key works in either API."""
    if value is not None and not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidRequest(f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters")
    return value


def field(
    *, mutation: bool = False, deprecation_reason: str | None = None
) -> Callable[[Declaration], Any]:
    """Declare an async resolver (method or function); see the module docstring."""

    def declare(resolver: Declaration) -> Any:
        answers = graphql_type(get_type_hints(resolver, include_extras=True)["return"])

        @functools.wraps(resolver)
        async def run(*args: Any, **kwargs: Any) -> Any:
            return await attempt(lambda: resolver(*args, **kwargs), answers)

        make = strawberry.mutation if mutation else strawberry.field
        return make(
            resolver=run,
            graphql_type=answers,
            description=graphql_words(resolver.__doc__),
            deprecation_reason=deprecation_reason,
        )

    return declare


def by_id(call: Public, view: type[BaseModel]) -> Any:
    """`<view>(id)`: anyone's read of one thing, answering it or a common refusal (its union
    is `<View>Result`), e.g. `booth(id: ID!): BoothResult!`."""
    result = result_union(f"{graphql_name(view)}Result", view)

    def declaration(self: Any, id: strawberry.ID) -> Any: ...

    declaration.__annotations__["return"] = result
    return read(call)(declaration)


def read(call: Public, *, wrap: Wrap | None = None) -> Callable[[Declaration], Any]:
    """A read of one thing by its id, open to anyone (e.g. `booth(id)`)."""

    async def answer(info: strawberry.Info, target: str, _: dict[str, Any]) -> Any:
        return await call(info.context.runtime, target)

    return _answered_by(answer, wrap=wrap)


def mine(
    call: Callers,
    *,
    wrap: Wrap | None = None,
    mutation: bool = False,
    extra: Sequence[inspect.Parameter] = (),
) -> Callable[[Declaration], Any]:
    """The caller's read (or, as a mutation, change) of one thing (e.g. `myRsvp(sessionId)`),
    or of no one thing when the declaration takes no argument (e.g. `allChanges`). The
    declaration's other arguments, and `extra` ones shared by several fields (e.g. a feed's
    `PAGE`), go to the call by name."""

    async def answer(info: strawberry.Info, target: str | None, args: dict[str, Any]) -> Any:
        about = () if target is None else (target,)
        return await call(info.context.runtime, info.context.principal(), *about, **args)

    return _answered_by(answer, wrap=wrap, mutation=mutation, extra=list(extra))


def page(default_limit: int) -> list[inspect.Parameter]:
    """The arguments of a page of a feed, declared once for every field that reads one:
    `after` (a cursor), `limit`, and the change `types` to keep."""
    return [
        inspect.Parameter("after", _KEYWORD, default=None, annotation=str | None),
        inspect.Parameter("limit", _KEYWORD, default=default_limit, annotation=int),
        inspect.Parameter("types", _KEYWORD, default=None, annotation=list[str] | None),
    ]


def change(
    call: Keyed | Drafted, *, draft: type[BaseModel] | None = None, wrap: Wrap | None = None
) -> Callable[[Declaration], Any]:
    """The caller's change of one thing, retried safely with `idempotencyKey`."""

    async def answer(info: strawberry.Info, target: str, args: dict[str, Any]) -> Any:
        who = info.context.principal()  # who is asking is settled before what is asked
        key = checked_key(args.pop("idempotency_key"))
        inputs = (draft.model_validate(args),) if draft else ()
        return await call(info.context.runtime, who, target, *inputs, idempotency_key=key)

    fields = draft.model_fields if draft else {}
    arguments = [_argument(name, model_field) for name, model_field in fields.items()]
    return _answered_by(answer, wrap=wrap, mutation=True, extra=[*arguments, _KEY])


def drafted(call: Callers, *, draft: type[BaseModel]) -> Callable[[Declaration], Any]:
    """The caller's change of one thing whose declared arguments after its id are the fields
    of the service's input model (`draft`), with the GraphQL types the declaration gives
    them (e.g. `ID`). No `idempotencyKey`: for changes an id of their own makes safe."""

    async def answer(info: strawberry.Info, target: str, args: dict[str, Any]) -> Any:
        who = info.context.principal()  # who is asking is settled before what is asked
        return await call(info.context.runtime, who, target, draft.model_validate(args))

    return _answered_by(answer, wrap=None, mutation=True)


def from_input(
    call: Drafted, draft: type[BaseModel], *, target: str
) -> Callable[[Declaration], Any]:
    """The caller's change, retried safely with `idempotencyKey`, whose one declared
    argument is an input object: its `target` field names the thing changed, its other
    fields are the service's input model (e.g. `createOrganizerHold(input)`)."""

    async def answer(info: strawberry.Info, given: object, args: dict[str, Any]) -> Any:
        who = info.context.principal()  # who is asking is settled before what is asked
        fields = vars(given)
        model = draft.model_validate({k: v for k, v in fields.items() if k != target})
        key = checked_key(args.pop("idempotency_key"))
        return await call(info.context.runtime, who, fields[target], model, idempotency_key=key)

    return _answered_by(answer, wrap=None, mutation=True, extra=[_KEY])


def by_parent(answers: Any, call: Public, description: str | None = None) -> Any:
    """A field of a type read by its parent's id (e.g. `Event.ticketTypes`)."""

    async def resolve(self: Any, info: strawberry.Info) -> Any:
        return await call(info.context.runtime, self.id)

    return strawberry.field(
        resolver=resolve, graphql_type=graphql_type(answers), description=description
    )


def _argument(name: str, model_field: FieldInfo) -> inspect.Parameter:
    """A GraphQL argument for a field of a service's input model, with its type and default."""
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=model_field.get_default(call_default_factory=True),
        annotation=model_field.annotation,
    )


def _answered_by(
    answer: Callable[[strawberry.Info, Any, dict[str, Any]], Awaitable[Any]],
    *,
    wrap: Wrap | None,
    mutation: bool = False,
    extra: list[inspect.Parameter] | None = None,
) -> Callable[[Declaration], Any]:
    """The declaration's field (with `extra` arguments), resolved by `answer(info, first
    argument or None without one, the others)`."""

    def declare(declaration: Declaration) -> Any:
        signature = inspect.signature(declaration)
        own, *declared = signature.parameters.values()
        target = declared[0].name if declared else None

        @functools.wraps(declaration)
        async def resolve(self: Any, info: strawberry.Info, **args: Any) -> Any:
            found = await answer(info, args.pop(target) if target else None, args)
            return wrap(found) if wrap else found

        resolve.__dict__["__signature__"] = signature.replace(
            parameters=[own, _INFO, *declared, *(extra or [])]
        )
        return field(mutation=mutation)(resolve)

    return declare
