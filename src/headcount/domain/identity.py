"""Who is asking. Headcount owns no accounts: identity arrives as verified JWT claims."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ATTENDEE = "attendee"
    ORGANIZER = "organizer"
    # The platform's own backend (e.g. the payment service confirming an order).
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as its verified token names it: `sub` is the identity provider's subject,
    which Headcount stores as given (an organizer's or attendee's id) and never issues."""

    sub: str
    role: Role

    @property
    def is_organizer(self) -> bool:
        return self.role is Role.ORGANIZER

    @property
    def is_service(self) -> bool:
        return self.role is Role.SERVICE

    def manages(self, organizer_id: str) -> bool:
        """Organizers manage their own events; the platform service manages all of them."""
        return self.is_service or (self.is_organizer and self.sub == organizer_id)
