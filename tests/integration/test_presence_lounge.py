"""A new kind of live space is one registry entry: a lounge, added here and nowhere else.

The lounge's guests are capped by the event's `max_attendees` and refused with their own
code; the entry is registered for the test only (the fixture restores the registry), and
is then joined, refused, renewed, counted and left through the real service layer and
over REST, on both databases and both presence engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from operator import attrgetter
from typing import Any, ClassVar

import httpx
import pytest

from headcount.api.app import create_app
from headcount.capacity import events, live, spaces
from headcount.capacity.events import EventDraft, EventPatch, load_event
from headcount.capacity.live_snapshot import live_rows, live_sections
from headcount.capacity.spaces import VIEWERS, Refusal, Space, on_event
from headcount.capacity.views import View
from headcount.domain.errors import Forbidden, HeadcountError, LeaseExpired, NotFound
from headcount.domain.identity import Principal
from headcount.runtime import Runtime
from support.auth import attendee, bearer, organizer

ORG = organizer("org-lounge")


class LoungeView(View):
    limit: int | None
    guests: int | None
    available: int | None
    is_full: bool | None


def no_gatecrashers(principal: Principal, _event: Any) -> None:
    if principal.sub == "mallory":
        raise Forbidden("mallory is not on the guest list")


@pytest.fixture
def lounge(monkeypatch: pytest.MonkeyPatch) -> Space[LoungeView]:
    """The lounge entry, registered for one test (monkeypatch puts the registry back).

    Its refusal class is made here rather than at import, so it exists only once a lounge
    test has run: `domain/errors.py` stays the list of refusals every other test knows.
    """

    class LoungeFull(HeadcountError):
        code: ClassVar[str] = "lounge_full"
        status: ClassVar[int] = 409
        title: ClassVar[str] = "The lounge is full"

    entry = on_event(
        "lounge",
        LoungeView,
        limit=attrgetter("max_attendees"),
        count_field="guests",
        refusal=Refusal(LoungeFull, "the lounge is full ({count} of {limit})"),
        holders="lounge-guests",
        may_join=no_gatecrashers,
    )
    monkeypatch.setitem(spaces.SPACES, entry.kind, entry)
    return entry


async def lounge_event(rt: Runtime, guests: int) -> str:
    made = await events.create_event(rt, ORG, EventDraft(name="Lounge", max_attendees=guests))
    return made.id


async def live_counts(rt: Runtime, event_id: str) -> dict[str, dict[str, int | None]]:
    async with rt.db.transaction() as tx:
        rows = await live_rows(tx, await load_event(tx, event_id))
    return (await live_sections(rt, rows)).counts


async def test_a_lounge_is_joined_refused_renewed_counted_and_left(
    live_runtime: Runtime, lounge: Space[LoungeView]
) -> None:
    rt = live_runtime
    event_id = await lounge_event(rt, guests=2)
    ann = await live.join(rt, attendee("ann"), lounge, event_id)
    assert (ann.kind, ann.resource_id, ann.occupancy, ann.limit) == ("lounge", event_id, 1, 2)
    assert ann.lease_id.startswith(f"lounge.{event_id}.")
    await live.join(rt, attendee("bob"), lounge, event_id)
    with pytest.raises(HeadcountError) as refused:
        await live.join(rt, attendee("cid"), lounge, event_id)
    assert (refused.value.code, refused.value.status) == ("lounge_full", 409)
    assert refused.value.extra == {"limit": 2, "guests": 2}
    with pytest.raises(Forbidden):
        await live.join(rt, attendee("mallory"), lounge, event_id)

    renewed = await live.heartbeat(rt, attendee("ann"), ann.lease_id)
    assert (renewed.occupancy, renewed.limit) == (2, 2)
    counts = await live_counts(rt, event_id)
    assert counts["lounge"] == {event_id: 2}
    assert counts[VIEWERS.kind] == {event_id: 0}  # the stream of the same event is apart
    assert {x.holder for x in await live.holders(rt, ORG, lounge, event_id)} == {"ann", "bob"}

    # The limit is read fresh on every join: a raised cap admits at once.
    await events.update_event(rt, ORG, event_id, EventPatch(max_attendees=3))
    await live.join(rt, attendee("cid"), lounge, event_id)
    await live.release(rt, attendee("ann"), ann.lease_id)
    assert (await live_counts(rt, event_id))["lounge"] == {event_id: 2}
    with pytest.raises(LeaseExpired):
        await live.heartbeat(rt, attendee("ann"), ann.lease_id)


@pytest.fixture
async def http(runtime: Runtime, lounge: Space[LoungeView]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)  # after the lounge is registered: it gets its routes
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://headcount.test/api/v1"
    ) as client:
        yield client


async def test_the_lounge_gets_its_rest_routes_from_its_entry(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    event_id = await lounge_event(runtime, guests=1)
    joined = await http.post(
        f"/events/{event_id}/lounge", headers={**bearer("ann"), "Idempotency-Key": "k-1"}
    )
    assert joined.status_code == 201, joined.text
    lease = joined.json()
    assert (lease["kind"], lease["occupancy"], lease["limit"]) == ("lounge", 1, 1)
    again = await http.post(
        f"/events/{event_id}/lounge", headers={**bearer("ann"), "Idempotency-Key": "k-1"}
    )
    assert again.json()["lease_id"] == lease["lease_id"]  # a retry takes no second place

    full = await http.post(f"/events/{event_id}/lounge", headers=bearer("bob"))
    assert full.status_code == 409
    assert full.headers["content-type"].startswith("application/problem+json")
    assert {k: full.json()[k] for k in ("code", "limit", "guests")} == {
        "code": "lounge_full",
        "limit": 1,
        "guests": 1,
    }
    guests = await http.get(f"/events/{event_id}/lounge-guests", headers=bearer(ORG.sub, ORG.role))
    assert [g["holder"] for g in guests.json()] == ["ann"]
    beat = await http.post(f"/leases/{lease['lease_id']}/heartbeat", headers=bearer("ann"))
    assert beat.status_code == 200
    assert (
        await http.delete(f"/leases/{lease['lease_id']}", headers=bearer("ann"))
    ).status_code == 204
    assert (await http.post(f"/events/{event_id}/lounge", headers=bearer("bob"))).status_code == 201

    documented = (await http.get("http://headcount.test/openapi.json")).json()["paths"]
    join = documented["/api/v1/events/{event_id}/lounge"]["post"]
    assert {"201", "401", "404", "409", "503"} <= join["responses"].keys()
    assert "`lounge_full`" in join["description"]


async def test_without_its_entry_nothing_of_the_lounge_remains(runtime: Runtime) -> None:
    """Run after the others too: the registry is restored, unknown kinds are refused."""
    assert "lounge" not in spaces.SPACES
    event_id = await lounge_event(runtime, guests=5)
    with pytest.raises(NotFound):
        await live.heartbeat(runtime, attendee("ann"), f"lounge.{event_id}.abcdefghijkl")
    with pytest.raises(NotFound):
        await live.release(runtime, attendee("ann"), f"lounge.{event_id}.abcdefghijkl")
    paths = create_app(runtime=runtime).openapi()["paths"]
    assert "/api/v1/events/{event_id}/lounge" not in paths
