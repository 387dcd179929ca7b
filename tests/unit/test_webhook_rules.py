"""Webhook rules without I/O: signatures against the reference verifier, filters, backoff,
the address rule."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from headcount.domain import webhooks as rules

BODY = json.dumps({"type": "order.created", "payload": {"n": 1}})


def _headers(secret: str, at: datetime | None = None, body: str = BODY) -> dict[str, str]:
    return rules.signature_headers("msg_abc", at or datetime.now(UTC), body, [secret])


def test_a_signed_delivery_verifies() -> None:
    secret = rules.new_secret()
    assert secret.startswith("whsec_")
    assert Webhook(secret).verify(BODY, _headers(secret)) == json.loads(BODY)


def test_a_tampered_body_is_refused() -> None:
    secret = rules.new_secret()
    headers = _headers(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("1", "2"), headers)


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        Webhook(rules.new_secret()).verify(BODY, _headers(rules.new_secret()))


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: timedelta) -> None:
    secret = rules.new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, _headers(secret, datetime.now(UTC) + skew))


def test_during_rotation_either_secret_verifies() -> None:
    old, new = rules.new_secret(), rules.new_secret()
    headers = rules.signature_headers("msg_x", datetime.now(UTC), BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)


def test_type_filters() -> None:
    assert rules.check_type_filters(["order.*", "rsvp.confirmed", "order.*"]) == [
        "order.*",
        "rsvp.confirmed",
    ]
    for bad in ("order", "order.nope", "nope.*", "**"):
        with pytest.raises(ValueError, match="unknown change type"):
            rules.check_type_filters([bad])
    assert rules.type_matches([], "anything.at_all")
    assert rules.type_matches(["order.*"], "order.expired")
    assert not rules.type_matches(["order.*"], "rsvp.confirmed")
    assert rules.type_matches(["*"], "rsvp.confirmed")


def test_backoff_is_full_jitter_under_the_cap() -> None:
    rng = random.Random(1)
    for failures in range(1, 40):
        ceiling = min(3600.0, 2.0 * 2**failures)
        delays = [rules.retry_delay(failures, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the whole range, not pinned


def test_giving_up_and_disabling_take_three_days() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert not rules.gives_up(now - timedelta(days=2, hours=23), now)
    assert rules.gives_up(now - timedelta(days=3), now)
    assert not rules.should_disable(now - timedelta(days=4), 5, now)  # too few failures
    assert not rules.should_disable(now - timedelta(days=2), 10_000, now)  # too soon
    assert rules.should_disable(now - timedelta(days=3), 20, now)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_the_address_rule(address: str, reason: str | None) -> None:
    assert rules.refused_address(ipaddress.ip_address(address)) == reason


def test_url_syntax() -> None:
    assert rules.check_url("https://example.com/x", allow_private=False) == (
        "https",
        "example.com",
        443,
    )
    with pytest.raises(rules.UrlRefused):
        rules.check_url("http://example.com/x", allow_private=False)
    assert rules.check_url("http://127.0.0.1:9/x", allow_private=True)[2] == 9
    for bad in ("example.com", "https://", "ftp://x/y", "https://a b/", "https://x:99999/"):
        with pytest.raises(ValueError):  # noqa: PT011 - the message is checked elsewhere
            rules.check_url(bad, allow_private=True)
