"""The checked-in schema.graphql is the live schema, so schema changes show up in review."""

from __future__ import annotations

import difflib

from headcount.api.graphql.export import SCHEMA_FILE, sdl

REGENERATE = ".venv/bin/python -m headcount.api.graphql.export   (or: make schema)"


def test_checked_in_schema_matches_the_live_schema() -> None:
    assert SCHEMA_FILE.exists(), f"{SCHEMA_FILE} is missing; create it with: {REGENERATE}"
    checked_in = SCHEMA_FILE.read_text(encoding="utf-8")
    live = sdl()
    if checked_in != live:
        diff = "".join(
            difflib.unified_diff(
                checked_in.splitlines(keepends=True),
                live.splitlines(keepends=True),
                "schema.graphql (checked in)",
                "live schema",
            )
        )
        raise AssertionError(
            f"schema.graphql is out of date; regenerate it with: {REGENERATE}\n"
            f"and commit it with your change.\n{diff}"
        )


def test_every_refusal_code_has_a_graphql_type() -> None:
    """A new refusal without a typed result would reach clients only as the catch-all."""
    from headcount.api.graphql.refusals import TYPES
    from headcount.domain import errors

    # Never a resolver's answer: the base class, bodies the HTTP layer cannot read (400,
    # 413), and what the client retries (429, 503), which stays a GraphQL error.
    untyped = {
        "error",
        "malformed_request",
        "payload_too_large",
        "rate_limited",
        "service_unavailable",
        "timeout",
    }

    def codes(cls: type[errors.HeadcountError]) -> set[str]:
        # The service's own refusals: a test's (test_presence_lounge.py) is no API's.
        found = {cls.code} if cls.__module__.startswith("headcount.") else set()
        for sub in cls.__subclasses__():
            found |= codes(sub)
        return found

    typed = {error.code for error in TYPES}
    missing = codes(errors.HeadcountError) - untyped - typed
    assert not missing, f"no GraphQL refusal type for {sorted(missing)}"
    assert not typed & untyped
