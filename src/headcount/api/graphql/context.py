"""Per-request GraphQL context: the runtime and the caller, verified exactly as REST does.

The token is verified lazily, so a public query (an event's capacity) works without one,
while a bad token still refuses anything that needs to know who is asking.
"""

from __future__ import annotations

from starlette.requests import Request
from strawberry.fastapi import BaseContext

from headcount import origin
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Principal
from headcount.runtime import Runtime
from headcount.tokens import verify


class Context(BaseContext):
    def __init__(self, runtime: Runtime, authorization: str | None) -> None:
        super().__init__()
        self.runtime = runtime
        self._authorization = authorization
        self._principal: Principal | None = None

    def optional_principal(self) -> Principal | None:
        """None without a header; raises Unauthorized for a header that does not verify.

        Sets the caller as the origin of what the resolver records, each time: resolvers
        of one query may run in tasks of their own, each with its own copy of the origin.
        """
        if self._principal is None and self._authorization:
            scheme, _, token = self._authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("send Authorization: Bearer <jwt>")
            self._principal = verify(token.strip(), self.runtime.settings)
        if self._principal is not None:
            origin.set_actor(self._principal.sub, self._principal.role.value)
        return self._principal

    def principal(self) -> Principal:
        who = self.optional_principal()
        if who is None:
            raise Unauthorized("send Authorization: Bearer <jwt>")
        return who


async def get_context(request: Request) -> Context:
    runtime: Runtime = request.app.state.runtime
    return Context(runtime, request.headers.get("authorization"))
