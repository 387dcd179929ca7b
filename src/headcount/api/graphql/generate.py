"""GraphQL object types generated from pydantic models: the views are the one definition.

A view becomes a GraphQL type through Strawberry's pydantic integration: every field (and
computed field), its nullability and `description`, and the class docstring as the type's
description.
Nested views become their own types first. Resolvers return the views themselves; a
generated type recognises instances of its view, so no value is copied or converted.

Two rules are GraphQL's own, applied here and nowhere else:

* Headcount's identifiers (`id`, `*_id`, `*_ids`) are `ID`s. Subjects (who a token names:
  `organizer_id`, `owner_id`, `attendee_id`) stay `String`s: they are the identity
  provider's strings, not ids Headcount issued.
* Descriptions name fields as GraphQL spells them: `` `max_attendees` `` reads
  `` `maxAttendees` ``.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import strawberry
from pydantic import BaseModel
from strawberry.experimental.pydantic import type as pydantic_type
from strawberry.scalars import JSON
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

T = TypeVar("T")

SUBJECTS = frozenset({"organizer_id", "owner_id", "attendee_id"})
_SNAKE_IN_BACKTICKS = re.compile(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`")
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")


def is_identifier(name: str) -> bool:
    return name not in SUBJECTS and (name == "id" or name.endswith(("_id", "_ids")))


def graphql_words(text: str | None) -> str | None:
    """A description for GraphQL: a docstring's paragraphs unwrapped, fields in camelCase."""
    if not text:
        return None
    text = _LINE_BREAK.sub(" ", inspect.cleandoc(text))
    return _SNAKE_IN_BACKTICKS.sub(lambda m: f"`{to_camel_case(m[1])}`", text)


def graphql_type(annotation: Any) -> Any:
    """A Python annotation naming views, as the GraphQL types that show them.

    `list[TicketTypeView]` → `list[TicketType]`, `CapacitySnapshot | None` → its type or
    null; an untyped `dict` is the `JSON` scalar; anything else is Strawberry's to map.
    """
    return _map(annotation, _leaf)


def field_type(name: str, annotation: Any) -> Any:
    """The GraphQL type of a view field or refusal member called `name`."""
    found = graphql_type(annotation)
    return _map(found, lambda t: strawberry.ID if t is str else t) if is_identifier(name) else found


def type_of(model: type[BaseModel]) -> type:
    """The GraphQL type of `model`, generated (named for it without "View") on first use."""
    made: type | None = model.__dict__.get("_strawberry_type")
    if made is None:
        made = _generate(model, type(model.__name__.removesuffix("View"), (), {}), None)
    return made


def graphql_name(model: type[BaseModel]) -> str:
    return get_object_definition(type_of(model), strict=True).name


def object_type(model: type[BaseModel], *, name: str | None = None) -> Callable[[type[T]], type[T]]:
    """Generate `model`'s type from the decorated class: for resolver fields or a new name.

    The class adds to the view, never restates it; it must come before the view's first use
    (`type_of`), or the view would have two types.
    """

    def generate(cls: type[T]) -> type[T]:
        if "_strawberry_type" in model.__dict__:
            raise TypeError(f"{model.__name__} already has a GraphQL type; declare {cls} first")
        made: type[T] = _generate(model, cls, name)
        return made

    return generate


def _generate(model: type[BaseModel], cls: type, name: str | None) -> Any:
    own = dict(inspect.get_annotations(cls))
    # Every field's type computed here (nested views generated first), so the integration
    # sees explicit types and no field depends on which Python types it maps by itself.
    own.update({n: field_type(n, f.annotation) for n, f in model.model_fields.items()})
    own.update({n: field_type(n, f.return_type) for n, f in model.model_computed_fields.items()})
    cls.__annotations__ = own
    made = pydantic_type(
        model,
        all_fields=True,
        include_computed=True,  # REST serialises computed fields too
        name=name,
        description=graphql_words(model.__doc__),
    )(cls)
    definition = get_object_definition(made, strict=True)
    # The integration lists resolver fields first; the view's own fields read better first.
    definition.fields.sort(key=lambda field: field.base_resolver is not None)
    for field in definition.fields:
        field.description = graphql_words(field.description)
    return made


def _leaf(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return type_of(annotation)
    return JSON if annotation is dict else annotation


def _map(annotation: Any, leaf: Callable[[Any], Any]) -> Any:
    """`leaf` applied to every type inside `annotation` (lists, unions, optionals)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:  # already a GraphQL type (a union from `result_union`)
        return annotation
    if origin is dict:
        return leaf(dict)
    if not args:
        return leaf(annotation)
    mapped = tuple(_map(arg, leaf) for arg in args)
    if origin in (Union, types.UnionType):
        return Union[mapped]  # noqa: UP007 (built from a tuple)
    return origin[mapped]
