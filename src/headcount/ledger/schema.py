"""Every ledger table, imported in one place so Alembic and tests see the whole metadata.

Feature modules that add tables register them by being imported here.
"""

from __future__ import annotations

from headcount.ledger import (
    allotments,
    attendance,
    buckets,
    changes,
    models,
    pools,
    spaces,
    venue,
    waiting_rooms,
    webhooks,
)
from headcount.ledger.models import Base

metadata = Base.metadata

__all__ = [
    "allotments",
    "attendance",
    "buckets",
    "changes",
    "metadata",
    "models",
    "pools",
    "spaces",
    "venue",
    "waiting_rooms",
    "webhooks",
]
