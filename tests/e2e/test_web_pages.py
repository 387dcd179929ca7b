"""The attendee page and the organizer dashboard in real headless Chromium.

Against a real `headcount serve` process: buttons disable when capacity runs out and
re-enable, without a reload, when another client frees it; a race lost between render and
click shows the server's own explanation; the dashboard follows a second client's sales
and stream viewers. Screenshots go to test-artifacts/ (desktop and 390 px phone width).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint
from support.auth import bearer
from support.browser import WAIT_MS, artifact
from support.servers import Server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, ViewportSize

pytestmark = pytest.mark.slow

ORGANIZER = "org-web"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture
def http(web_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web_server.base_url + "/api/v1", timeout=30) as client:
        yield client


def as_user(sub: str) -> dict[str, str]:
    role = Role.ORGANIZER if sub == ORGANIZER else Role.ATTENDEE
    return bearer(sub, role)


def token(sub: str) -> str:
    return mint(Settings(), sub, Role.ATTENDEE)


def made(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def organized(http: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    """What the organizer made by POSTing `body` to `path`."""
    return made(http.post(path, json=body, headers=as_user(ORGANIZER)))


def new_event(http: httpx.Client, **fields: Any) -> str:
    event_id: str = organized(http, "/events", {"name": "Web test", **fields})["id"]
    return event_id


def streaming(viewers: int) -> dict[str, Any]:
    """The fields that give a new event a live stream for at most `viewers` at once."""
    return {"virtual_settings": {"max_concurrent_viewers": viewers}}


def new_ticket_type(http: httpx.Client, event_id: str, name: str, total: int, **fields: Any) -> str:
    body = {"name": name, "quantity_total": total, **fields}
    tt_id: str = organized(http, f"/events/{event_id}/ticket-types", body)["id"]
    return tt_id


def buy(
    http: httpx.Client, who: str, event_id: str, tt_id: str, quantity: int = 1
) -> httpx.Response:
    body = {"event_id": event_id, "items": [{"ticket_type_id": tt_id, "quantity": quantity}]}
    return http.post("/orders", json=body, headers=as_user(who))


class Pages:
    """The pages a test opens on the server; all closed when the test ends, passed or not,
    so a failed test leaves nothing running in the module's browser."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser, self.base_url = browser, base_url
        self.opened: list[Page] = []

    def open(self, path: str, viewport: ViewportSize = DESKTOP) -> Page:
        """`path` loaded, with a marker that only survives if nothing reloads the page."""
        page = self.new(viewport)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(self.base_url + path)
        page.evaluate("window.__sameDocument = true")  # survives only if nothing reloads
        page.set_default_timeout(WAIT_MS)
        setattr(page, "script_errors", errors)  # noqa: B010
        return page

    def event(
        self, event_id: str, who: str | None = None, viewport: ViewportSize = DESKTOP
    ) -> Page:
        """The event's attendee page, signed in as `who` (anonymous without)."""
        signed_in = "" if who is None else f"?token={token(who)}"
        return self.open(f"/events/{event_id}{signed_in}", viewport)

    def frozen(self, event_id: str, who: str) -> Page:
        """The event's page as `who` sees it at render time: no pushes, no polls, so the
        page acts on what it knew then."""
        page = self.new(DESKTOP)
        page.set_default_timeout(WAIT_MS)
        page.route("**/capacity", lambda route: route.abort())
        page.route_web_socket("**/ws/**", lambda ws: None)
        page.goto(f"{self.base_url}/events/{event_id}?token={token(who)}")
        return page

    def stream(self, event_id: str, who: str) -> str:
        """The URL of the event's stream socket for `who`, for a client that is not a page."""
        ws_base = self.base_url.replace("http", "ws")
        return f"{ws_base}/ws/events/{event_id}/stream?token={token(who)}"

    def new(self, viewport: ViewportSize) -> Page:
        page = self.browser.new_page(viewport=viewport)
        self.opened.append(page)
        return page

    def close(self) -> None:
        for page in self.opened:
            page.close()


@pytest.fixture
def event_id(http: httpx.Client) -> str:
    """A new event without caps: what most of these tests start from."""
    return new_event(http)


@pytest.fixture
def pages(browser: Browser, web_server: Server) -> Iterator[Pages]:
    opened = Pages(browser, web_server.base_url)
    yield opened
    opened.close()


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    assert getattr(page, "script_errors") == [], "script errors on the page"  # noqa: B009


