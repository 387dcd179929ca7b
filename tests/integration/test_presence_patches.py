"""PATCH with `null` on booths, breakout rooms and huddles: one rule, declared on the models.

A nullable field is cleared (a booth's cap removed, a text emptied); `null` for any other
field is a 422 that changes nothing, where breakout rooms and huddles used to drop it
silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from headcount.api.app import create_app
from headcount.capacity import events, places, sessions, spaces
from headcount.capacity.events import EventDraft
from headcount.capacity.sessions import SessionDraft
from headcount.runtime import Runtime
from support.auth import bearer, organizer

ORG = organizer("org-patches")
CLEARED = object()  # "the field is refused": the row keeps what it had


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime=runtime)),
        base_url="http://headcount.test/api/v1",
        headers=bearer(ORG.sub, ORG.role),
    ) as client:
        yield client


async def make_places(rt: Runtime) -> dict[str, str]:
    """One booth, room and huddle with every field set; their REST paths by kind."""
    event = await events.create_event(rt, ORG, EventDraft(name="Patches"))
    session = await sessions.create_session(
        rt, ORG, event.id, SessionDraft(title="S", max_participants=10)
    )
    booth = await places.create(
        rt,
        ORG,
        spaces.BOOTH,
        event.id,
        spaces.BoothDraft(name="B", description="about", tier="gold", max_visitors=5),
    )
    room = await places.create(
        rt, ORG, spaces.BREAKOUT_ROOM, session.id, spaces.BreakoutRoomDraft(name="R", capacity=4)
    )
    huddle = await places.create(
        rt, ORG, spaces.HUDDLE, event.id, spaces.HuddleDraft(name="H", topic="rust", capacity=3)
    )
    return {
        "booth": f"/booths/{booth.id}",
        "room": f"/breakout-rooms/{room.id}",
        "huddle": f"/huddles/{huddle.id}",
    }


@pytest.mark.parametrize(
    ("kind", "field", "after"),
    [
        ("booth", "max_visitors", None),  # the cap is removed
        ("booth", "description", ""),
        ("booth", "name", CLEARED),
        ("booth", "tier", CLEARED),
        ("booth", "chat_enabled", CLEARED),
        ("booth", "video_enabled", CLEARED),
        ("room", "name", CLEARED),
        ("room", "capacity", CLEARED),
        ("huddle", "topic", ""),
        ("huddle", "name", CLEARED),
        ("huddle", "capacity", CLEARED),
    ],
)
async def test_null_clears_a_nullable_field_and_is_refused_for_any_other(
    runtime: Runtime, http: httpx.AsyncClient, kind: str, field: str, after: Any
) -> None:
    path = (await make_places(runtime))[kind]
    before = (await http.get(path)).json()
    answer = await http.patch(path, json={field: None})
    if after is CLEARED:
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_request"
        assert field in answer.json()["detail"]
        assert (await http.get(path)).json() == before  # nothing changed
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()[field] == after
        assert (await http.get(path)).json()[field] == after


@pytest.mark.parametrize(
    ("patch", "nullable"),
    [
        (spaces.BoothPatch, {"description", "max_visitors"}),
        (spaces.BreakoutRoomPatch, set()),
        (spaces.HuddlePatch, {"topic"}),
    ],
)
def test_the_models_declare_what_may_be_null(patch: type[Any], nullable: set[str]) -> None:
    for field in patch.model_fields:
        if field in nullable:
            assert patch.model_validate({field: None}).model_fields_set == {field}
        else:
            with pytest.raises(ValidationError, match=f"{field} cannot be null"):
                patch.model_validate({field: None})
