"""The pages over HTTP (in process, both databases): first paint, 404s, headers, assets."""

from __future__ import annotations

import httpx
import pytest

from headcount.capacity import events, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.runtime import Runtime
from support.auth import organizer

ORG = organizer("org-web-routes")


async def test_event_page_first_paint_shows_capacity_without_scripts(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Paint <b>test</b>"))
    await tickets.create_ticket_type(
        runtime, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=0)
    )
    await tickets.create_ticket_type(
        runtime, ORG, event.id, TicketTypeDraft(name="VIP", quantity_total=3)
    )
    page = await http.get(f"/events/{event.id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = " ".join(page.text.split())
    assert "Paint &lt;b&gt;test&lt;/b&gt;" in html, "names are escaped"
    taken = '<span data-field="taken">0</span> / <span data-field="limit">3</span>'
    assert f'{taken} <span data-field="noun">tickets taken</span>' in html
    ga, vip = html.split('<li class="card ticket')[1:3]
    assert "disabled> Sold out</button>" in ga
    assert "Buy</button>" in vip
    assert '<span data-field="available">3</span> of 3 left' in vip
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_dashboard_renders(http: httpx.AsyncClient, runtime: Runtime) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Dash", max_attendees=7))
    page = await http.get(f"/events/{event.id}/dashboard")
    assert page.status_code == 200
    assert 'data-field="max-attendees">7<' in page.text


@pytest.mark.parametrize(
    "path", ["/events/evt_missing", "/events/%00%ff/dashboard", "/events/" + "x" * 400]
)
async def test_unknown_events_get_an_html_404(http: httpx.AsyncClient, path: str) -> None:
    page = await http.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text


@pytest.mark.parametrize(
    "name", ["live.js", "event.js", "places.js", "dashboard.js", "headcount.css"]
)
async def test_assets_are_served(http: httpx.AsyncClient, name: str) -> None:
    response = await http.get(f"/web/static/{name}")
    assert response.status_code == 200
    assert response.text.strip()


async def test_assets_cannot_escape_their_directory(http: httpx.AsyncClient) -> None:
    response = await http.get("/web/static/..%2f__init__.py")
    assert response.status_code == 404
