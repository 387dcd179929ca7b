"""Places and live presence over REST: stream viewers, booths, breakout rooms, huddles.

For clients that cannot hold a WebSocket: a join returns a lease; renew it with
`POST /leases/{id}/heartbeat` well within `ttl_seconds`; `DELETE /leases/{id}` leaves.
A lease that runs out unrenewed keeps its place for the holder `grace_seconds` longer:
joining again meanwhile gives it back (`place: "resumed"`), even when the space is full.

Each kind's routes come from its registry entry (`capacity/spaces.py`), so a new kind
gets them without a line here: an entry organizers manage gets create and list under its
parent and read and change on its own path; a live entry gets its join route, and its
organizer's list of who is in and its close route where it has them. Only what no entry
describes is written out below: leases, and huddle membership (durable, in the ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import Parameter
from math import ceil
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import id_path, problems
from headcount.api.rest.routes import KEY, RT, WHO, Endpoint, add_route, crud_routes, path_id
from headcount.capacity import huddles, live, live_queue, places
from headcount.capacity.spaces import SPACES, Managed, Space
from headcount.capacity.views import HuddleMembershipView, LeaseView, PlaceInLine
from headcount.domain.identity import Principal
from headcount.runtime import Runtime


def router() -> APIRouter:
    """The routes of every registered kind, then the fixed ones; built per app."""
    api = APIRouter()
    for space in SPACES.values():
        if space.managed is not None:
            _managed_routes(api, space, space.managed)
        if space.live:
            _live_routes(api, space)
    api.include_router(fixed)
    return api


# --- routes built from a registry entry -------------------------------------------------

QUEUE = Parameter(
    "queue",
    Parameter.KEYWORD_ONLY,
    annotation=Annotated[
        bool, Query(description="wait in line when full: 202 with your place, not 409")
    ],
    default=False,
)


class Verb(NamedTuple):
    """What one generated route is, apart from its path, parameters and answer."""

    method: str
    status_code: int
    problems: tuple[int, ...]  # the problem responses it documents (400, 422 always)
    name: str  # names the OpenAPI operation; filled from the entry
    doc: str = ""


UPDATE_DOC = "Only the fields sent change; a lower limit turns nobody out, it stops newcomers."
VERBS = {
    "join": Verb(
        "POST",
        201,
        (401, 404, 409, 503),
        "join_{kind}",
        "Take a place: a lease, or 409 {refusals}. The caller's own place is theirs "
        "whether the {noun} is full or not: another connection of theirs shares it, and "
        "a place kept in grace after a lost connection is given back. With `?queue=1` a "
        "full {noun} answers 202 with the caller's place in line instead of 409: ask "
        "again after `Retry-After` seconds to keep it; the ask that finds a place free "
        "at the head of the line gets the lease (docs/waiting-room.md).",
    ),
    "leave_line": Verb(
        "DELETE",
        204,
        (401, 404, 503),
        "leave_{kind}_line",
        "Give up your place in the {noun}'s line (`?queue=1`); nothing if you had none.",
    ),
    "holders": Verb(
        "GET",
        200,
        (401, 403, 404, 503),
        "list_{holders}",
        "Who is in the {noun} now: for the event's organizer.",
    ),
    "close": Verb(
        "POST",
        200,
        (401, 403, 404, 503),
        "close_{kind}",
        "Close the {noun} and release everyone in it.",
    ),
}


def _route(
    api: APIRouter,
    space: Space[Any],
    verb: str,
    *,
    path: str,
    params: list[Parameter],
    answer: Any,
    other: dict[int | str, dict[str, Any]] | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Register the decorated function with `params` as the signature FastAPI reads the
    request into (the function takes them as keywords)."""
    spec = VERBS[verb]
    refusals = " / ".join(f"`{r.error.code}`" for r in (space.refusal, space.closed) if r)
    words = {"kind": space.kind, "noun": space.noun, "holders": space.holders, "refusals": refusals}

    def register(call: Endpoint) -> Endpoint:
        add_route(
            api,
            spec.method,
            path,
            call,
            params=params,
            answer=answer,
            name=spec.name.format(**words),
            refusals=spec.problems,
            status_code=spec.status_code,
            doc=spec.doc.format(**words),
            tags=[space.tag],
            other=other,
        )
        return call

    return register