def test_buy_until_sold_out_then_a_release_elsewhere_re_enables_buy(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    tt_id = new_ticket_type(http, event_id, "Front row", 2, max_per_order=1)
    new_ticket_type(http, event_id, "Standing", 50)
    page = pages.event(event_id, "ada")
    assert "token=" not in page.url, "the token is taken out of the address bar"
    card = page.locator(f'li[data-ticket-type-id="{tt_id}"]')
    button = card.get_by_role("button", name="Buy")
    available = card.locator('[data-field="available"]')
    expect(card.get_by_label("Quantity")).to_be_enabled()

    button.click()
    expect(page.get_by_role("status")).to_contain_text("Held 1 \N{MULTIPLICATION SIGN} Front row")
    expect(available).to_have_text("1")
    expect(button).to_be_enabled()  # the first purchase has fully finished
    # Keyboard only: focus the quantity, Tab to the button, Enter.
    card.get_by_label("Quantity").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    sold_out = card.get_by_role("button", name="Sold out")
    expect(sold_out).to_be_disabled()
    expect(available).to_have_text("0")
    # No attendee cap: the indicator counts tickets.
    expect(page.locator("#capacity-text")).to_contain_text("2 / 52 tickets taken")
    page.screenshot(path=artifact("event-sold-out.png"), full_page=True)

    # Another client (not this page) releases one: cancel one of ada's holds over HTTP.
    orders = made(http.get(f"/orders?event_id={event_id}", headers=as_user("ada")))
    assert len(orders) == 2
    made(http.post(f"/orders/{orders[0]['id']}/cancel", headers=as_user("ada")))
    expect(button).to_be_enabled()  # "Buy" again
    expect(available).to_have_text("1")
    assert_not_reloaded(page)


def test_a_race_lost_between_render_and_click_shows_the_servers_reason(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    tt_id = new_ticket_type(http, event_id, "Last seat", 1)
    page = pages.frozen(event_id, "bea")  # acts on what it knew at render time
    card = page.locator(f'li[data-ticket-type-id="{tt_id}"]')
    expect(card.get_by_role("button", name="Buy")).to_be_enabled()

    made(buy(http, "cy", event_id, tt_id))  # someone else takes the last one meanwhile
    card.get_by_role("button", name="Buy").click()

    same_request = buy(http, "bea", event_id, tt_id)
    assert same_request.status_code == 409
    expect(page.get_by_role("alert")).to_have_text(same_request.json()["detail"])


def test_register_until_full_and_a_cancellation_re_enables_register(
    pages: Pages, http: httpx.Client
) -> None:
    from playwright.sync_api import expect

    event_id = new_event(http, max_attendees=2)
    made(http.post(f"/events/{event_id}/registrations", json={}, headers=as_user("dan")))
    ed = pages.event(event_id, "ed")
    fay = pages.event(event_id, "fay")
    expect(ed.locator("#capacity-text")).to_contain_text("1 / 2 registered")

    ed.get_by_role("button", name="Register").click()
    expect(ed.get_by_role("status")).to_have_text("You are registered.")
    expect(ed.get_by_role("button", name="Cancel registration")).to_be_visible()
    for page in (ed, fay):
        expect(page.locator("#capacity-text")).to_contain_text("2 / 2 registered")
    expect(fay.get_by_role("button", name="Full")).to_be_disabled()
    fay.screenshot(path=artifact("event-registration-full.png"), full_page=True)

    # dan cancels from another client: fay's page offers the place again, no reload.
    made(http.delete(f"/events/{event_id}/registrations/me", headers=as_user("dan")))
    expect(fay.get_by_role("button", name="Register")).to_be_enabled()
    expect(fay.locator("#capacity-text")).to_contain_text("1 / 2 registered")
    assert_not_reloaded(fay)


def test_full_session_offers_the_waitlist_and_a_freed_seat_promotes_live(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    session = organized(
        http, f"/events/{event_id}/sessions", {"title": "Tiny workshop", "max_participants": 1}
    )
    for who in ("gus", "hal"):
        made(http.post(f"/events/{event_id}/registrations", json={}, headers=as_user(who)))
    made(http.post(f"/sessions/{session['id']}/rsvp", headers=as_user("gus")))
    page = pages.event(event_id, "hal")
    card = page.locator(f'li[data-session-id="{session["id"]}"]')
    expect(card).to_contain_text("0 of 1 seats left")
    card.get_by_role("button", name="Full — join waitlist").click()
    expect(card).to_contain_text("You are number 1 on the waitlist.")
    expect(card).to_contain_text("1 waiting")
    # gus leaves from elsewhere: hal is promoted in the same transaction, and hal's page
    # notices the queue moving and says so, without a reload.
    made(http.delete(f"/sessions/{session['id']}/rsvp", headers=as_user("gus")))
    expect(card).to_contain_text("You have a seat.")
    expect(page.get_by_role("status")).to_contain_text("A seat freed up")
    expect(card.get_by_role("button", name="Leave")).to_be_enabled()
    assert_not_reloaded(page)


def test_dashboard_follows_sales_and_stream_viewers_from_other_clients(
    pages: Pages, http: httpx.Client
) -> None:
    from playwright.sync_api import expect
    from websockets.sync.client import connect

    event_id = new_event(http, name="Dashboard test", max_attendees=30, **streaming(5))
    tt_id = new_ticket_type(http, event_id, "General", 20)
    page = pages.open(f"/events/{event_id}/dashboard")
    tiles = page.locator("#tiles")
    expect(tiles.locator('[data-field="sold"]')).to_have_text("0")
    expect(tiles.locator('[data-field="viewers"]')).to_have_text("0")

    for who in ("ivy", "jon", "kit"):
        order = made(buy(http, who, event_id, tt_id, 2))
        made(http.post(f"/orders/{order['id']}/confirm", headers=as_user(ORGANIZER)))
    expect(tiles.locator('[data-field="sold"]')).to_have_text("6")
    row = page.locator(f'#ticket-table tr[data-ticket-type-id="{tt_id}"]')
    expect(row.locator('[data-field="available"]')).to_have_text("14")

    with connect(pages.stream(event_id, "viewer-1")) as viewer:
        joined = json.loads(viewer.recv(timeout=10))
        assert joined["type"] == "joined", joined
        expect(tiles.locator('[data-field="viewers"]')).to_have_text("1")
        # Estimates need ≥ 10 s of samples: sell more meanwhile so the rate is non-zero.
        page.wait_for_timeout(6_000)
        made(buy(http, "lou", event_id, tt_id, 4))
        estimate = re.compile(r"^(≈ \d+(\.\d)? (min|h)|under a minute) \(\d")
        expect(row.locator('[data-field="eta"]')).to_have_text(estimate, timeout=20_000)
        expect(row.locator('[data-field="rate"]')).to_have_text(re.compile(r"^\d+\.\d/min$"))
        page.screenshot(path=artifact("dashboard.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)  # the chart redraws at the new width on resize
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal scrolling at phone width ({width}px)"
        page.screenshot(path=artifact("dashboard-phone.png"), full_page=True)
    expect(tiles.locator('[data-field="viewers"]')).to_have_text("0")
    assert_not_reloaded(page)


def test_event_page_reads_at_phone_width(pages: Pages, http: httpx.Client) -> None:
    from playwright.sync_api import expect

    event_id = new_event(
        http,
        name="Headcount Phone Conference",
        description="Checking the page at 390 px.",
        max_attendees=40,
        starts_at="2030-06-01T09:00:00Z",
        ends_at="2030-06-01T17:00:00Z",
    )
    full = new_ticket_type(http, event_id, "Early Bird", 1)
    new_ticket_type(http, event_id, "Regular", 30, max_per_order=4)
    made(buy(http, "max", event_id, full))
    made(http.post(f"/events/{event_id}/registrations", json={}, headers=as_user("max")))
    for title, seats in (("Opening keynote", 30), ("Workshop", 0)):
        organized(http, f"/events/{event_id}/sessions", {"title": title, "max_participants": seats})
    page = pages.event(event_id, viewport=PHONE)
    # max_attendees counts people: max's registration and max's ticket hold.
    expect(page.locator("#capacity-text")).to_have_text(
        re.compile(r"^\s*2\s*/\s*40\s+attending\s*$")
    )
    expect(page.locator('[data-field="breakdown"]')).to_have_text("1 registered · 1 with tickets")
    expect(page.get_by_role("button", name="Register")).to_be_enabled()
    expect(page.get_by_text("38 of 40 places left")).to_be_visible()
    expect(page.get_by_role("button", name="Sold out")).to_be_disabled()
    expect(page.get_by_role("button", name="Full — join waitlist")).to_be_enabled()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scrolling at phone width ({width}px)"
    for control in page.locator("select, input").all():
        label = control.evaluate("el => el.labels.length")
        assert label >= 1, "every form control has a label"
    page.screenshot(path=artifact("event-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=artifact("event.png"), full_page=True)


def test_sold_out_ticket_queue_turns_into_an_offer_only_the_queued_person_can_buy(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    tt_id = new_ticket_type(http, event_id, "Balcony", 1)
    held = made(buy(http, "ann", event_id, tt_id))
    bob = pages.event(event_id, "bob")
    cy = pages.event(event_id, "cy")
    card = bob.locator(f'li[data-ticket-type-id="{tt_id}"]')
    expect(card.get_by_role("button", name="Sold out")).to_be_disabled()
    card.get_by_role("button", name="Join waitlist").click()
    expect(card).to_contain_text("You are number 1 in the queue.")

    # ann gives her hold up elsewhere: the stock is offered to bob, not put back on sale.
    made(http.post(f"/orders/{held['id']}/cancel", headers=as_user("ann")))
    expect(card).to_contain_text("held for you until")
    expect(card.get_by_role("button", name="Buy")).to_be_enabled()
    cy_card = cy.locator(f'li[data-ticket-type-id="{tt_id}"]')
    expect(cy_card.get_by_role("button", name="Sold out")).to_be_disabled()

    card.get_by_role("button", name="Buy").click()
    expect(bob.get_by_role("status")).to_contain_text("Held 1 \N{MULTIPLICATION SIGN} Balcony")
    expect(card.get_by_role("button", name="Sold out")).to_be_disabled()
    bob.screenshot(path=artifact("event-waitlist-offer-taken.png"), full_page=True)
    assert_not_reloaded(bob)


# --- joining live places from the attendee page -----------------------------------------


def place_card(page: Page, kind: str, place_id: str) -> Locator:
    return page.locator(f'li.place[data-kind="{kind}"][data-place-id="{place_id}"]')


def capacity(http: httpx.Client, event_id: str) -> Any:
    return made(http.get(f"/events/{event_id}/capacity"))


def test_join_the_stream_and_another_page_sees_the_viewer_count(
    pages: Pages, http: httpx.Client
) -> None:
    from playwright.sync_api import expect
    from websockets.sync.client import connect

    event_id = new_event(http, **streaming(2))
    ada = pages.event(event_id, "ada")
    bea = pages.event(event_id, "bea")
    on_ada, on_bea = place_card(ada, "viewers", event_id), place_card(bea, "viewers", event_id)
    expect(on_bea).to_contain_text("0 of 2 viewers")

    on_ada.get_by_role("button", name="Join").click()
    expect(ada.get_by_role("status")).to_have_text("You are watching the stream.")
    expect(on_ada).to_contain_text("You are watching.")
    expect(on_bea).to_contain_text("1 of 2 viewers")  # pushed to the other page
    assert capacity(http, event_id)["viewers"]["viewers"] == 1

    # A reload drops the socket without a leave: the place is kept, and the page takes it
    # back at once (the other page never sees a free place for a newcomer).
    ada.reload()
    expect(ada.get_by_role("status")).to_contain_text("your place in “Live stream” was kept")
    expect(place_card(ada, "viewers", event_id)).to_contain_text("You are watching.")
    expect(on_bea).to_contain_text("1 of 2 viewers")

    place_card(ada, "viewers", event_id).get_by_role("button", name="Leave").click()
    expect(ada.get_by_role("status")).to_have_text("You left the stream.")
    expect(on_bea).to_contain_text("0 of 2 viewers")
    viewers = capacity(http, event_id)["viewers"]
    assert (viewers["viewers"], viewers["in_grace"]) == (0, 0)  # a leave keeps nothing

    # Another viewer's socket drops without a leave: the page shows the place kept for them.
    with connect(pages.stream(event_id, "hal")) as hal:
        assert json.loads(hal.recv(timeout=10))["type"] == "joined"
        expect(on_bea).to_contain_text("1 of 2 viewers")
    expect(on_bea).to_contain_text("0 of 2 viewers · 1 held for reconnecting")
    bea.set_viewport_size(PHONE)
    bea.locator("#live-places").screenshot(path=artifact("event-stream-held-phone.png"))
    assert_not_reloaded(bea)


def test_losing_the_race_for_the_last_booth_place_says_why_and_a_freed_place_re_enables(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    booth = organized(http, f"/events/{event_id}/booths", {"name": "Last spot", "max_visitors": 1})
    frozen = pages.frozen(event_id, "cal")  # acts on what it knew at render time
    watcher = pages.event(event_id, "dee")
    on_frozen, on_watcher = (
        place_card(frozen, "booth", booth["id"]),
        place_card(watcher, "booth", booth["id"]),
    )
    expect(on_frozen.get_by_role("button", name="Join")).to_be_enabled()

    taken = made(http.post(f"/booths/{booth['id']}/visits", headers=as_user("eli")))
    expect(on_watcher.get_by_role("button", name="Full")).to_be_disabled()
    on_frozen.get_by_role("button", name="Join").click()
    same = http.post(f"/booths/{booth['id']}/visits", headers=as_user("cal"))
    assert same.status_code == 409
    expect(frozen.get_by_role("alert")).to_have_text(same.json()["detail"])
    # The refusal itself says the booth is full: the page shows it without a snapshot.
    expect(on_frozen.get_by_role("button", name="Full")).to_be_disabled()
    expect(on_frozen).to_contain_text("1 of 1 visitors")
    frozen.screenshot(path=artifact("event-booth-race-lost.png"), full_page=True)

    # eli leaves elsewhere: the place frees and the other page offers it again, no reload.
    assert http.delete(f"/leases/{taken['lease_id']}", headers=as_user("eli")).status_code == 204
    expect(on_watcher.get_by_role("button", name="Join")).to_be_enabled()
    expect(on_watcher).to_contain_text("0 of 1 visitors")
    assert_not_reloaded(watcher)


def test_a_full_booth_offers_a_place_in_line_and_the_page_gets_in_when_it_frees(
    pages: Pages, http: httpx.Client, event_id: str
) -> None:
    from playwright.sync_api import expect

    booth = organized(http, f"/events/{event_id}/booths", {"name": "Popular", "max_visitors": 1})
    visits = f"/booths/{booth['id']}/visits"
    taken = made(http.post(visits, headers=as_user("gus")))
    assert http.post(f"{visits}?queue=1", headers=as_user("hal")).status_code == 202
    page = pages.event(event_id, "ivy")
    card = place_card(page, "booth", booth["id"])
    expect(card.get_by_role("button", name="Full")).to_be_disabled()
    card.get_by_role("button", name="Wait in line").click()
    expect(card).to_contain_text("1 person ahead of you")
    # hal gives up the line elsewhere: the page's next ask finds ivy next.
    assert http.delete(f"{visits}/line", headers=as_user("hal")).status_code == 204
    expect(card).to_contain_text("You are next")
    page.screenshot(path=artifact("event-booth-in-line.png"), full_page=True)
    # gus leaves: the place waits for the head of the line, and the page's ask takes it.
    assert http.delete(f"/leases/{taken['lease_id']}", headers=as_user("gus")).status_code == 204
    expect(card).to_contain_text("You are in.")
    expect(card.get_by_role("button", name="Leave")).to_be_enabled()
    assert http.post(visits, headers=as_user("jon")).status_code == 409
    assert_not_reloaded(page)


def test_a_full_stream_offers_a_place_in_line_on_its_socket(
    pages: Pages, http: httpx.Client
) -> None:
    from playwright.sync_api import expect

    event_id = new_event(http, **streaming(1))
    taken = made(http.post(f"/events/{event_id}/viewers", headers=as_user("kim")))
    page = pages.event(event_id, "lou")
    card = place_card(page, "viewers", event_id)
    expect(card.get_by_role("button", name="Full")).to_be_disabled()
    card.get_by_role("button", name="Wait in line").click()
    expect(card).to_contain_text("You are next")
    assert http.delete(f"/leases/{taken['lease_id']}", headers=as_user("kim")).status_code == 204
    expect(card).to_contain_text("You are watching.")
    assert capacity(http, event_id)["viewers"]["viewers"] == 1
    card.get_by_role("button", name="Leave").click()
    expect(card.get_by_role("button", name="Join")).to_be_enabled()
    assert_not_reloaded(page)


def test_join_a_huddle_a_room_a_booth_and_the_stream_then_leave_everything(
    pages: Pages, http: httpx.Client
) -> None:
    from playwright.sync_api import expect

    event_id = new_event(http, name="Meet and watch", **streaming(100))
    booth = organized(http, f"/events/{event_id}/booths", {"name": "Acme", "max_visitors": 5})
    session = organized(
        http, f"/events/{event_id}/sessions", {"title": "Workshop", "max_participants": 30}
    )
    room = organized(
        http, f"/sessions/{session['id']}/breakout-rooms", {"name": "Table 1", "capacity": 4}
    )
    huddle = organized(
        http,
        f"/events/{event_id}/huddles",
        {"name": "Rust people", "topic": "async", "capacity": 3},
    )
    made(http.post(f"/huddles/{huddle['id']}/join", headers=as_user("gil")))
    page = pages.event(event_id, "fen", PHONE)
    cards = {
        "viewers": place_card(page, "viewers", event_id),
        "booth": place_card(page, "booth", booth["id"]),
        "room": place_card(page, "room", room["id"]),
        "huddle": place_card(page, "huddle", huddle["id"]),
    }
    expect(cards["huddle"]).to_contain_text("1 of 3 members")
    expect(cards["room"]).to_contain_text("Workshop")
    # Keyboard only for the huddle: focus its button, Enter; focus stays on the button.
    join_huddle = cards["huddle"].get_by_role("button", name="Join")
    join_huddle.focus()
    page.keyboard.press("Enter")
    expect(cards["huddle"]).to_contain_text("You are a member.")
    expect(cards["huddle"]).to_contain_text("2 of 3 members")
    expect(cards["huddle"].get_by_role("button", name="Leave")).to_be_focused()
    for kind in ("viewers", "booth", "room"):
        cards[kind].get_by_role("button", name="Join").click()
        expect(cards[kind].get_by_role("button", name="Leave")).to_be_enabled()
    expect(cards["booth"]).to_contain_text("1 of 5 visitors")
    expect(cards["room"]).to_contain_text("1 of 4 participants")
    expect(cards["viewers"]).to_contain_text("1 of 100 viewers")
    snap = capacity(http, event_id)
    assert snap["viewers"]["viewers"] == 1
    assert [b["visitors"] for b in snap["booths"]] == [1]
    assert [r["participants"] for r in snap["breakout_rooms"]] == [1]
    assert [h["members"] for h in snap["huddles"]] == [2]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scrolling at phone width ({width}px)"
    page.locator("#live-places").screenshot(path=artifact("event-places-phone.png"))

    for kind in ("viewers", "booth", "room", "huddle"):
        cards[kind].get_by_role("button", name="Leave").click()
        expect(cards[kind].get_by_role("button", name="Join")).to_be_enabled()
    snap = capacity(http, event_id)
    assert (snap["viewers"]["viewers"], snap["viewers"]["in_grace"]) == (0, 0)
    assert [(b["visitors"], b["in_grace"]) for b in snap["booths"]] == [(0, 0)]
    assert [(r["participants"], r["in_grace"]) for r in snap["breakout_rooms"]] == [(0, 0)]
    assert [h["members"] for h in snap["huddles"]] == [1]

    # Signing out leaves what the page holds, as the user who took it.
    cards["booth"].get_by_role("button", name="Join").click()
    cards["viewers"].get_by_role("button", name="Join").click()
    expect(cards["booth"]).to_contain_text("You are in.")
    expect(cards["viewers"]).to_contain_text("You are watching.")
    page.get_by_role("button", name="Sign out").click()
    expect(cards["booth"]).to_contain_text("0 of 5 visitors")
    expect(cards["viewers"]).to_contain_text("0 of 100 viewers")
    snap = capacity(http, event_id)
    assert [(b["visitors"], b["in_grace"]) for b in snap["booths"]] == [(0, 0)]
    assert (snap["viewers"]["viewers"], snap["viewers"]["in_grace"]) == (0, 0)
    assert page.get_by_role("alert").is_hidden()
    assert_not_reloaded(page)
