"""Rules of shared capacity pools and buyer limits, without I/O.

The counters live in the ledger; these functions decide the static numbers (a pool's
admission limit, how far over a lowered capacity is) and whether a buyer's request is
within their per-customer allowance, given counts the ledger took under a lock.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from headcount.domain.errors import CustomerLimitReached, InvalidRequest

MAX_OVERBOOK_RATIO = 10.0


def admission_limit(capacity: int | None, overbook_ratio: float) -> int | None:
    """floor(capacity * (1 + ratio)); None means unlimited.

    Decimal on the ratio's decimal text, not float arithmetic: 100 * 1.15 must admit 115,
    and binary floating point says 114.99999999999999.
    """
    if not 0 <= overbook_ratio <= MAX_OVERBOOK_RATIO:
        raise InvalidRequest(
            f"overbook_ratio must be between 0 and {MAX_OVERBOOK_RATIO}",
            overbook_ratio=overbook_ratio,
        )
    if capacity is None:
        return None
    if capacity < 0:
        raise InvalidRequest("capacity cannot be negative")
    scaled = Decimal(capacity) * (1 + Decimal(str(overbook_ratio)))
    return int(scaled.to_integral_value(rounding=ROUND_FLOOR))


def over_by(in_use: int, limit: int | None) -> int:
    """How far use exceeds a (lowered) limit; 0 when within it or unlimited."""
    return 0 if limit is None else max(0, in_use - limit)


def remaining(in_use: int, limit: int | None) -> int | None:
    return None if limit is None else max(0, limit - in_use)


def check_customer_limit(
    *, already: int, asking: int, limit: int | None, what: str, **extra: object
) -> None:
    """Raise unless `already + asking` stays within `limit` (None: no limit)."""
    if limit is None or already + asking <= limit:
        return
    raise CustomerLimitReached(
        f"at most {limit} of {what} per customer; you already hold or bought {already} "
        f"and asked for {asking}",
        max_per_customer=limit,
        already=already,
        requested=asking,
        **extra,
    )
