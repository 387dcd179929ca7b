"""The /webhooks REST contract: the secret shown once, problem codes, nothing stored on refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from headcount.api.app import create_app
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.runtime import Runtime
from support.auth import bearer

ORG = bearer("org-rest-wh", Role.ORGANIZER)
OTHER = bearer("org-rest-other", Role.ORGANIZER)
SERVICE = bearer("platform", Role.SERVICE)
URL = "http://127.0.0.1:9/hooks"


async def _client(database_url: str, *, allow_private: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, env="test", webhook_allow_private=allow_private)
    rt = Runtime.from_settings(settings)
    app = create_app(runtime=rt)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://headcount.test"
        ) as client:
            yield client
    finally:
        await rt.close()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(database_url, allow_private=True):
        yield client


@pytest.fixture
async def strict_api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(database_url, allow_private=False):
        yield client


async def _event(api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    made = await api.post("/api/v1/events", json={"name": "Hooks"}, headers=headers)
    assert made.status_code == 201, made.text
    event_id: str = made.json()["id"]
    return event_id


def _problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    return body


async def test_lifecycle(api: httpx.AsyncClient) -> None:
    event_id = await _event(api, ORG)
    made = await api.post(
        "/api/v1/webhooks",
        json={"url": URL, "event_ids": [event_id], "types": ["order.*", "rsvp.confirmed"]},
        headers=ORG,
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["types"] == ["order.*", "rsvp.confirmed"]
    assert hook["organizer_id"] == "org-rest-wh"
    shown = await api.get(f"/api/v1/webhooks/{hook['id']}", headers=ORG)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = await api.get("/api/v1/webhooks", headers=ORG)
    assert [w["id"] for w in listed.json()] == [hook["id"]]
    assert "secret" not in listed.json()[0]
    assert (await api.get("/api/v1/webhooks", headers=OTHER)).json() == []

    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}",
        json={"enabled": False, "event_ids": None, "description": "ops"},
        headers=ORG,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["event_ids"] is None
    assert patched.json()["disabled_reason"] == "disabled by org-rest-wh"

    rotated = await api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=ORG)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (hook["secret"], None)

    deliveries = await api.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries?status=pending", headers=ORG
    )
    assert deliveries.status_code == 200
    assert deliveries.json() == []
    _problem(
        await api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/msg_nope/redeliver", headers=ORG),
        404,
        "not_found",
    )
    _problem(await api.delete(f"/api/v1/webhooks/{hook['id']}", headers=OTHER), 403, "forbidden")
    gone = await api.delete(f"/api/v1/webhooks/{hook['id']}", headers=SERVICE)
    assert gone.status_code == 204
    _problem(await api.get(f"/api/v1/webhooks/{hook['id']}", headers=ORG), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"url": URL, "types": ["order.nope"]}, "unknown change type"),
        ({"url": URL, "types": ["nope.*"]}, "unknown change type"),
        ({"url": URL, "event_ids": []}, "at least one event"),
        ({"url": URL, "event_ids": ["not an id"]}, "not an event id"),
        ({"url": "ftp://example.com/x"}, "https://host/path"),
        ({"url": "https://u:p@example.com/x"}, "credentials"),
        ({"url": URL, "surprise": 1}, "surprise"),
        ({"url": URL, "enabled": "maybe"}, "enabled"),
        ({}, "url"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, body: dict[str, Any], fragment: str
) -> None:
    problem = _problem(
        await api.post("/api/v1/webhooks", json=body, headers=ORG), 422, "invalid_request"
    )
    assert fragment in problem["detail"]
    assert (await api.get("/api/v1/webhooks", headers=ORG)).json() == []


async def test_who_may_register(api: httpx.AsyncClient) -> None:
    theirs = await _event(api, OTHER)
    _problem(
        await api.post("/api/v1/webhooks", json={"url": URL, "event_ids": [theirs]}, headers=ORG),
        403,
        "forbidden",
    )
    _problem(
        await api.post("/api/v1/webhooks", json={"url": URL}, headers=bearer("a-person")),
        403,
        "forbidden",
    )
    _problem(await api.post("/api/v1/webhooks", json={"url": URL}), 401, "unauthorized")
    _problem(
        await api.patch(
            "/api/v1/webhooks/whk_nope", json={"event_ids": None, "url": None}, headers=ORG
        ),
        422,
        "invalid_request",
    )
    everything = await api.post("/api/v1/webhooks", json={"url": URL}, headers=SERVICE)
    assert everything.status_code == 201
    assert everything.json()["organizer_id"] is None
    assert (await api.get("/api/v1/webhooks", headers=ORG)).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "http://127.0.0.1:8080/hooks",
        "https://localhost/x",
        "https://[::1]/x",
    ],
)
async def test_private_targets_are_refused_without_the_override(
    strict_api: httpx.AsyncClient, url: str
) -> None:
    problem = _problem(
        await strict_api.post("/api/v1/webhooks", json={"url": url}, headers=ORG),
        422,
        "webhook_url_refused",
    )
    assert problem["url"] == url
    assert (await strict_api.get("/api/v1/webhooks", headers=ORG)).json() == []
