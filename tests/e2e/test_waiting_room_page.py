"""The waiting room on the attendee page, in real headless Chromium against a real server:
the visitor joins, watches the position count down as the people ahead leave the shop,
then the shop opens and the purchase goes through with the pass; the organizer's
dashboard shows the room's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support.auth import bearer
from support.browser import ARGS, WAIT_MS, artifact, chromium_path
from support.servers import Server

pytestmark = pytest.mark.slow
ORG = "org-queue-web"


def made(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_the_page_counts_the_place_down_then_opens_the_shop(web_server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    org = bearer(ORG, Role.ORGANIZER)
    with httpx.Client(base_url=web_server.base_url + "/api/v1", timeout=30) as http:
        event_id = made(http.post("/events", json={"name": "Queue night"}, headers=org))["id"]
        made(
            http.post(
                f"/events/{event_id}/ticket-types",
                json={"name": "General", "quantity_total": 100},
                headers=org,
            )
        )
        opens_at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        room = {"opens_at": opens_at, "active_limit": 1, "admit_per_minute": 6_000}
        made(http.post(f"/events/{event_id}/waiting-room", json=room, headers=org))
        ahead = [
            made(http.post(f"/events/{event_id}/queue", headers=bearer(f"ahead-{i}")))
            for i in range(3)
        ]
        assert ahead[0]["state"] == "admitted"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                token = mint(Settings(), "visitor", Role.ATTENDEE)
                page.goto(f"{web_server.base_url}/events/{event_id}?token={token}")
                page.set_default_timeout(WAIT_MS)
                expect(page.locator("#tickets")).to_be_hidden()
                page.get_by_role("button", name="Join the queue").click()
                position = page.locator('#waiting-room [data-field="queue-position"]')
                expect(position).to_have_text("3")
                page.screenshot(path=str(artifact("waiting-room-queued.png")))
                for n, (who, expected) in enumerate(zip(ahead, ("2", "1"), strict=False)):
                    made(http.delete(f"/queue/{who['ticket']}", headers=bearer(f"ahead-{n}")))
                    expect(position).to_have_text(expected)
                made(http.delete(f"/queue/{ahead[2]['ticket']}", headers=bearer("ahead-2")))
                expect(page.locator("#waiting-room")).to_have_attribute("data-state", "admitted")
                expect(page.locator("#tickets")).to_be_visible()
                page.screenshot(path=str(artifact("waiting-room-admitted.png")))
                page.locator("form.buy button[type=submit]").first.click()
                expect(page.locator("#status")).to_contain_text("Complete payment")
                assert errors == []
                # The organizer's dashboard shows the room's figures.
                board = browser.new_page()
                board.goto(f"{web_server.base_url}/events/{event_id}/dashboard")
                room_tiles = board.locator("#waiting-room")
                expect(room_tiles).to_be_visible()
                expect(room_tiles.locator('[data-field="admitted-last-minute"]')).to_have_text("4")
                expect(room_tiles.locator('[data-field="active-limit"]')).to_have_text("1")
                board.screenshot(path=str(artifact("waiting-room-dashboard.png")))
            finally:
                browser.close()
