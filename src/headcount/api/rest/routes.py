"""Routes declared once for every resource that has them, instead of written out per router.

A resource organizers manage has the same four routes whatever it is: create (201) and
list under its parent, read and change on its own path, with the same refusals and names
(`create_area`, `list_areas`, `get_area`, `update_area`). `crud_routes` declares them for
one resource from its paths, view, input models and service calls; the event resources
(`event_resource`) and every registered kind of place (`api/rest/presence.py`) go
through it, so their routes cannot drift apart from one resource to the next.

A generated route's signature is a list of parameters (`RT`, `WHO`, `KEY`, `path_id`,
`body`) that FastAPI reads the request into; its function takes them as keywords. It gets
the name (OpenAPI `operationId` and summary) and description a hand-written function of
that name and docstring would have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from inspect import Parameter, Signature, cleandoc
from types import GenericAlias, ModuleType
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import IdempotencyKey, id_path, problems
from headcount.domain.identity import Principal
from headcount.runtime import Runtime

RT = Parameter("rt", Parameter.KEYWORD_ONLY, annotation=RuntimeDep)
WHO = Parameter("who", Parameter.KEYWORD_ONLY, annotation=PrincipalDep)
KEY = Parameter("key", Parameter.KEYWORD_ONLY, annotation=IdempotencyKey, default=None)
EVENT = "/events/{event_id}"

Endpoint = Callable[..., Awaitable[Any]]


def path_id(path: str, noun: str) -> Parameter:
    """The path parameter naming one thing: `booth_id` in `/booths/{booth_id}`."""
    name = path.rsplit("{", 1)[1].rstrip("}")
    return Parameter(name, Parameter.KEYWORD_ONLY, annotation=Annotated[str, id_path(noun)])


def body(model: type[Any]) -> Parameter:
    return Parameter("body", Parameter.KEYWORD_ONLY, annotation=model)


def add_route(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Endpoint,
    *,
    params: list[Parameter],
    answer: Any,
    name: str,
    refusals: Sequence[int],
    status_code: int = 200,
    doc: str = "",
    tags: list[str | Enum] | None = None,
    other: Mapping[int | str, dict[str, Any]] | None = None,
) -> None:
    """Register `endpoint` with `params` as the signature FastAPI reads the request into.
    `other`: answers besides `status_code` and the refusals (OpenAPI response objects)."""
    endpoint.__dict__["__signature__"] = Signature(params)
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=name,
        response_model=answer,
        status_code=status_code,
        responses={**problems(*refusals), **(other or {})},
        tags=tags,
        description=cleandoc(doc),
    )


def crud_routes(
    router: APIRouter,
    kind: str,
    view: type[Any],
    *,
    parent: tuple[str, str],
    collection: str,
    path: str,
    noun: str,
    draft: type[Any],
    patch: type[Any],
    create: Endpoint,
    list_all: Endpoint,
    get: Endpoint,
    update: Endpoint,
    docs: Mapping[str, str] | None = None,
    update_refusals: Sequence[int] = (401, 403, 404),
    tags: list[str | Enum] | None = None,
) -> None:
    """`POST` and `GET <parent path>/<collection>`, `GET` and `PATCH <path>`.

    `parent` is the owner's (path, noun); the calls take (runtime, [caller,] the owner's or
    the resource's id, [body]); `docs` describes routes by verb (`create`, `update`, …).
    """
    words = docs or {}
    under, one = path_id(parent[0], parent[1]), path_id(path, noun)
    many = f"{parent[0]}/{collection}"

    async def created(*, rt: Runtime, who: Principal, body: Any, **ids: str) -> Any:
        return await create(rt, who, ids[under.name], body)

    async def listed(*, rt: Runtime, **ids: str) -> Any:
        return await list_all(rt, ids[under.name])

    async def got(*, rt: Runtime, **ids: str) -> Any:
        return await get(rt, ids[one.name])

    async def updated(*, rt: Runtime, who: Principal, body: Any, **ids: str) -> Any:
        return await update(rt, who, ids[one.name], body)

    routes: list[tuple[str, str, Endpoint, list[Parameter], Any, Sequence[int]]] = [
        ("create", many, created, [RT, WHO, under, body(draft)], view, (401, 403, 404)),
        ("list", many, listed, [RT, under], GenericAlias(list, (view,)), (404,)),
        ("get", path, got, [RT, one], view, (404,)),
        ("update", path, updated, [RT, WHO, one, body(patch)], view, update_refusals),
    ]
    for verb, where, endpoint, params, answer, refusals in routes:
        add_route(
            router,
            _METHODS[verb],
            where,
            endpoint,
            params=params,
            answer=answer,
            name=f"list_{kind}s" if verb == "list" else f"{verb}_{kind}",
            refusals=refusals,
            status_code=201 if verb == "create" else 200,
            doc=words.get(verb, ""),
            tags=tags,
        )


_METHODS = {"create": "POST", "list": "GET", "get": "GET", "update": "PATCH"}


def event_resource(
    router: APIRouter,
    noun: str,
    service: ModuleType,
    *,
    docs: Mapping[str, str] | None = None,
    update_refusals: Sequence[int] = (401, 403, 404),
) -> None:
    """`crud_routes` of a resource an event owns, answered by the service module's
    `create_<noun>`, `list_<noun>s`, `get_<noun>` and `update_<noun>`: their `draft` and
    `patch` parameters are the input models and what they return the view, so the routes
    take and answer exactly what the service does."""
    kind = noun.replace(" ", "_")
    collection = noun.replace(" ", "-") + "s"
    create, update = getattr(service, f"create_{kind}"), getattr(service, f"update_{kind}")
    created, patched = get_type_hints(create), get_type_hints(update)
    crud_routes(
        router,
        kind,
        created["return"],
        parent=(EVENT, "event"),
        collection=collection,
        path=f"/{collection}/{{{kind}_id}}",
        noun=noun,
        draft=created["draft"],
        patch=patched["patch"],
        create=create,
        list_all=getattr(service, f"list_{kind}s"),
        get=getattr(service, f"get_{kind}"),
        update=update,
        docs=docs,
        update_refusals=update_refusals,
    )
