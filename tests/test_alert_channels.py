"""Alert channels through apprise (SECURITY.md 35), delivered for real: a
``json://`` channel pointing at an HTTP receiver on a local socket, which
records what arrives. A bot that goes down and recovers is told once per
change; a failing channel shows as failing and its person is e-mailed; the
URL is sealed at rest, shown masked, never exported nor logged."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import channels
from accounts.models import AlertChannel, AuditEvent
from devices import services
from devices.inventory import export_inventory
from devices.models import Heartbeat
from tests import builders as build
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N802
                self.received.append(json.loads(handler.rfile.read(int(handler.headers["Content-Length"]))))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/hook?token=s3cr3t-hook-token"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bot_going_down_and_recovering_reaches_the_channel_once_per_change(alice, receiver):
    channels.add(user=alice, url=receiver.url, name="Desk webhook")
    bot = build.automation(alice, name="ES spread bot", key=build.api_key(alice))
    beat = Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=5, grace_minutes=2)
    token = services.heartbeat_rotate(request=None, heartbeat=beat)
    Client().get(f"/ping/{token}")
    later = timezone.now() + timedelta(minutes=8)
    assert services.heartbeat_sweep(now=later) == 1
    assert services.heartbeat_sweep(now=later + timedelta(minutes=5)) == 0
    assert [m["title"] for m in receiver.received] == ["[Gatecheck] Automation 'ES spread bot' stopped checking in"]
    Client().get(f"/ping/{token}")
    assert [m["title"] for m in receiver.received][1:] == ["[Gatecheck] Automation 'ES spread bot' is checking in again"]
    assert AlertChannel.objects.get().last_sent_at is not None


def test_the_page_adds_behind_step_up_masks_the_url_and_sends_a_test(alice, stale_mfa, receiver):
    form = {"url": receiver.url, "name": "Desk webhook", "events": ["bot_down", "security"]}
    assert stale_mfa.post("/accounts/alerts/add/", form)["Location"].startswith("/accounts/mfa/confirm/")
    assert stale_mfa.get("/accounts/alerts/").status_code == 200  # the masked list needs no fresh code
    client = verify_client(Client(), alice)
    assert client.post("/accounts/alerts/add/", form).status_code == 302
    channel = AlertChannel.objects.get(user=alice)
    page = client.get("/accounts/alerts/").content.decode()
    assert "s3cr3t-hook-token" not in page and "Desk webhook" in page and "json://127.0.0.1" in page
    client.post(f"/accounts/alerts/{channel.pk}/test/")
    assert receiver.received[-1]["title"] == "[Gatecheck] Test message"
    # A security notice reaches a channel that takes them.
    from accounts import tokens

    tokens.create(user=alice, name="deploy", scope="read")
    assert receiver.received[-1]["title"] == "[Gatecheck] A new API token was created"
    # A refused URL is an error next to the field, and is not shown back.
    refused = client.post("/accounts/alerts/add/", {"url": "nonsense://s3cr3t-other", "events": ["bot_down"]})
    assert "url" in refused.context["form"].errors and "s3cr3t-other" not in refused.content.decode()


def test_a_failing_channel_shows_as_failing_and_its_person_is_emailed(alice, mailoutbox):
    channel = channels.add(user=alice, url=f"json://127.0.0.1:{closed_port()}/hook", name="Dead hook")
    client = verify_client(Client(), alice)
    for _ in range(channels.FAILING_AFTER):
        client.post(f"/accounts/alerts/{channel.pk}/test/")
    channel.refresh_from_db()
    assert channel.failures == channels.FAILING_AFTER and channel.last_error
    assert "Failing" in client.get("/accounts/alerts/").content.decode()
    assert [m.subject for m in mailoutbox] == ["[Gatecheck] Your alert channel 'Dead hook' keeps failing"]


def test_the_url_is_sealed_at_rest_never_exported_and_survives_a_key_rotation(alice, receiver, settings, capsys):
    channel = channels.add(user=alice, url=receiver.url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_alertchannel")
        assert "s3cr3t-hook-token" not in json.dumps(cursor.fetchall(), default=str)
    assert "s3cr3t-hook-token" not in json.dumps(export_inventory(alice))
    assert "s3cr3t-hook-token" not in json.dumps(list(AuditEvent.objects.values("details", "object_label")))
    # Rotation: a new key first, the old one after; rekey; then the old key alone is dropped.
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.GATECHECK_CHANNEL_KEYS = [old, "SECRET_KEY"]  # off the default key
    call_command("alert_channel", "rekey")
    settings.GATECHECK_CHANNEL_KEYS = [new, old]
    call_command("alert_channel", "rekey")
    settings.GATECHECK_CHANNEL_KEYS = [new]
    assert channels.opened(AlertChannel.objects.get(pk=channel.pk)) == receiver.url
    settings.GATECHECK_CHANNEL_KEYS = [old]
    assert channels.opened(AlertChannel.objects.get(pk=channel.pk)) is None


def test_the_command_adds_lists_tests_and_removes(alice, receiver, capsys):
    call_command("alert_channel", "--user", "alice", "add", receiver.url, "--name", "Ops", "--events", "bot_down,level_dropped")
    pk = int(capsys.readouterr().out.strip())
    call_command("alert_channel", "--user", "alice", "list")
    listing = capsys.readouterr().out
    assert "Ops" in listing and "bot_down,level_dropped" in listing and "s3cr3t-hook-token" not in listing
    call_command("alert_channel", "--user", "alice", "test", str(pk))
    assert receiver.received[-1]["title"] == "[Gatecheck] Test message"
    call_command("alert_channel", "--user", "alice", "remove", str(pk))
    assert not AlertChannel.objects.exists()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown event"):
        call_command("alert_channel", "--user", "alice", "add", receiver.url, "--events", "everything")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("json://hooks.example.com/hooks/catch/123/abcdefSECRET987", "abcdefSECRET987"),
        ("ntfy://ntfy.sh/my-secret-topic-xyz", "my-secret-topic-xyz"),
        ("ntfy://my-secret-topic", "my-secret-topic"),
        ("tgram://123456789:AABBccddEEffGG/987654321", "AABBccddEEffGG"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "TIiajkdnlazkcOXrIdevi7FQ"),
        ("json://user:hunter2pass@127.0.0.1:8080/hook?token=abcdef123", "hunter2pass"),
    ],
)
def test_a_channel_is_shown_without_its_credential(alice, url, secret):
    channel = channels.add(user=alice, url=url)
    assert secret not in channel.url_shown and secret[1:-1] not in channel.url_shown
    assert channel.url_shown.split("://")[0] == url.split("://")[0]
