"""Moving a runtime's clock in a test, and always putting it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from headcount.capacity.views import OrderView
from headcount.runtime import Runtime


@contextmanager
def past_hold(rt: Runtime, order: OrderView) -> Iterator[None]:
    """`rt`'s clock one second past `order`'s hold, as the sweeper and the next buyer would
    see it; the real clock again afterwards, so later steps of the test are not in the
    future."""
    real = rt.clock
    rt.clock = lambda: order.expires_at + timedelta(seconds=1)
    try:
        yield
    finally:
        rt.clock = real
