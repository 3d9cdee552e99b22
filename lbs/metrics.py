"""Prometheus metrics: request counts and latencies by route, skipped requests, index size.

Under gunicorn each worker is a process; ``lbs serve`` sets PROMETHEUS_MULTIPROC_DIR
so that /metrics sums every worker (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("lbs_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "lbs_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS_DROPPED = Counter(
    "lbs_events_dropped_total", "Impressions and clicks dropped: more pending than the buffer holds"
)
EVENTS_WRITTEN = Counter("lbs_events_written_total", "Impressions and clicks written from the buffer")
INDEX_MERCHANTS = Gauge(
    "lbs_index_merchants", "Active merchants in the nearby index", multiprocess_mode="max"
)
INDEX_BUILD_SECONDS = Gauge(
    "lbs_index_build_seconds", "Seconds the last nearby index build took", multiprocess_mode="max"
)
REQUESTS_SKIPPED = Counter(
    "lbs_http_requests_skipped_total",
    "Requests answered without running: the client had gone, or they waited past their deadline",
    ["reason"],
)

PAYMENT_ORDERS = Counter(
    "lbs_payment_orders_total",
    "Prepaid orders placed (pending) and moved on, by the status reached",
    ["status"],
)
PAYMENT_REFUNDS = Counter("lbs_payment_refunds_total", "Refunds the provider has made, by reason", ["reason"])
PAYMENT_WEBHOOKS = Counter(
    "lbs_payment_webhooks_total",
    "Provider webhook deliveries: applied, duplicate, bad_signature",
    ["outcome"],
)
PAYMENT_PROVIDER_ERRORS = Counter(
    "lbs_payment_provider_errors_total", "Calls to the payment provider that failed (retried later)"
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
