"""Who and which request caused what the ledger is about to record.

Set once per request by the API layer (the request id by middleware, the caller by the
auth dependency) and per background duty (the system), and read where a change is
recorded (`ledger/changes.py`), so that a waitlist promotion deep inside a cancellation
is attributed to the cancelling request without threading the caller through every
ledger call. Work that serves several callers at once (a batch of holds) passes each
caller's origin explicitly instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Origin:
    actor_sub: str | None = None
    actor_role: str | None = None
    request_id: str | None = None


SYSTEM = Origin(actor_sub="headcount", actor_role="system")

_current: ContextVar[Origin] = ContextVar("headcount_origin", default=SYSTEM)


def current() -> Origin:
    return _current.get()


def begin_request(request_id: str) -> None:
    """A new request: no caller known yet (the auth dependency adds it)."""
    _current.set(Origin(request_id=request_id))


def set_actor(sub: str, role: str) -> None:
    _current.set(replace(_current.get(), actor_sub=sub, actor_role=role))


def as_system() -> None:
    """Background duties (sweeps, relays) act as the service itself."""
    _current.set(SYSTEM)
