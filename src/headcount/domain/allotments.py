"""Organizer holds ("allotments"): stock an organizer set aside by name, as pure rules.

The codebase already calls a pending order "a hold" (`HEADCOUNT_HOLD_TTL`), so the code
names the organizer's kind an allotment; the API keeps the issue's `/holds` path.

An allotment's units are held stock like a pending order's (`quantity_reserved`, the
pools, the event cap), taken by the same statements. Its `quantity` only ever shrinks
after creation: a split moves units to a new allotment, a release gives them to the
public, a redemption turns them into a buyer's order. Nothing here touches I/O.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from headcount.domain.errors import HoldCodeRefused, HoldShort, InvalidRequest

MAX_CODE_LENGTH = 100


def check_release_at(release_at: datetime | None, now: datetime) -> None:
    """A release time in the past would release at once: ask for a release instead."""
    if release_at is not None and release_at <= now:
        raise InvalidRequest("release_at must be in the future; release the hold instead")


def take(allotment_id: str, held: int, asked: int) -> int:
    """What is left after taking `asked` of `held`; refuses asking for more than is held.

    The caller's conditional UPDATE re-checks this against the locked row: this check
    only gives the refusal its words without a statement."""
    if asked > held:
        raise HoldShort(
            f"the hold has {held} unit(s); {asked} were asked for",
            hold_id=allotment_id,
            remaining=held,
            requested=asked,
        )
    return held - asked


def may_redeem(*, code: str | None, offered: str | None, manager: bool) -> None:
    """The event's organizer redeems any hold; anyone else needs the hold's own code.

    Compared in constant time: the code is a bearer secret handed to sponsors and press.
    A hold without a code is the organizer's alone to redeem.
    """
    if manager:
        return
    if code is None or offered is None:
        raise HoldCodeRefused("this hold is redeemed by its organizer or with its code")
    if not hmac.compare_digest(code.encode(), offered.encode()):
        raise HoldCodeRefused("the redemption code does not match this hold")