def _managed_routes(api: APIRouter, space: Space[Any], managed: Managed) -> None:
    crud_routes(
        api,
        space.kind,
        space.view,
        parent=(managed.parent.path, managed.parent.noun),
        collection=managed.collection,
        path=space.path,
        noun=space.noun,
        draft=managed.draft,
        patch=managed.patch,
        create=lambda rt, who, parent_id, body: places.create(rt, who, space, parent_id, body),
        list_all=lambda rt, parent_id: places.listed(rt, space, parent_id),
        get=lambda rt, space_id: places.get(rt, space, space_id),
        update=lambda rt, who, space_id, body: places.update(rt, who, space, space_id, body),
        docs={"update": UPDATE_DOC},
        tags=[space.tag],
    )


def _live_routes(api: APIRouter, space: Space[Any]) -> None:
    one, path = path_id(space.path, space.noun), space.path
    leases = list[LeaseView]

    @_route(
        api,
        space,
        "join",
        path=f"{path}/{space.join}",
        params=[RT, WHO, one, KEY, QUEUE],
        answer=LeaseView,
        other={202: {"model": PlaceInLine, "description": "Full: your place in line"}},
    )
    async def join(
        rt: Runtime, who: Principal, key: str | None, queue: bool, **ids: str
    ) -> LeaseView | Response:
        if not queue:
            return await live.join(rt, who, space, ids[one.name], idempotency_key=key)
        found = await live_queue.ask_in_line(rt, who, space, ids[one.name], idempotency_key=key)
        if isinstance(found, LeaseView):
            return found
        return JSONResponse(
            found.model_dump(mode="json"),
            status_code=202,
            headers={"Retry-After": str(ceil(found.retry_after_seconds))},
        )

    line = f"{path}/{space.join}/line"

    @_route(api, space, "leave_line", path=line, params=[RT, WHO, one], answer=None)
    async def leave_line(rt: Runtime, who: Principal, **ids: str) -> Response:
        await live_queue.leave_line(rt, who, space, ids[one.name])
        return Response(status_code=204)

    if space.holders is not None:

        @_route(
            api,
            space,
            "holders",
            path=f"{path}/{space.holders}",
            params=[RT, WHO, one],
            answer=leases,
        )
        async def holders(rt: Runtime, who: Principal, **ids: str) -> list[LeaseView]:
            return await live.holders(rt, who, space, ids[one.name])

    if space.closed is not None:

        @_route(api, space, "close", path=f"{path}/close", params=[RT, WHO, one], answer=space.view)
        async def close(rt: Runtime, who: Principal, **ids: str) -> Any:
            return await live.close(rt, who, space, ids[one.name])


# --- routes no registry entry describes -------------------------------------------------

fixed = APIRouter()
LeaseId = Annotated[str, id_path("lease")]
HuddleId = Annotated[str, id_path("huddle")]


@fixed.post("/leases/{lease_id}/heartbeat", tags=["leases"], responses=problems(401, 404, 410, 503))
async def heartbeat(rt: RuntimeDep, who: PrincipalDep, lease_id: LeaseId) -> LeaseView:
    """Renew your lease; 410 `lease_expired` means it ran out: join again."""
    return await live.heartbeat(rt, who, lease_id)


@fixed.delete(
    "/leases/{lease_id}", status_code=204, tags=["leases"], responses=problems(401, 404, 503)
)
async def leave(rt: RuntimeDep, who: PrincipalDep, lease_id: LeaseId) -> Response:
    """Leave now: the place is free at once, with no grace (a lease that already ran out
    gives up the place still held for it)."""
    await live.release(rt, who, lease_id)
    return Response(status_code=204)


@fixed.post("/huddles/{huddle_id}/join", tags=["huddles"], responses=problems(401, 404, 409))
async def join_huddle(
    rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId
) -> HuddleMembershipView:
    """`{joined: true}`, or 409 `huddle_full` with `huddle_full: true`."""
    return await huddles.join_huddle(rt, who, huddle_id)


@fixed.post("/huddles/{huddle_id}/leave", tags=["huddles"], responses=problems(401, 404))
async def leave_huddle(
    rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId
) -> HuddleMembershipView:
    return await huddles.leave_huddle(rt, who, huddle_id)


@fixed.get("/huddles/{huddle_id}/members", tags=["huddles"], responses=problems(401, 403, 404))
async def list_members(rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId) -> list[str]:
    return await huddles.list_members(rt, who, huddle_id)
