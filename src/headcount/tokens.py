"""JWT verification (and minting, for local use). Headcount owns no accounts.

Only the configured algorithm is accepted, which rules out `alg: none` and HS/RS confusion;
`exp`, `sub` and `role` are required; audience and issuer are checked when configured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from headcount.config import Settings
from headcount.domain.errors import Unauthorized
from headcount.domain.identity import Principal, Role

LEEWAY_SECONDS = 10


def verify(token: str, settings: Settings) -> Principal:
    key = settings.jwt_public_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    assert key is not None  # guaranteed by Settings validation
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
        return Principal(sub=sub, role=Role(role))
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
