"""Prometheus metrics: one registry for the whole process, and small functions to feed it.

Why small functions instead of exporting the metric objects: the handlers and the
broadcaster then depend on "something happened", not on prometheus-client's API, and
label values stay bounded in one place (an unknown command is counted as `unknown`, not
by whatever name a user typed). Gauges that reflect state (outbox backlog, platforms
connected, broadcaster alive) are set at scrape time by the HTTP endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from bot.model import Gone, Moved, Outcome, Permanent, RetryAfter, Sent, Transient

# `*_created` series double the output and no dashboard of ours reads them.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "statement_bot_commands",
    "Commands handled, by command name (unknown names as 'unknown').",
    ["command"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "statement_bot_deliveries",
    "Send attempts of outbox deliveries, by platform and the platform's answer.",
    ["platform", "outcome"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "statement_bot_send_seconds",
    "Time one delivery's send took (all its parts), by platform.",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "statement_bot_rate_limited",
    "Rate-limit answers (Telegram 429, Matrix M_LIMIT_EXCEEDED) seen, by platform.",
    ["platform"],
    registry=REGISTRY,
)
BACKLOG = Gauge(
    "statement_bot_outbox_backlog",
    "Deliveries pending or being sent, by platform (read from the database at scrape time).",
    ["platform"],
    registry=REGISTRY,
)
CONNECTED = Gauge(
    "statement_bot_platform_connected",
    "1 when the platform is connected and receiving, else 0.",
    ["platform"],
    registry=REGISTRY,
)
BROADCASTER_ALIVE = Gauge(
    "statement_bot_broadcaster_alive",
    "1 when every broadcaster worker is running, else 0.",
    registry=REGISTRY,
)

_OUTCOME_LABELS: dict[type, str] = {
    Sent: "sent",
    RetryAfter: "rate_limited",
    Gone: "gone",
    Moved: "moved",
    Transient: "transient",
    Permanent: "permanent",
}


def command_handled(name: str) -> None:
    """Count one command; pass 'unknown' for names not in the registry."""
    COMMANDS.labels(command=name).inc()


def rate_limited(platform: str) -> None:
    """Count one rate-limit answer that an adapter absorbed itself (not an outcome)."""
    RATE_LIMITED.labels(platform=platform).inc()


def record_send(platform: str, outcome: Outcome, seconds: float) -> None:
    """One delivery's send: its outcome, its latency, and a 429 if it was one."""
    label = _OUTCOME_LABELS.get(type(outcome), "other")
    DELIVERIES.labels(platform=platform, outcome=label).inc()
    SEND_SECONDS.labels(platform=platform).observe(seconds)
    if isinstance(outcome, RetryAfter):
        RATE_LIMITED.labels(platform=platform).inc()


async def timed_send(platform: str, send: Awaitable[Outcome]) -> Outcome:
    """Await a send and record it: a one-line wrapper for the broadcaster."""
    started = time.monotonic()
    outcome = await send
    record_send(platform, outcome, time.monotonic() - started)
    return outcome


def set_state(
    backlog: Mapping[str, int], connected: Mapping[str, bool], broadcaster_alive: bool
) -> None:
    """The state gauges, refreshed just before a scrape."""
    for platform in set(backlog) | set(connected):
        BACKLOG.labels(platform=platform).set(backlog.get(platform, 0))
    for platform, is_connected in connected.items():
        CONNECTED.labels(platform=platform).set(1 if is_connected else 0)
    BROADCASTER_ALIVE.set(1 if broadcaster_alive else 0)


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
