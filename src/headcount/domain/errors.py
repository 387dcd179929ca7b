"""Every refusal Headcount can give, one type each.

Each error carries a stable `code` that clients branch on, and an HTTP status; the API layer
maps them once to RFC 9457 problem responses (REST) or typed results (GraphQL). Extra
keyword arguments become extension members of the problem body (e.g. `ticket_type_id`).
"""

from __future__ import annotations

from typing import Any, ClassVar


class HeadcountError(Exception):
    """A refusal: the request was understood and deliberately not carried out."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(HeadcountError):
    code = "invalid_request"
    status = 422
    title = "The request is not valid"


class MalformedRequest(HeadcountError):
    code = "malformed_request"
    status = 400
    title = "The request body could not be parsed"


class PayloadTooLarge(HeadcountError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class InvalidQuantity(HeadcountError):
    code = "invalid_quantity"
    status = 422
    title = "Quantity not allowed"


class Unauthorized(HeadcountError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class Forbidden(HeadcountError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class NotFound(HeadcountError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(HeadcountError):
    code = "conflict"
    status = 409
    title = "Conflicts with the current state"


class IdempotencyKeyReused(HeadcountError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key was already used for a different request"


class SoldOut(HeadcountError):
    code = "sold_out"
    status = 409
    title = "Sold out"


class PoolExhausted(SoldOut):
    """A shared capacity pool has too little left; names `pool_id` (issue 4)."""

    code = "pool_exhausted"
    title = "The shared capacity pool is exhausted"


class CustomerLimitReached(HeadcountError):
    """The buyer already holds or bought as many as `max_per_customer` allows."""

    code = "customer_limit_reached"
    status = 409
    title = "Per-customer limit reached"


class SalesClosed(HeadcountError):
    code = "sales_closed"
    status = 409
    title = "Sales are not open"


class HoldExpired(HeadcountError):
    code = "hold_expired"
    status = 409
    title = "The hold expired and the stock is gone"


class EventFull(HeadcountError):
    code = "event_full"
    status = 409
    title = "The event is full"


class SessionFull(HeadcountError):
    code = "session_full"
    status = 409
    title = "The session is full"


class NotRegistered(HeadcountError):
    """RSVPs and session seats are for people registered for the event."""

    code = "not_registered"
    status = 403
    title = "Register for the event first"


class ViewerLimitReached(HeadcountError):
    code = "viewer_limit_reached"
    status = 409
    title = "The stream has reached its viewer limit"


class BoothFull(HeadcountError):
    code = "booth_full"
    status = 409
    title = "The booth is full"


class HuddleFull(HeadcountError):
    code = "huddle_full"
    status = 409
    title = "The huddle is full"


class RoomFull(HeadcountError):
    code = "room_full"
    status = 409
    title = "The breakout room is full"


class RoomClosed(HeadcountError):
    code = "room_closed"
    status = 409
    title = "The breakout room is closed"


class LeaseExpired(HeadcountError):
    """The lease ran out (missed heartbeats), was released, or was lost: join again."""

    code = "lease_expired"
    status = 410
    title = "The lease is no longer held"


class RateLimited(HeadcountError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class ServiceUnavailable(HeadcountError):
    code = "service_unavailable"
    status = 503
    title = "A backing service is unavailable"


class Timeout(HeadcountError):
    code = "timeout"
    status = 503
    title = "The operation timed out"
