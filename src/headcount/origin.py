"""Who and which request caused what the ledger is about to record.

Set once per request by the API layer (the request id by middleware, the caller by the
auth dependency) and per background duty (the system), and read where a change is
recorded (`ledger/changes.py`), so that a waitlist promotion deep inside a cancellation
is attributed to the cancelling request without threading the caller through every
ledger call. Work that serves several callers at once (a batch of holds) passes each
caller's origin explicitly instead.

A context variable, so each request's task sees its own: uvicorn runs every request in a
task of its own, and the middleware resets the variable when the request ends (an
in-process client calls the app in its own task and must not inherit the last request).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
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


def begin_request(request_id: str) -> Token[Origin]:
    """A new request: no caller known yet (the auth dependency adds it). Give the token
    back to `end_request` when the request is answered."""
    return _current.set(Origin(request_id=request_id))


def end_request(token: Token[Origin]) -> None:
    _current.reset(token)


def set_actor(sub: str, role: str) -> None:
    found = _current.get()
    if found.actor_sub != sub or found.actor_role != role:
        _current.set(replace(found, actor_sub=sub, actor_role=role))


def as_system() -> None:
    """Background duties (sweeps, the sequencer, retention) act as the service itself."""
    _current.set(SYSTEM)


def system_within() -> Origin:
    """The service acting on its own inside someone's request: a hold or an offer that
    lapsed and was released lazily by a buyer's order is the system's doing, but the
    request that set it off is still worth knowing."""
    return replace(SYSTEM, request_id=_current.get().request_id)
