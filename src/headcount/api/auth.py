"""Bearer-token dependencies for routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from headcount import origin
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Principal
from headcount.runtime import Runtime
from headcount.tokens import verify

_bearer = HTTPBearer(
    auto_error=False, description="JWT issued by the platform (claims: sub, role, exp)"
)


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a worker
# thread, and three thread hops per request showed in the order path's profile.
async def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    rt: Runtime = request.app.state.runtime
    who = verify(credentials.credentials, rt.settings)
    # What this request records in the change log is attributed to the caller.
    origin.set_actor(who.sub, who.role.value)
    return who


async def principal(who: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if who is None:
        raise Unauthorized("send Authorization: Bearer <jwt>")
    return who


RuntimeDep = Annotated[Runtime, Depends(runtime)]
PrincipalDep = Annotated[Principal, Depends(principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
