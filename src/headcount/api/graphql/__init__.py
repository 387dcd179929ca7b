"""GraphQL at /graphql: the same service layer and JWT auth as REST, refusals as typed results."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from headcount.api.graphql.context import Context, get_context
from headcount.api.graphql.schema import schema
from headcount.api.problems import problem

PATH = "/graphql"

_CODES = {
    400: ("malformed_request", "The request body could not be parsed"),
    405: ("method_not_allowed", "Method not allowed"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


class _Router(GraphQLRouter[Context, None]):
    """Transport-level failures answer with the same problem+json body as REST.

    Strawberry answers them in plain text; a client (or a proxy's error page) should see
    one error format from the whole service.
    """

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            code, title = _CODES.get(exc.status_code, ("invalid_request", "Request refused"))
            return problem(exc.status_code, code, title, exc.reason, instance=PATH)


def install(app: FastAPI) -> None:
    router = _Router(
        schema,
        context_getter=get_context,
        # No subscriptions: live updates reach pages through the REST/WebSocket channels.
        subscription_protocols=(),
    )
    app.include_router(router, prefix=PATH, include_in_schema=False)
