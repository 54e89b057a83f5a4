"""SECURITY.md 36: logs are JSON in production, one line per event with the
request id and the user id, and hold no secret. The flows below handle
backup codes, calendar and ping addresses, an enrolment code and a reset
link, and poke the secret URLs with mistakes (404s are logged); a scan of
every captured line finds none of the secrets."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.logs import ContextFilter, JsonFormatter
from accounts.models import AlertChannel
from devices import services
from devices.models import Heartbeat
from tests import builders as build
from tests.test_shown_once import REASON

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """Everything logged while the test runs, as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def shown(client, response, pattern: str) -> str:
    return re.search(pattern, client.get(response["Location"]).content.decode()).group(0)


def test_flows_that_handle_secrets_leave_none_in_the_logs(alice, alice_client, lena, lena_client, json_log, settings):
    settings.DEBUG = False
    secrets = []
    codes = alice_client.get(alice_client.post("/accounts/security/backup-codes/")["Location"]).content.decode()
    secrets += re.findall(r"(?<=<li><code>)[^<]+(?=</code>)", codes)
    calendar = shown(alice_client, alice_client.post("/profile/calendar/"), r"token=([\w-]{20,})").removeprefix("token=")
    bot = build.automation(alice, key=build.api_key(alice))
    made = alice_client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2})
    ping = shown(alice_client, made, r"/ping/([\w-]{20,})").removeprefix("/ping/")
    token = shown(alice_client, alice_client.post("/accounts/security/api-tokens/add/", {"name": "deploy", "scope": "read", "days": "30"}), r"gc_[\w-]{40,}")
    for header in (f"Bearer {token}", f"Bearer {token}x", f"Token {token}", token):
        Client().get("/api/v1/readiness", HTTP_AUTHORIZATION=header)
    # An alert channel whose URL holds a credential, tried against a closed port (its failure is logged).
    hook = f"json://127.0.0.1:9/hook?token={'s3cr3tHookValue' * 2}"
    alice_client.post("/accounts/alerts/add/", {"url": hook, "name": "Hook", "events": ["bot_down"]})
    alice_client.post(f"/accounts/alerts/{AlertChannel.objects.get(user=alice).pk}/test/")
    # A bot down: its "I'm on it" link, followed with a mistake (a logged 404) and for real.
    ago = timezone.now() - timedelta(minutes=9)
    Heartbeat.objects.filter(pk=bot.heartbeat.pk).update(last_kind="success", last_at=ago, deadline=ago + timedelta(minutes=7), notified="up")
    services.heartbeat_sweep()
    ack = re.search(r"/ack/[\w-]+/", next(m.body for m in mail.outbox if "I'm on it" in m.body)).group(0)
    anonymous_ack = Client()
    anonymous_ack.get(ack[:-2] + "x/")
    anonymous_ack.post(ack)
    enrolment = shown(lena_client, lena_client.post(f"/desk/traders/{alice.pk}/mfa-reset/", REASON), r"\b[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}\b")
    mail.outbox.clear()
    Client().post("/accounts/password/reset/", {"email": "alice@example.com"})
    reset = re.search(r"/accounts/password/reset/[^\s]+", mail.outbox[0].body).group(0)
    secrets += [calendar, ping, token, "s3cr3tHookValue", ack.strip("/").rsplit("/", 1)[1], enrolment, reset, reset.rstrip("/").rsplit("/", 1)[-1]]
    # Mistakes with secret addresses are logged (404s), and a ping is logged too.
    anonymous = Client()
    anonymous.get(f"/ping/{ping}")
    anonymous.get(f"/ping/{ping[:-1]}x")
    anonymous.get(f"/ping/{ping}/nonsense")
    anonymous.get(f"/calendar/{calendar}x.ics")
    anonymous.get(reset + "x/")
    assert len(secrets) >= 17 and all(len(s) >= 8 for s in secrets)

    lines = json_log.getvalue().splitlines()
    assert len(lines) > 10
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message", "request_id", "user_id"} <= set(events[0])
    assert any(e["logger"] == "django.request" and "[redacted]" in e["message"] for e in events)
    assert any(e["user_id"] == alice.pk and e["request_id"] for e in events)
    # What is not a secret stays readable: the audit lines name their action.
    assert any(e["logger"] == "gatecheck.audit" and "action=heartbeat.created" in e["message"] for e in events)
    text = json_log.getvalue()
    leaked = [s for s in secrets if s in text]
    assert leaked == []
