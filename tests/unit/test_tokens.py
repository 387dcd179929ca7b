"""JWT verification refuses everything but a well-formed token of the configured algorithm."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from headcount import tokens
from headcount.config import DEV_JWT_SECRET, Settings
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Role
from headcount.tokens import mint, verify
from support.auth import claims as token_claims

SETTINGS = Settings(jwt_secret="s3cret-for-tests-that-is-long-enough-32b", env="test")


def sign(
    claims: dict[str, object],
    key: str = "s3cret-for-tests-that-is-long-enough-32b",
    alg: str = "HS256",
) -> str:
    return jwt.encode(claims, key, algorithm=alg)


def claims(**overrides: object) -> dict[str, object]:
    return token_claims("alice", **overrides)


def test_minted_token_round_trips() -> None:
    who = verify(mint(SETTINGS, "bob", Role.ORGANIZER), SETTINGS)
    assert (who.sub, who.role) == ("bob", Role.ORGANIZER)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (sign(claims(exp=datetime.now(UTC) - timedelta(minutes=5))), "expired"),
        (sign(claims(), key="wrong-secret-wrong-secret-wrong-secret"), "signature"),
        (sign(claims(exp=None)), "exp"),
        (sign(claims(sub=None)), "sub"),
        (sign(claims(role=None)), "role"),
        (sign(claims(role="admin")), "role"),
        (sign(claims(sub="")), "sub"),
        (jwt.encode(claims(), key="", algorithm="none"), "alg"),
        ("not-a-jwt", "invalid"),
    ],
)
def test_bad_tokens_are_refused(token: str, reason: str) -> None:
    with pytest.raises(Unauthorized):
        verify(token, SETTINGS)


def test_audience_and_issuer_are_checked_when_configured() -> None:
    strict = Settings(
        jwt_secret="s3cret-for-tests-that-is-long-enough-32b",
        jwt_audience="hc",
        jwt_issuer="idp",
        env="test",
    )
    good = sign(claims(aud="hc", iss="idp"))
    assert verify(good, strict).sub == "alice"
    for bad in (
        sign(claims(aud="other", iss="idp")),
        sign(claims(aud="hc", iss="evil")),
        sign(claims()),
    ):
        with pytest.raises(Unauthorized):
            verify(bad, strict)


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValueError, match="development secret"):
        Settings(env="production", jwt_secret=DEV_JWT_SECRET)
    assert (
        Settings(env="production", jwt_secret="a-real-production-secret-of-32-bytes-or-more").env
        == "production"
    )


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(env="production", jwt_secret="short")


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "LEEWAY_SECONDS", 0)
    # Long enough that a loaded machine still verifies it twice before it lapses.
    token = sign(claims(sub="cached", exp=int(time.time()) + 3))
    assert verify(token, SETTINGS).sub == "cached"
    assert verify(token, SETTINGS).sub == "cached"  # served from the cache
    time.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.2
    )
    with pytest.raises(Unauthorized, match="expired"):
        verify(token, SETTINGS)


def test_the_cache_is_keyed_by_the_signature_and_the_settings() -> None:
    token = sign(claims(sub="keyed"))
    assert verify(token, SETTINGS).sub == "keyed"
    head, body, _ = token.split(".")
    forged = f"{head}.{body}.{jwt.utils.base64url_encode(b'x' * 32).decode()}"
    with pytest.raises(Unauthorized):
        verify(forged, SETTINGS)
    other = Settings(jwt_secret="another-secret-that-is-also-long-enough-32b", env="test")
    with pytest.raises(Unauthorized):
        verify(token, other)
