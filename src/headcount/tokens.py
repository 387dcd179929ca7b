"""JWT verification (and minting, for local use). Headcount owns no accounts.

Only the configured algorithm is accepted, which rules out `alg: none` and HS/RS confusion;
`exp`, `sub` and `role` are required; audience and issuer are checked when configured.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_decode

from headcount.config import Settings
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Principal, Role

LEEWAY_SECONDS = 10
# Verified tokens, so a client's every request does not pay PyJWT again (about a tenth of
# an order's CPU in bench/RESULTS.md). Keyed by the whole token (signature included) and
# the verification settings; an entry still checks `exp` on every use.
_VERIFIED: dict[tuple[str, ...], tuple[Principal, float]] = {}
_VERIFIED_MAX = 10_000


def verify(token: str, settings: Settings) -> Principal:
    key = settings.jwt_public_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    assert key is not None  # guaranteed by Settings validation
    cache_key = (
        token,
        settings.jwt_algorithm,
        key,
        settings.jwt_audience or "",
        settings.jwt_issuer or "",
    )
    cached = _VERIFIED.get(cache_key)
    if cached is not None:
        if time.time() <= cached[1] + LEEWAY_SECONDS:
            return cached[0]
        del _VERIFIED[cache_key]  # expired: verified again below, which says so
    principal, claims = _decode(token, key, settings)
    nbf = claims.get("nbf")
    if isinstance(claims.get("exp"), int | float) and (nbf is None or nbf <= time.time()):
        if len(_VERIFIED) >= _VERIFIED_MAX:
            del _VERIFIED[next(iter(_VERIFIED))]  # the oldest entry
        _VERIFIED[cache_key] = (principal, float(claims["exp"]))
    return principal


# What the fast path reads; a token carrying anything else (aud, iss, jti, custom claims)
# or another header goes through PyJWT.
_PLAIN_CLAIMS = frozenset({"sub", "role", "exp", "iat", "nbf"})
_PLAIN_HEADERS = ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256"})


@functools.lru_cache(maxsize=4)
def _hmac_key(secret: str) -> bytes:
    """The secret as PyJWT would use it (it refuses PEM/SSH-looking HMAC keys)."""
    key: bytes = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret)
    return key


def _plain_hs256(token: str, secret: str, settings: Settings) -> dict[str, Any] | None:
    """The claims of a plain HS256 token that PyJWT would accept too, else None.

    A stream start is thousands of first-time tokens at once, and PyJWT spends ~90 µs of
    Python on each (the HMAC itself is ~2 µs): the largest single cost of a WebSocket join
    (bench/RESULTS.md). This path accepts only a subset of what PyJWT accepts — the
    configured HS256, a header of just alg (and typ JWT), only the claims Headcount reads,
    with PyJWT's own time rules and leeway, no audience or issuer configured — and answers
    None for everything else, which PyJWT then decides (and explains) as before.
    """
    if settings.jwt_algorithm != "HS256" or settings.jwt_audience or settings.jwt_issuer:
        return None
    claims = _signed_claims(token, secret)
    return claims if claims is not None and _plain_and_current(claims) else None


def _signed_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The payload if the header is exactly HS256 and the signature matches, else None."""
    try:
        signing_input, _, signature = token.rpartition(".")
        header_b64, _, payload_b64 = signing_input.partition(".")
        if not header_b64 or "." in payload_b64:
            return None
        header = json.loads(base64url_decode(header_b64))
        claims = json.loads(base64url_decode(payload_b64))
        expected = hmac.new(_hmac_key(secret), signing_input.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, base64url_decode(signature)):
            return None
    except (ValueError, binascii.Error, UnicodeError, jwt.InvalidKeyError):
        return None
    return claims if header in _PLAIN_HEADERS and isinstance(claims, dict) else None


def _plain_and_current(claims: dict[str, Any]) -> bool:
    """Only the claims Headcount reads, well typed, valid now under PyJWT's own rules."""
    if not claims.keys() <= _PLAIN_CLAIMS or any(
        claims.get(name) is None
        for name in ("sub", "role", "exp")  # PyJWT: missing
    ):
        return False
    times = {name: claims[name] for name in ("exp", "iat", "nbf") if name in claims}
    if not isinstance(claims["sub"], str) or any(
        isinstance(v, bool) or not isinstance(v, int | float) for v in times.values()
    ):
        return False
    now = time.time()
    try:
        if int(times["exp"]) <= now - LEEWAY_SECONDS:  # PyJWT: expired
            return False
        # PyJWT: not yet valid
        return all(
            int(times[name]) <= now + LEEWAY_SECONDS for name in ("iat", "nbf") if name in times
        )
    except (ValueError, OverflowError):  # NaN, infinity: PyJWT says what it makes of them
        return False


def _decode(token: str, key: str, settings: Settings) -> tuple[Principal, dict[str, Any]]:
    claims = _plain_hs256(token, key, settings) or _pyjwt(token, key, settings)
    sub, role = claims.get("sub"), str(claims.get("role"))
    # Printable only: `sub` ends up in rows, lock keys and logs (a NUL cannot be stored).
    if not isinstance(sub, str) or not sub or len(sub) > 200 or not sub.isprintable():
        raise Unauthorized("invalid token: `sub` must be a non-empty printable string")
    try:
        return Principal(sub=sub, role=Role(role)), claims
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise Unauthorized(f"invalid token: `role` must be one of {allowed}") from exc


def _pyjwt(token: str, key: str, settings: Settings) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "role"], "verify_aud": bool(settings.jwt_audience)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    return claims


def mint(settings: Settings, sub: str, role: Role, *, ttl: timedelta = timedelta(hours=12)) -> str:
    """HS256 only: in production the platform's identity provider issues tokens."""
    if settings.jwt_algorithm != "HS256":
        raise ValueError("minting needs HEADCOUNT_JWT_ALGORITHM=HS256 and a shared secret")
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
