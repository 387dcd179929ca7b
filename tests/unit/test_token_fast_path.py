"""The HS256 fast path accepts only tokens PyJWT accepts, with the same claims.

It exists for cost (a stream start verifies thousands of first-time tokens at once), so
its one rule is: never say yes where PyJWT would say no. Everything it declines goes to
PyJWT, which decides and explains as before (tests/unit/test_tokens.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.utils import base64url_encode

from headcount import tokens
from headcount.config import Settings
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Role

SECRET = "s3cret-for-tests-that-is-long-enough-32b"
SETTINGS = Settings(jwt_secret=SECRET, env="test")


def forge(header: dict[str, Any], claims: dict[str, Any], key: str = SECRET) -> str:
    """A token with exactly this header and payload (PyJWT's encode would normalise them)."""
    head = base64url_encode(json.dumps(header).encode()).decode()
    body = base64url_encode(json.dumps(claims).encode()).decode()
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64url_encode(mac).decode()}"


def pyjwt_accepts(token: str, config: Settings = SETTINGS) -> dict[str, Any] | None:
    try:
        return tokens._pyjwt(token, SECRET, config)
    except Unauthorized:
        return None


def now() -> int:
    return int(time.time())


TIMES = st.one_of(
    st.integers(min_value=-100_000, max_value=100_000).map(lambda d: now() + d),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
VALUES = {
    "sub": st.one_of(st.text(max_size=8), st.integers(), st.none()),
    "role": st.one_of(st.sampled_from([r.value for r in Role]), st.text(max_size=5), st.none()),
    "exp": TIMES,
    "iat": TIMES,
    "nbf": TIMES,
    "aud": st.text(max_size=4),
    "jti": st.one_of(st.text(max_size=4), st.integers()),
    "extra": st.integers(),
}
HEADERS = st.sampled_from(
    [
        {"alg": "HS256", "typ": "JWT"},
        {"alg": "HS256"},
        {"alg": "none"},
        {"alg": "HS512", "typ": "JWT"},
        {"alg": "HS256", "typ": "JWT", "kid": 1},
        {"alg": "HS256", "crit": ["x"]},
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=HEADERS,
    picked=st.dictionaries(st.sampled_from(sorted(VALUES)), st.just(0), max_size=8),
    data=st.data(),
    right_key=st.booleans(),
)
def test_the_fast_path_never_accepts_what_pyjwt_refuses(
    header: dict[str, Any], picked: dict[str, int], data: st.DataObject, right_key: bool
) -> None:
    claims = {name: data.draw(VALUES[name], label=name) for name in picked}
    token = forge(header, claims, SECRET if right_key else "another-key-of-32-bytes-or-more!!")
    fast = tokens._plain_hs256(token, SECRET, SETTINGS)
    if fast is not None:
        assert pyjwt_accepts(token) == fast


def test_a_minted_token_takes_the_fast_path_with_pyjwts_claims() -> None:
    """Control: the fast path is really taken (so the property above is not vacuous)."""
    token = tokens.mint(SETTINGS, "viewer", Role.ATTENDEE)
    fast = tokens._plain_hs256(token, SECRET, SETTINGS)
    assert fast is not None
    assert fast == pyjwt_accepts(token)


# Built at collection, run up to minutes later in a loaded suite: "not yet valid" and
# "still valid" are an hour away so the time between cannot change the answer.
@pytest.mark.parametrize(
    "token",
    [
        forge({"alg": "HS256"}, {"sub": "a", "role": "attendee", "exp": now() - 3600}),
        forge({"alg": "HS256"}, {"sub": "a", "role": "attendee", "exp": now() + 3600}, "x" * 32),
        forge({"alg": "none"}, {"sub": "a", "role": "attendee", "exp": now() + 3600}),
        forge({"alg": "HS256"}, {"sub": "a", "role": "attendee", "exp": True}),
        forge(
            {"alg": "HS256"},
            {"sub": "a", "role": "attendee", "exp": now() + 3600, "nbf": now() + 3600},
        ),
        forge({"alg": "HS256"}, {"sub": "a", "role": "attendee", "exp": now() + 3600, "aud": "x"}),
        forge({"alg": "HS256"}, {"sub": 7, "role": "attendee", "exp": now() + 3600}),
        forge({"alg": "HS256"}, {"role": "attendee", "exp": now() + 3600}),
        forge({"alg": "HS256"}, {"sub": "a", "role": None, "exp": now() + 3600}),
        forge({"alg": "HS512"}, {"sub": "a", "role": "attendee", "exp": now() + 3600}),
        "a.b",
        "...",
        "not-a-jwt",
    ],
)
def test_what_the_fast_path_leaves_to_pyjwt(token: str) -> None:
    assert tokens._plain_hs256(token, SECRET, SETTINGS) is None


def test_no_fast_path_when_audience_or_issuer_is_configured() -> None:
    strict = Settings(jwt_secret=SECRET, jwt_audience="hc", env="test")
    token = tokens.mint(SETTINGS, "viewer", Role.ATTENDEE)
    assert tokens._plain_hs256(token, SECRET, strict) is None
