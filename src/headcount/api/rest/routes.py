"""Routes declared once for every resource that has them, instead of written out per router.

A resource organizers manage has the same four routes whatever it is: create (201) and
list under its parent, read and change on its own path, with the same refusals and names
(`create_area`, `list_areas`, `get_area`, `update_area`). `crud_routes` declares them for
one resource from its paths, view, input models and service calls; the event resources
(`event_resource`) and every registered kind of place (`api/rest/presence.py`) go
through it, so their routes cannot drift apart from one resource to the next.

A route that only hands the request to one service call is a row (`Call`) of its router's
table for `call_routes`: the call's signature says the rest, as it does for `event_resource`.
Its `principal` is the caller (401 without one), its other plain parameters are the path's
ids in order (or by name, where the call takes that id as a keyword), its input model is the
body, `idempotency_key` the `Idempotency-Key` header, and what it returns the answer (none:
204). The routes that read more of the request (a query, a status they choose) stay written
out in their routers.

A generated route's signature is a list of parameters (`RT`, `WHO`, `KEY`, `path_id`,
`body`) that FastAPI reads the request into; its function takes them as keywords. It gets
the name (OpenAPI `operationId` and summary) and description a hand-written function of
that name and docstring would have.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from inspect import Parameter, Signature, cleandoc, isclass, signature
from types import GenericAlias, ModuleType, NoneType
from typing import Annotated, Any, NamedTuple, get_type_hints

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel

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


def body(model: type[Any], *, optional: bool = False) -> Parameter:
    """`optional`: a request without a body stands for the model's defaults."""
    if not optional:
        return Parameter("body", Parameter.KEYWORD_ONLY, annotation=model)
    return Parameter(
        "body", Parameter.KEYWORD_ONLY, annotation=Annotated[model | None, Body()], default=None
    )


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


class Call(NamedTuple):
    """One route answered by one service call: what the call's signature does not say."""

    route: str  # method and path, `POST /orders/{order_id}/confirm`
    call: Endpoint
    refusals: tuple[int, ...]  # the problem responses it documents (400, 422 always)
    name: str = ""  # the call's own name unless given
    created: bool = False  # 201, not 200
    body_optional: bool = False  # no body stands for the input model's defaults


def call_routes(
    router: APIRouter, calls: Sequence[Call], docs: Mapping[str, str] | None = None
) -> None:
    """Each row's route, taking and answering what its service call does (module docstring);
    `docs` describes routes by name."""
    for row in calls:
        method, path = row.route.split(" ", 1)
        endpoint, params, answer = _calling(row.call, path, body_optional=row.body_optional)
        name = row.name or row.call.__name__
        add_route(
            router,
            method,
            path,
            endpoint,
            params=params,
            answer=answer,
            name=name,
            refusals=row.refusals,
            status_code=201 if row.created else 204 if answer is None else 200,
            doc=(docs or {}).get(name, ""),
        )


def _calling(
    call: Endpoint, path: str, *, body_optional: bool
) -> tuple[Endpoint, list[Parameter], Any]:
    """The route's function, its parameters (in the order a hand-written one lists them:
    runtime, caller, the path's ids, body, key) and its answer (None: nothing, 204)."""
    hints = get_type_hints(call)
    taken = list(signature(call).parameters.values())[1:]  # after the runtime
    ids = [_id_named(name) for name in re.findall(r"{(\w+)}", path)]
    by_name = {p.name for p in taken if p.kind is Parameter.KEYWORD_ONLY} & {i.name for i in ids}
    in_order = iter(i.name for i in ids if i.name not in by_name)
    params, handed = [RT], []  # handed: the route's parameters the call takes positionally
    model: type[Any] | None = None
    for taking in (p for p in taken if p.kind is not Parameter.KEYWORD_ONLY):
        hint = hints[taking.name]
        if hint is Principal:
            params.append(WHO)
            handed.append(WHO.name)
        elif isclass(hint) and issubclass(hint, BaseModel):
            model = hint
            handed.append("body")
        else:
            handed.append(next(in_order, ""))
    if "" in handed or next(in_order, None) is not None:
        raise TypeError(f"{call.__name__} does not take the ids of {path} one for one")
    params += ids
    if model is not None:
        params.append(body(model, optional=body_optional))
    keyed = "idempotency_key" in hints
    if keyed:
        params.append(KEY)
    answer = None if hints["return"] is NoneType else hints["return"]

    async def endpoint(**given: Any) -> Any:
        if model is not None and body_optional and given["body"] is None:
            given["body"] = model()
        named = {name: given[name] for name in by_name}
        if keyed:
            named["idempotency_key"] = given[KEY.name]
        found = await call(given[RT.name], *(given[name] for name in handed), **named)
        return Response(status_code=204) if answer is None else found

    return endpoint, params, answer


def _id_named(name: str) -> Parameter:
    """The path parameter `hold_id`, described as a "hold id"."""
    return path_id(f"{{{name}}}", name.removesuffix("_id").replace("_", " "))
