"""JWT verification (and minting, for local use). Headcount owns no accounts.

Only the configured algorithm is accepted, which rules out `alg: none` and HS/RS confusion;
`exp`, `sub` and `role` are required; audience and issuer are checked when configured.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

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


def _decode(token: str, key: str, settings: Settings) -> tuple[Principal, dict[str, Any]]:
    try:
        claims = jwt.decode(
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
    sub, role = claims.get("sub"), str(claims.get("role"))
    # Printable only: `sub` ends up in rows, lock keys and logs (a NUL cannot be stored).
    if not isinstance(sub, str) or not sub or len(sub) > 200 or not sub.isprintable():
        raise Unauthorized("invalid token: `sub` must be a non-empty printable string")
    try:
        return Principal(sub=sub, role=Role(role)), claims
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise Unauthorized(f"invalid token: `role` must be one of {allowed}") from exc


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
