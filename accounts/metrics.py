"""Prometheus metrics at /metrics, through prometheus-client.

Two kinds of figures:
- per web process: request latency per view (a histogram; with several
  gunicorn workers set PROMETHEUS_MULTIPROC_DIR, as prometheus-client
  documents, and every process's figures are summed);
- kept in the database, so that any web process answers for every worker:
  counters (``MetricCounter``: task runs, durations, failures, mail sent and
  failed) and gauges read at scrape time (queue depth and oldest age, sweep
  lag, workers, and what other apps register with ``gauge``, such as bots
  up and down).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import Error as DatabaseFault
from django.db import connection, transaction
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import MetricCounter

logger = logging.getLogger("gatecheck.metrics")

PROCESS = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "gatecheck_request_seconds", "Time to answer a request, per view.", ["view", "method"], registry=PROCESS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

COUNTERS = {
    "tasks_total": "Task runs by task and outcome (successful, retried, failed, stopped, reclaimed).",
    "task_seconds_total": "Seconds spent running each task.",
    "mail_total": "E-mails by outcome (sent, failed).",
}
# name -> (help, function returning {labels: value}); other apps add theirs.
GAUGES: dict[str, tuple[str, Callable[[], dict[tuple[tuple[str, str], ...], float]]]] = {}


def gauge(name: str, help_text: str):
    """Register a gauge read from the database at scrape time."""

    def decorator(read: Callable[[], dict]) -> Callable[[], dict]:
        GAUGES[name] = (help_text, read)
        return read

    return decorator


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def counter_add(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a database counter, in one upsert; a database that refuses is
    logged, never raised."""
    table = MetricCounter._meta.db_table
    try:
        # In a savepoint: a refused upsert leaves the caller's transaction usable.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, labels, value) VALUES (%s, %s, %s) "  # noqa: S608 (the table name is ours)
                f"ON CONFLICT (name, labels) DO UPDATE SET value = {table}.value + excluded.value",
                [name, _labels(labels), amount],
            )
    except DatabaseFault:
        logger.warning("metrics: counter %s not recorded (database refused)", name)


class DatabaseCollector:
    """Counters and gauges kept in the database, read at scrape time."""

    def collect(self) -> Iterable:
        rows: dict[str, list[tuple[list[list[str]], float]]] = {name: [] for name in COUNTERS}
        for name, labels, value in MetricCounter.objects.filter(name__in=list(COUNTERS)).order_by("name", "labels").values_list("name", "labels", "value"):
            rows[name].append(([pair.split("=", 1) for pair in labels.split(",") if pair], value))
        for name, found in rows.items():
            keys = [key for key, _ in found[0][0]] if found else []
            family = CounterMetricFamily(f"gatecheck_{name.removesuffix('_total')}", COUNTERS[name], labels=keys)
            for pairs, value in found:
                if [key for key, _ in pairs] == keys:
                    family.add_metric([v for _, v in pairs], value)
            yield family
        for name, (text, read) in GAUGES.items():
            values = read()
            keys = [key for key, _ in next(iter(values), ())] if values else []
            family = GaugeMetricFamily(f"gatecheck_{name}", text, labels=keys)
            for labels, value in values.items():
                family.add_metric([v for _, v in labels], value)
            yield family


def exposition() -> bytes:
    """The text exposition of every metric."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)
    else:
        process = PROCESS
    return generate_latest(process) + generate_latest(registry)


# 32 characters of `secrets.token_urlsafe` carry 192 bits; a shorter token is ignored.
MIN_TOKEN_LENGTH = 32


def scrape_allowed(request, client_ip: str | None) -> bool:
    """A bearer token equal to GATECHECK_METRICS_TOKEN, or a client address in
    GATECHECK_METRICS_NETWORKS; with neither configured, nobody."""
    token = settings.GATECHECK_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if len(token) >= MIN_TOKEN_LENGTH and header.startswith("Bearer "):
        # Digests of equal length, compared in constant time.
        given = hashlib.sha256(header[7:].strip().encode()).digest()
        if hmac.compare_digest(given, hashlib.sha256(token.encode()).digest()):
            return True
    if request.META.get("HTTP_X_FORWARDED_FOR") and not settings.GATECHECK_TRUSTED_PROXY_COUNT:
        # Behind a proxy the app was not told about, every client has the
        # proxy's address: the network rule would let the internet in.
        return False
    if client_ip and settings.GATECHECK_METRICS_NETWORKS:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in settings.GATECHECK_METRICS_NETWORKS)
    return False
