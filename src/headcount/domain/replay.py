"""What each change does to the ledger's counters: the change log replayed, without I/O.

A change's payload carries the quantities its decision moved (an order's items, an
offer's size, a party size), so folding an event's changes in position order gives the
counters the ledger keeps: ticket types' held, offered and sold units, registrations,
session seats and huddle members. `reconcile` compares the two (ledger/reconcile.py), and
retention folds the changes it deletes into baselines with the same function
(ledger/changes.prune), so the replay stays exact after pruning.

Pool use and the event's ticket count are not folded here: both are sums of their ticket
types' use (held + offered + sold), so reconcile derives them from the replayed types,
plus what holds on the pool itself set aside (`pool:<id>:held`, folded here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from headcount.domain.changes import ChangeType

# Counter names, one per kind of resource: `<kind>:<id>:<counter>` keys (`key`).
HELD, OFFERED, SOLD = "held", "offered", "sold"  # ticket_type (held: also pool)
REGISTERED = "registered"  # event
ATTENDANCE = "attendance"  # session
MEMBERS = "members"  # huddle
INSIDE = "inside"  # area

Effect = tuple[str, int]


def key(kind: str, resource_id: str, counter: str) -> str:
    return f"{kind}:{resource_id}:{counter}"


def split_key(counter_key: str) -> tuple[str, str, str]:
    kind, resource_id, counter = counter_key.split(":", 2)
    return kind, resource_id, counter


def _items(payload: Mapping[str, Any], counter: str, sign: int) -> Iterator[Effect]:
    for item in payload.get("items", ()):
        yield key("ticket_type", item["ticket_type_id"], counter), sign * int(item["quantity"])


def _order(type_: ChangeType, payload: Mapping[str, Any]) -> Iterator[Effect]:
    previous = payload.get("previous_status")
    if type_ is ChangeType.ORDER_CREATED:
        yield from _items(payload, HELD, +1)
    elif type_ is ChangeType.ORDER_CONFIRMED:
        if previous == "pending":  # a hold becomes a sale; an expired order is sold again
            yield from _items(payload, HELD, -1)
        yield from _items(payload, SOLD, +1)
    elif type_ in (ChangeType.ORDER_CANCELLED, ChangeType.ORDER_EXPIRED):
        yield from _items(payload, HELD, -1)
    elif type_ is ChangeType.ORDER_REFUNDED:
        yield from _items(payload, SOLD, -1)


# An organizer hold is held stock: made, it holds its units; released or redeemed, it
# gives them up (a redemption's own `order.created` holds them again). A split moves
# units between two holds and nothing else.
_ALLOTMENT_HELD = {
    ChangeType.ORGANIZER_HOLD_CREATED: +1,
    ChangeType.ORGANIZER_HOLD_RELEASED: -1,
    ChangeType.ORGANIZER_HOLD_REDEEMED: -1,
}


_OFFER_ENDS = (
    ChangeType.WAITLIST_OFFER_EXPIRED,
    ChangeType.WAITLIST_DECLINED,
    ChangeType.WAITLIST_ACCEPTED,  # the order's own `order.created` holds what it used
)


def effects(type_name: str, event_id: str, payload: Mapping[str, Any]) -> list[Effect]:
    """The counter moves of one change of `event_id`: (counter key, delta) pairs, or none."""
    try:
        type_ = ChangeType(type_name)
    except ValueError:
        return []  # a type this version does not know moves nothing it keeps
    if (special := _ticket_or_door(type_, payload)) is not None:
        return special
    found: list[Effect] = []
    if type_ is ChangeType.WAITLIST_OFFERED:
        found.append((key("ticket_type", payload["ticket_type_id"], OFFERED), _n(payload)))
    elif type_ in _OFFER_ENDS:
        found.append((key("ticket_type", payload["ticket_type_id"], OFFERED), -_n(payload)))
    elif type_ in (ChangeType.RSVP_CONFIRMED, ChangeType.WAITLIST_PROMOTED):
        found.append((key("session", payload["session_id"], ATTENDANCE), +1))
    elif type_ is ChangeType.RSVP_CANCELLED:
        found.append((key("session", payload["session_id"], ATTENDANCE), -1))
    elif type_ is ChangeType.REGISTRATION_CREATED:
        found.append((key("event", event_id, REGISTERED), int(payload["party_size"])))
    elif type_ is ChangeType.REGISTRATION_UPDATED:
        delta = int(payload["party_size"]) - int(payload["previous_party_size"])
        found.append((key("event", event_id, REGISTERED), delta))
    elif type_ is ChangeType.REGISTRATION_CANCELLED:
        found.append((key("event", event_id, REGISTERED), -int(payload["party_size"])))
    elif type_ is ChangeType.HUDDLE_JOINED:
        found.append((key("huddle", payload["huddle_id"], MEMBERS), +1))
    elif type_ is ChangeType.HUDDLE_LEFT:
        found.append((key("huddle", payload["huddle_id"], MEMBERS), -1))
    return found


def _ticket_or_door(type_: ChangeType, payload: Mapping[str, Any]) -> list[Effect] | None:
    """Orders, organizer holds and the door; None for the other types."""
    if type_.value.startswith("order."):
        return list(_order(type_, payload))
    if type_ in _ALLOTMENT_HELD:
        sign = _ALLOTMENT_HELD[type_]
        if (pool_id := payload.get("pool_id")) is not None:
            return [(key("pool", pool_id, HELD), sign * int(payload["quantity"]))]
        return list(_items(payload, HELD, sign))
    if type_ is ChangeType.TICKET_RELEASED or type_.value.startswith("area."):
        return _door(type_, payload)
    return None


def _door(type_: ChangeType, payload: Mapping[str, Any]) -> list[Effect]:
    """A ticket unit given back to sale after its holder left; a scan's occupancy moves."""
    if type_ is ChangeType.TICKET_RELEASED:
        return list(_items(payload, SOLD, -1))
    moved = payload.get("moves") or {}
    return [(key("area", area_id, INSIDE), int(delta)) for area_id, delta in moved.items()]


def _n(payload: Mapping[str, Any]) -> int:
    return int(payload["offered_quantity"])


def fold(
    changes: Iterable[tuple[str, str, Mapping[str, Any]]], into: dict[str, int]
) -> dict[str, int]:
    """Add the effects of (type, event id, payload) changes to the counters `into`."""
    for type_name, event_id, payload in changes:
        for counter_key, delta in effects(type_name, event_id, payload):
            into[counter_key] = into.get(counter_key, 0) + delta
    return into
