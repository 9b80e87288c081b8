"""Prometheus metrics: counters kept in memory by the hot path, and gauges that need the
database, read at scrape time.

Names follow Prometheus' conventions (``chathooks_`` prefix, base units in the name,
``_total`` counters, ``_seconds`` histograms). Labels take a handful of fixed values;
workspace and webhook ids never become labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chathooks.deliver.transport import Outcome
from chathooks.runtime import Runtime
from chathooks.sources.kinds import KINDS, SENDERS
from chathooks.sources.screening import REASONS
from chathooks.states import TIMED_OUT, FailureClass, WebhookState
from chathooks.store import outgoing, stats

log = logging.getLogger("chathooks.metrics")

SOURCES = ("api", *KINDS)
"""How messages come in: the API, or a WhatsApp source of one of these kinds."""
OUTCOMES = ("success", "redirect", "client_error", "server_error", "timeout", "network_error")

LATENCY_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENCY_BUCKETS += (300, 900, 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600)
"""Seconds: a single message takes milliseconds, a bundled one up to its 24 h period."""

MESSAGES_INGESTED = Counter(
    "chathooks_messages_ingested_total",
    "Messages stored (duplicates not counted), by the way they came in.",
    ["source"],
)
WEBHOOK_REQUESTS = Counter(
    "chathooks_webhook_requests_total",
    "Requests made to outbound webhooks, by outcome.",
    ["outcome"],
)
WEBHOOK_REQUEST_SECONDS = Histogram(
    "chathooks_webhook_request_duration_seconds",
    "Time from sending a webhook request to its answer (or error).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
DELIVERY_LATENCY_SECONDS = Histogram(
    "chathooks_message_delivery_latency_seconds",
    "Time from a message's ingest to its receipt by a webhook (a 2xx answer); a bundled "
    "message includes the wait for its period to end.",
    buckets=LATENCY_BUCKETS,
)
ALERT_EMAILS = Counter(
    "chathooks_alert_emails_total",
    "Alert e-mails handed to the SMTP server or outbox, by outcome (failed ones are retried).",
    ["outcome"],
)
FAILED_ATTEMPTS = Counter(
    "chathooks_webhook_failed_attempts_total",
    "Failed attempts of outbound webhooks (requests failing together count once, as in a "
    "webhook's failure count), by the class of the attempt's last failure.",
    ["class"],
)
SOURCE_REFUSALS = Counter(
    "chathooks_source_refusals_total",
    "Requests to a source's URL refused (4xx, nothing stored), by the source's kind and why: "
    "its key is unknown, the body is too large or not JSON, the signature is missing, of an "
    "unexpected algorithm or wrong, the body's apikey is missing or wrong.",
    ["kind", "reason"],
)
RETENTION_REMOVED = Counter(
    "chathooks_retention_removed_rows_total",
    "Rows removed by retention, by table.",
    ["table"],
)
SENDS = Counter(
    "chathooks_sends_total",
    "Attempts to send a message through a source's sender, by the source's kind and outcome: "
    "sent, retry (timeout, connection error, 429 or 5xx: tried again later) or failed.",
    ["kind", "outcome"],
)
SEND_OUTCOMES = ("sent", "retry", "failed")

for _source in SOURCES:
    MESSAGES_INGESTED.labels(_source)
for _outcome in OUTCOMES:
    WEBHOOK_REQUESTS.labels(_outcome)
for _outcome in ("sent", "failed"):
    ALERT_EMAILS.labels(_outcome)
for _class in FailureClass:
    FAILED_ATTEMPTS.labels(_class)
for _kind in KINDS:
    for _reason in REASONS:
        SOURCE_REFUSALS.labels(_kind, _reason)
SOURCE_REFUSALS.labels("unknown", "unknown_key")
for _kind in SENDERS:
    for _outcome in SEND_OUTCOMES:
        SENDS.labels(_kind, _outcome)


def count_ingested(source: str, count: int) -> None:
    """Called once a request's messages are committed; ``source`` is how they came in."""
    if count:
        MESSAGES_INGESTED.labels(source).inc(count)


def count_refused(kind: str, reason: str) -> None:
    """A request to a source's URL refused: ``kind`` is the source's (``unknown`` for a key
    no source has), ``reason`` one of ``screening.REASONS`` (or ``unknown_key``)."""
    SOURCE_REFUSALS.labels(kind, reason).inc()


def outcome_label(outcome: Outcome) -> str:
    if outcome.status is None:
        return "timeout" if outcome.error == TIMED_OUT else "network_error"
    if outcome.status < 300:
        return "success" if outcome.status >= 200 else "client_error"
    if outcome.status < 400:
        return "redirect"
    return "client_error" if outcome.status < 500 else "server_error"


def observe_request(outcome: Outcome, received: Sequence[datetime], now: datetime) -> None:
    """One webhook request; on success, the ingest→receipt time of each message it carried."""
    WEBHOOK_REQUESTS.labels(outcome_label(outcome)).inc()
    WEBHOOK_REQUEST_SECONDS.observe(outcome.latency_ms / 1000)
    if outcome.success:
        for at in received:
            DELIVERY_LATENCY_SECONDS.observe(max(0.0, (now - at).total_seconds()))


def count_send(kind: str, outcome: str) -> None:
    """One send attempt's outcome (``SEND_OUTCOMES``), once it is recorded."""
    SENDS.labels(kind, outcome).inc()


def count_failed_attempt(why: FailureClass) -> None:
    """Called once the attempt is recorded (after its commit)."""
    FAILED_ATTEMPTS.labels(why).inc()


def count_removed(removed: dict[str, int]) -> None:
    for table, count in removed.items():
        if count:
            RETENTION_REMOVED.labels(table).inc(count)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, with the queries of ``store.stats``;
    a database that does not answer leaves them out (and ``/readyz`` says why)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        try:
            with self.rt.transaction() as session:
                count, earliest = stats.waiting(session)
                by_state = stats.webhooks_by_state(session)
                queued, oldest = outgoing.queue_depth(session)
        except Exception as error:
            log.warning("metrics: the database did not answer: %s", error)
            return
        now = self.rt.clock.now()
        yield GaugeMetricFamily(
            "chathooks_deliveries_waiting",
            "Deliveries not yet delivered (due, backing off, or split bundles due later).",
            value=count,
        )
        age = max(0.0, (now - earliest).total_seconds()) if earliest else 0.0
        yield GaugeMetricFamily(
            "chathooks_oldest_waiting_delivery_age_seconds",
            "How long the longest-waiting delivery has been due (0 when none waits).",
            value=age,
        )
        yield GaugeMetricFamily(
            "chathooks_sends_queued",
            "Messages waiting to be sent through a sender (due, or backing off).",
            value=queued,
        )
        yield GaugeMetricFamily(
            "chathooks_oldest_queued_send_age_seconds",
            "How long the oldest queued send has waited (0 when none waits).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )
        webhooks = GaugeMetricFamily(
            "chathooks_webhooks",
            "Outbound webhooks, by status: enabled (healthy), failing (enabled, its latest "
            "attempt failed), disabled, auto_disabled.",
            labels=["status"],
        )
        for state in WebhookState:
            webhooks.add_metric([state], by_state.get(state, 0))
        yield webhooks


class _Together(Collector):
    def __init__(self, parts: Iterable[Collector]) -> None:
        self.parts = list(parts)

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


def exposition(rt: Runtime) -> bytes:
    """This process' metrics and the database gauges, in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(_Together([REGISTRY, DatabaseCollector(rt)]))
    return generate_latest(registry)
