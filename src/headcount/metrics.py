"""Prometheus metrics. Domain outcomes are counted in the service layer, latency in the API."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ORDERS_CREATED = Counter("headcount_orders_created_total", "Orders created (stock held)")
ORDERS_REFUSED = Counter(
    "headcount_orders_refused_total", "Order attempts refused, by problem code", ["code"]
)
ORDERS_CONFIRMED = Counter("headcount_orders_confirmed_total", "Orders confirmed as paid")
HOLDS_EXPIRED = Counter("headcount_holds_expired_total", "Pending orders whose hold expired")
ADMISSIONS = Counter(
    "headcount_admissions_total",
    "Admission decisions for every capacity kind",
    ["kind", "outcome"],
)
REQUEST_LATENCY = Histogram(
    "headcount_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_ATTEMPTS = Counter(
    "headcount_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"]
)
CHANGES_SEQUENCED = Counter(
    "headcount_changes_sequenced_total", "Changes given a position in the change log"
)
CHANGE_LAG = Histogram(
    "headcount_change_sequence_lag_seconds",
    "Per sequencer run, from the oldest change's decision to its position (the feed's lag)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHANGES_PRUNED = Counter("headcount_changes_pruned_total", "Changes removed by retention")
