"""The door's scanner page at phone width, and the dashboard's occupancy, in real headless
Chromium against a real `headcount serve`: a scan shows ACCEPTED or REFUSED (with the
reason) in big letters, the dashboard follows the count and warns at 90 %.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support.auth import bearer
from support.browser import artifact
from support.servers import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
ORG = "org-door-web"


def _made(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _door(server: Server) -> tuple[str, str, list[str]]:
    """(event id, area id of a hall for 2, three registration credentials)."""
    org = bearer(ORG, Role.ORGANIZER)
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=30) as http:
        event_id = _made(http.post("/events", json={"name": "Door night"}, headers=org))["id"]
        area = {"name": "Main hall", "max_occupancy": 2}
        area_id = _made(http.post(f"/events/{event_id}/areas", json=area, headers=org))["id"]
        people = [
            "registration:"
            + _made(http.post(f"/events/{event_id}/registrations", headers=bearer(f"g{n}")))["id"]
            for n in range(3)
        ]
    return event_id, area_id, people


def _scan(page: Page, credential: str, direction: str = "entry") -> None:
    page.get_by_label("Exit" if direction == "exit" else "Entry").check()
    page.get_by_label("Credential").fill(credential)
    page.keyboard.press("Enter")  # a barcode scanner types the code and presses Enter


def test_the_scanner_says_accepted_or_refused_in_big_letters(
    browser: Browser, web_server: Server
) -> None:
    from playwright.sync_api import expect

    event_id, area_id, (ann, bob, cal) = _door(web_server)
    organizer_token = mint(Settings(), ORG, Role.ORGANIZER)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(
        f"{web_server.base_url}/events/{event_id}/scanner?area={area_id}&token={organizer_token}"
    )
    assert "token=" not in page.url
    word, status = page.locator("#verdict-word"), page.get_by_role("status")

    _scan(page, ann)
    expect(word).to_have_text("ACCEPTED")
    expect(status).to_contain_text("1 of 2 inside")
    assert (
        page.evaluate("getComputedStyle(document.getElementById('verdict-word')).fontSize")
        == "48px"
    )
    _scan(page, ann)
    expect(word).to_have_text("REFUSED")
    expect(status).to_contain_text("Already inside")
    _scan(page, bob)
    expect(status).to_contain_text("2 of 2 inside")
    _scan(page, cal)
    expect(word).to_have_text("REFUSED")
    expect(status).to_contain_text("The area is full")
    page.screenshot(path=artifact("scanner-refused-phone.png"), full_page=True)
    _scan(page, "not a ticket")
    expect(status).to_contain_text("Not a credential")
    _scan(page, "registration:reg_nobody")
    expect(status).to_contain_text("Unknown credential")
    _scan(page, ann, "exit")
    expect(word).to_have_text("ACCEPTED")
    expect(status).to_contain_text("1 of 2 inside")
    page.screenshot(path=artifact("scanner-accepted-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"horizontal scrolling at phone width ({width}px)"
    assert errors == []

    # The dashboard shows the hall's occupancy and warns from 90 % (here: full at 2 of 2).
    _scan(page, cal)
    expect(status).to_contain_text("2 of 2 inside")
    dash = browser.new_page(viewport={"width": 1280, "height": 900})
    dash.goto(f"{web_server.base_url}/events/{event_id}/dashboard")
    row = dash.locator(f'section[data-list="areas"] tr[data-id="{area_id}"]')
    expect(row).to_contain_text("Main hall")
    expect(row).to_contain_text("Full")
    assert row.get_attribute("data-warning") == "true"
    _scan(page, cal, "exit")
    expect(row).to_contain_text("Open")  # the poll follows the door
    dash.screenshot(path=artifact("dashboard-areas.png"), full_page=True)
    dash.close()
    page.close()
