"""Event registrations (with guests): the same service calls as `api/rest/registrations.py`."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import change, mine
from headcount.api.graphql.refusals import result_union
from headcount.api.graphql.types import Registered, RegistrationList
from headcount.capacity import registrations
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.views import RegistrationView
from headcount.domain.errors import Conflict, EventFull, IdempotencyKeyReused, InvalidQuantity

RegistrationResult: Any = result_union("RegistrationResult", RegistrationView)
RegistrationListResult: Any = result_union("RegistrationListResult", RegistrationList)
RegisterResult: Any = result_union(
    "RegisterResult", Registered, EventFull, InvalidQuantity, IdempotencyKeyReused, Conflict
)
CancelRegistrationResult: Any = result_union(
    "CancelRegistrationResult", RegistrationView, IdempotencyKeyReused, Conflict
)


def _registered(made: tuple[RegistrationView, bool]) -> Registered:
    return Registered(registration=made[0], created=made[1])


@strawberry.type
class RegistrationQuery:
    @mine(registrations.my_registration)
    def my_registration(self, event_id: strawberry.ID) -> RegistrationResult:
        """The caller's registration for the event (also when cancelled)."""

    @mine(
        registrations.list_registrations, wrap=lambda found: RegistrationList(registrations=found)
    )
    def registrations(self, event_id: strawberry.ID) -> RegistrationListResult:
        """Every registration of the event (its organizer only)."""


@strawberry.type
class RegistrationMutation:
    @change(registrations.register, draft=RegistrationDraft, wrap=_registered)
    def register_for_event(self, event_id: strawberry.ID) -> RegisterResult:
        """Register (with guests) for the event; `EventFull` when no room is left."""

    @change(registrations.cancel_registration)
    def cancel_registration(self, event_id: strawberry.ID) -> CancelRegistrationResult:
        """Cancel: also gives up your session seats and session waitlist places."""
