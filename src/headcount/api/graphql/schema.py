"""The schema, with limits on query size so a hostile query costs little to refuse."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from headcount.api.graphql.allotments import OrganizerHoldMutation, OrganizerHoldQuery
from headcount.api.graphql.areas import AreaMutation, AreaQuery
from headcount.api.graphql.changes import ChangeQuery
from headcount.api.graphql.mutations import OrderMutation
from headcount.api.graphql.presence import PresenceMutation, PresenceQuery
from headcount.api.graphql.queries import EventQuery
from headcount.api.graphql.refusals import ALL_TYPES
from headcount.api.graphql.registrations import RegistrationMutation, RegistrationQuery
from headcount.api.graphql.sessions import SessionMutation, SessionQuery
from headcount.api.graphql.waiting_rooms import WaitingRoomMutation, WaitingRoomQuery
from headcount.api.graphql.waitlists import WaitlistMutation, WaitlistQuery
from headcount.domain.errors import HeadcountError

MAX_DEPTH = 10
MAX_TOKENS = 5_000
MAX_ALIASES = 30


def _should_mask(error: GraphQLError) -> bool:
    """Hide internals of unexpected failures; keep parse/validation and refusal messages."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | HeadcountError)


@strawberry.type(name="Query")
class Query(
    EventQuery,
    RegistrationQuery,
    SessionQuery,
    WaitlistQuery,
    PresenceQuery,
    ChangeQuery,
    OrganizerHoldQuery,
    WaitingRoomQuery,
    AreaQuery,
):
    pass


@strawberry.type(name="Mutation")
class Mutation(
    OrderMutation,
    RegistrationMutation,
    SessionMutation,
    WaitlistMutation,
    PresenceMutation,
    OrganizerHoldMutation,
    WaitingRoomMutation,
    AreaMutation,
):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        # Refusal types appear in unions only through some operations; list them all so
        # clients can rely on each existing (and on `Refused` as the catch-all).
        types=list(ALL_TYPES),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaskErrors(should_mask_error=_should_mask),
        ],
    )


schema = build_schema()
