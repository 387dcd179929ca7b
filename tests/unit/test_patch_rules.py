"""The PATCH rule of events, ticket types, pools and sessions, declared on each model.

A field sent as `null` is cleared only where the model declares it nullable (text is
cleared to ""); `null` for any other field is refused as invalid input before a service
runs. No service keeps its own list.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from headcount.capacity.events import EventPatch
from headcount.capacity.inputs import Patch
from headcount.capacity.pools import PoolPatch
from headcount.capacity.sessions import SessionPatch
from headcount.capacity.tickets import TicketTypePatch

# Today's contract, per model: the fields `null` may clear.
NULLABLE: dict[type[Patch], set[str]] = {
    EventPatch: {"description", "starts_at", "ends_at", "max_attendees", "virtual_settings"},
    TicketTypePatch: {
        "max_per_order",
        "sales_start",
        "sales_end",
        "min_per_order",
        "max_per_customer",
    },
    PoolPatch: {"capacity", "max_per_customer"},
    SessionPatch: {"description", "starts_at", "ends_at"},
}


@pytest.mark.parametrize("model", list(NULLABLE), ids=lambda m: m.__name__)
def test_null_clears_exactly_the_declared_fields(model: type[Patch]) -> None:
    assert NULLABLE[model] == model.NULLABLE
    for name in model.model_fields:
        if name in NULLABLE[model]:
            assert name in model.model_validate({name: None}).changes()
        else:
            with pytest.raises(ValidationError, match=f"{name} cannot be null"):
                model.model_validate({name: None})


@pytest.mark.parametrize("model", [EventPatch, SessionPatch], ids=lambda m: m.__name__)
def test_a_cleared_description_is_empty_text(model: type[Patch]) -> None:
    assert model.model_validate({"description": None}).changes() == {"description": ""}


def test_only_sent_fields_change() -> None:
    assert PoolPatch.model_validate({"capacity": None}).changes() == {"capacity": None}
    assert TicketTypePatch.model_validate({"name": "VIP"}).changes() == {"name": "VIP"}
    assert EventPatch().changes() == {}
