"""The door's pure rules: credentials, the nesting, the fold and its moves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headcount.domain.errors import MalformedCredential
from headcount.domain.occupancy import (
    CredentialKind,
    Direction,
    Outcome,
    ScanStep,
    fold,
    lineage,
    moves,
    parse_credential,
    step,
    warns,
)

# venue ⊃ hall ⊃ room; venue ⊃ lounge; a second venue apart.
PARENTS: dict[str, str | None] = {
    "venue": None,
    "hall": "venue",
    "room": "hall",
    "lounge": "venue",
    "annex": None,
}
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_credentials_parse_to_one_spelling() -> None:
    ticket = parse_credential(" ticket:ord_a/tt_b ")
    assert (ticket.kind, ticket.ref, ticket.sub_ref, ticket.unit) == (
        CredentialKind.TICKET,
        "ord_a",
        "tt_b",
        1,
    )
    assert str(ticket) == "ticket:ord_a/tt_b/1"
    assert str(parse_credential("registration:reg_x/3")) == "registration:reg_x/3"
    assert str(parse_credential("rsvp:ses_s/auth0|42")) == "rsvp:ses_s/auth0|42"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ticket",
        "ticket:",
        "ticket:ord_a",
        "ticket:ord_a/tt_b/0",
        "ticket:ord_a/tt_b/01",
        "ticket:ord_a/tt_b/1/2",
        "ticket:../etc/passwd",
        "registration:reg_x/-1",
        "rsvp:ses_s",
        "rsvp:ses_s/a b",
        "rsvp:ses_s/a/b",
        "badge:reg_x",
        "registration:" + "r" * 400,
    ],
)
def test_malformed_credentials_are_refused(text: str) -> None:
    with pytest.raises(MalformedCredential):
        parse_credential(text)


def test_lineage_and_moves_follow_the_nesting() -> None:
    assert lineage("room", PARENTS) == ["room", "hall", "venue"]
    assert lineage(None, PARENTS) == []
    assert moves(None, "room", PARENTS) == {"room": 1, "hall": 1, "venue": 1}
    assert moves("room", "lounge", PARENTS) == {"room": -1, "hall": -1, "lounge": 1}
    assert moves("hall", "venue", PARENTS) == {"hall": -1}
    assert moves("venue", "annex", PARENTS) == {"venue": -1, "annex": 1}


def test_steps() -> None:
    assert step(None, Direction.ENTRY, "hall", PARENTS) == ("hall", Outcome.ACCEPTED)
    assert step("room", Direction.ENTRY, "venue", PARENTS) == ("room", Outcome.ALREADY_INSIDE)
    assert step("room", Direction.EXIT, "hall", PARENTS) == ("venue", Outcome.ACCEPTED)
    assert step("lounge", Direction.EXIT, "hall", PARENTS) == ("lounge", Outcome.NOT_INSIDE)
    assert step("room", Direction.EXIT, "venue", PARENTS) == (None, Outcome.ACCEPTED)


def test_the_warning_starts_at_ninety_percent() -> None:
    assert [warns(n, 10) for n in (8, 9, 10, 11)] == [False, True, True, True]
    assert not warns(1000, None)
    assert not warns(0, 0)


scan_steps = st.lists(
    st.tuples(
        st.integers(0, 50),
        st.sampled_from(sorted(PARENTS)),
        st.sampled_from(list(Direction)),
    ),
    max_size=30,
)


@given(scan_steps, st.randoms())
def test_the_fold_ignores_upload_order_and_counts_stay_consistent(
    raw: list[tuple[int, str, Direction]], rng: random.Random
) -> None:
    scans = [
        ScanStep(T0 + timedelta(minutes=m), seq, area, d) for seq, (m, area, d) in enumerate(raw)
    ]
    shuffled = list(scans)
    rng.shuffle(shuffled)
    assert fold(scans, PARENTS) == fold(shuffled, PARENTS) == fold(scans + scans, PARENTS)
    # Replaying each prefix's moves gives the final lineage exactly once per area.
    inside: dict[str, int] = {}
    position = None
    for scan in sorted(scans, key=lambda s: (s.at, s.seq)):
        after, _ = step(position, scan.direction, scan.area_id, PARENTS)
        for area, delta in moves(position, after, PARENTS).items():
            inside[area] = inside.get(area, 0) + delta
        position = after
    assert {a: n for a, n in inside.items() if n} == dict.fromkeys(lineage(position, PARENTS), 1)
