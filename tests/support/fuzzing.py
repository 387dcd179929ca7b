"""What the REST (OpenAPI) and GraphQL fuzz suites share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from schemathesis import APIOperation, BaseSchema
from schemathesis.core.result import Err

# The fuzzers are one user creating many orders on purpose: lift the per-user hold quota.
NO_ORDER_QUOTA = {"HEADCOUNT_MAX_PENDING_ORDERS_PER_USER": "0"}


def fuzz_settings(examples: int) -> settings:
    """`examples` per operation, the same ones on every run (derandomized, no example
    database) so a failure repeats; no deadline and no health checks, since every example
    is a request to a real server on a shared machine."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def operations(schema: BaseSchema) -> Iterator[APIOperation[Any, Any, Any, Any]]:
    """Every operation of the schema; one schemathesis cannot read fails the run."""
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()
