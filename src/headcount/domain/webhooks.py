"""Webhook rules: secrets, signatures, type filters, the retry schedule and the address rule.

Pure functions only; the relay (capacity/relay.py) and the ledger (ledger/webhooks.py)
apply them. docs/webhooks.md describes the contract these numbers make.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from headcount.domain.changes import ChangeType, encode_cursor

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes
# A rotated-out secret keeps signing beside the new one for this long, so a receiver can
# switch without dropping a message (Standard Webhooks: several `v1,` signatures).
ROTATION_OVERLAP = timedelta(hours=24)

# Retries: full jitter (sleep uniform(0, min(cap, base * 2^n))) and a give-up rule that is
# a time, not a count, so a delivery is retried for at least RETRY_WINDOW however the
# random draws fall.
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 3600.0
RETRY_WINDOW = timedelta(days=3)
# An endpoint that failed every attempt for this long, with at least this many failures
# in a row and no success in between, is disabled; its pending deliveries are kept.
DISABLE_AFTER = timedelta(days=3)
DISABLE_MIN_FAILURES = 20

MAX_URL_LENGTH = 2000
MAX_TYPE_FILTERS = 50
MAX_EVENT_IDS = 500
WILDCARD = "*"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the Standard Webhooks secret format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(
    msg_id: str, at: datetime, body: str, secrets_in_use: Sequence[str]
) -> dict[str, str]:
    """Standard Webhooks 1.0 headers; one `v1,` signature per secret in use (rotation)."""
    when = at.astimezone(UTC)
    signatures = [Webhook(secret).sign(msg_id, when, body) for secret in secrets_in_use]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# Type filters: exact change types, `<resource>.*`, or `*`.


def _prefixes() -> set[str]:
    return {str(t).split(".", 1)[0] for t in ChangeType}


def check_type_filters(patterns: Iterable[str]) -> list[str]:
    """The filters, deduplicated and sorted, or ValueError naming the first unknown one."""
    known = {str(t) for t in ChangeType}
    prefixes = _prefixes()
    found: set[str] = set()
    for pattern in patterns:
        prefix = pattern.endswith(".*") and pattern[:-2] in prefixes
        if pattern == WILDCARD or pattern in known or prefix:
            found.add(pattern)
        else:
            raise ValueError(
                f"unknown change type {pattern!r}: use a type such as 'order.created', "
                f"a prefix such as 'order.*', or '*'"
            )
    if len(found) > MAX_TYPE_FILTERS:
        raise ValueError(f"at most {MAX_TYPE_FILTERS} type filters")
    return sorted(found)


def type_matches(patterns: Sequence[str], change_type: str) -> bool:
    """No filter means every type."""
    if not patterns:
        return True
    resource = change_type.split(".", 1)[0]
    return any(p in (WILDCARD, change_type) or p == f"{resource}.*" for p in patterns)


def in_scope(
    *,
    scope_organizer: str | None,
    scope_events: Sequence[str] | None,
    event_id: str,
    event_organizer: str | None,
) -> bool:
    """An endpoint sees the events it lists, else every event of its organizer, else
    (the platform service's own endpoints) every event."""
    if scope_events is not None:
        return event_id in scope_events
    if scope_organizer is None:
        return True
    return event_organizer == scope_organizer


# The retry schedule.


def retry_delay(
    failures: int, *, cap: float = RETRY_CAP_SECONDS, rng: random.Random | None = None
) -> float:
    """Seconds before the next attempt after `failures` failed ones (full jitter)."""
    ceiling = min(cap, RETRY_BASE_SECONDS * 2.0 ** min(max(failures, 1), 30))
    return (rng or random).uniform(0, ceiling)


def gives_up(retrying_since: datetime, now: datetime) -> bool:
    """A delivery is abandoned only after failing for the whole retry window."""
    return now - retrying_since >= RETRY_WINDOW


def should_disable(failing_since: datetime | None, failures_in_a_row: int, now: datetime) -> bool:
    return (
        failing_since is not None
        and now - failing_since >= DISABLE_AFTER
        and failures_in_a_row >= DISABLE_MIN_FAILURES
    )


# Where a webhook may go (SSRF). The syntax is checked here; the relay and the service
# resolve the host and apply `refused_address` to every address it resolves to.


class UrlRefused(ValueError):
    """A well-formed URL whose destination is not allowed."""


def check_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL.

    ValueError: not an absolute http(s) URL with a host; UrlRefused: plain http without
    the private override, or an IP-literal host that is not public.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise ValueError("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the URL must be absolute, https://host/path")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not supported; put a token in the path")
    if scheme == "http" and not allow_private:
        raise UrlRefused("webhooks are sent over https only")
    host = parts.hostname
    if (literal := ip_literal(host)) is not None and not allow_private:
        reason = refused_address(literal)
        if reason is not None:
            raise UrlRefused(f"{host} is a {reason} address")
    return scheme, host, port or (443 if scheme == "https" else 80)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refused_address(address: IPAddress) -> str | None:
    """Why a webhook may not connect to `address`, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for reason, hit in checks:
        if hit:
            return reason
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, …
        return "non-public"
    return None


# What a delivery carries.


def render_body(
    *,
    change_type: str,
    event_id: str,
    resource: tuple[str, str],
    actor: tuple[str | None, str | None],
    request_id: str | None,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    position: int,
) -> str:
    """The change as JSON, exactly the bytes that are signed and sent on every attempt."""
    sub, role = actor
    body = {
        "type": change_type,
        "event_id": event_id,
        "resource": {"type": resource[0], "id": resource[1]},
        "actor": None if sub is None and role is None else {"sub": sub, "role": role},
        "request_id": request_id,
        "payload": dict(payload),
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "cursor": encode_cursor(position),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)
