"""GraphQL at /graphql: the same service layer and JWT auth as REST, refusals as typed results."""

from __future__ import annotations

from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from headcount.api.graphql.context import Context, get_context
from headcount.api.graphql.schema import schema

PATH = "/graphql"


def install(app: FastAPI) -> None:
    router: GraphQLRouter[Context, None] = GraphQLRouter(
        schema,
        context_getter=get_context,
        # No subscriptions: live updates reach pages through the REST/WebSocket channels.
        subscription_protocols=(),
    )
    app.include_router(router, prefix=PATH, include_in_schema=False)
