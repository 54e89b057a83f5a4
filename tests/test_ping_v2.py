"""Ping protocol v2 (INVENTORY.md), against a live server, with clients no one
here wrote, each run as its own process: the ``healthchecks-io`` client from
PyPI (in .venv/clients, pinned in tests/clients/requirements.txt), and the
curl, wget and Python patterns of healthchecks.io's documentation. Each
signal must land with the right kind, exit status, body and run id."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.test import Client

from devices import services
from devices.models import Heartbeat, HeartbeatSignal
from tests import builders as build
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_PYTHON = Path(sys.executable).parent.parent / "clients" / "bin" / "python"


@pytest.fixture
def bot(alice):
    automation = build.automation(alice, name="ES spread bot", key=build.api_key(alice))
    beat = Heartbeat.objects.create(owner=alice, automation=automation, period_minutes=5, grace_minutes=2)
    return beat, services.heartbeat_rotate(request=None, heartbeat=beat)


def signals(beat) -> list[tuple]:
    return list(HeartbeatSignal.objects.filter(heartbeat=beat).order_by("id").values_list("kind", "exit_status", "message", "rid"))


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)


def hc_client(live_server, script: str, ping_key: str = "") -> subprocess.CompletedProcess:
    assert CLIENT_PYTHON.exists(), "the outside clients are missing: run make test (it installs tests/clients/requirements.txt)"
    prelude = f"from healthchecks_io import Client\nclient = Client(ping_url={live_server.url + '/ping/'!r}, ping_key={ping_key!r})\n"
    return run(str(CLIENT_PYTHON), "-c", prelude + textwrap.dedent(script))


def test_the_healthchecks_io_client_by_token(live_server, bot):
    beat, token = bot
    done = hc_client(live_server, f"""
        print(client.start_ping(uuid={token!r}))
        print(client.success_ping(uuid={token!r}, data="token refreshed\\nnext refresh in 55 min"))
        print(client.exit_code_ping(0, uuid={token!r}))
        print(client.exit_code_ping(3, uuid={token!r}, data="login failed: password=hunter2!x ran the fail-safe"))
        print(client.fail_ping(uuid={token!r}))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["(True, 'OK')"] * 5
    assert signals(beat) == [
        ("start", None, "", None),
        ("success", None, "token refreshed\nnext refresh in 55 min", None),
        ("success", 0, "", None),
        ("failure", 3, "login failed: *** ran the fail-safe", None),
        ("failure", None, "", None),
    ]
    beat.refresh_from_db()
    assert beat.last_kind == "failure"


def test_the_healthchecks_io_client_by_ping_key_and_slug(live_server, alice, bot):
    beat, _ = bot
    key = services.ping_key_rotate(request=None, owner=alice)
    done = hc_client(live_server, """
        print(client.start_ping(slug="es-spread-bot"))
        print(client.success_ping(slug="es-spread-bot"))
        from healthchecks_io.client.exceptions import CheckNotFoundError
        try:
            client.success_ping(slug="no-such-bot")
        except CheckNotFoundError:
            print("not found")
    """, ping_key=key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["(True, 'OK')", "(True, 'OK')", "not found"]
    assert [kind for kind, *_ in signals(beat)] == ["start", "success"]
    # Two bots with one slug: healthchecks.io's 409, and nothing recorded.
    twin = build.automation(alice, name="ES-spread bot", key=build.api_key(alice, label="other"))
    Heartbeat.objects.create(owner=alice, automation=twin, period_minutes=5, grace_minutes=2)
    clash = hc_client(live_server, """
        from healthchecks_io.client.exceptions import NonUniqueSlugError
        try:
            client.success_ping(slug="es-spread-bot")
        except NonUniqueSlugError:
            print("conflict")
    """, ping_key=key)
    assert clash.stdout.strip() == "conflict", clash.stderr
    assert len(signals(beat)) == 2


def test_curl_wget_and_python_patterns_from_the_docs(live_server, bot):
    beat, token = bot
    url = f"{live_server.url}/ping/{token}"
    rid = str(uuid.uuid4())
    curl = ["curl", "-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null"]
    # The cron pattern: a start with a run id, the job, then its exit status.
    assert run(*curl, f"{url}/start?rid={rid}").returncode == 0
    assert run("sh", "-c", f"false; {' '.join(curl)} {url}/$??rid={rid}").returncode == 0
    assert run(*curl, "--data-raw", "line one\nline two", f"{url}/log").returncode == 0
    assert run(*curl, f"{url}/").returncode == 0  # a trailing slash
    assert run("curl", "-fsS", "-m", "10", "-I", "-o", "/dev/null", url).returncode == 0  # HEAD
    assert run("wget", url, "-T", "10", "-t", "5", "-O", "/dev/null", "-q").returncode == 0
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"OK"
    kinds = [(kind, status, message, str(r) if r else None) for kind, status, message, r in signals(beat)]
    assert kinds == [
        ("start", None, "", rid),
        ("failure", 1, "", rid),
        ("log", None, "line one\nline two", None),
        ("success", None, "", None),
        ("success", None, "", None),
        ("success", None, "", None),
        ("success", None, "", None),
    ]
    # A bad run id, an exit status past 255 and an unknown token are refused (curl -f fails).
    assert run(*curl, f"{url}?rid=not-a-uuid").returncode == 22
    assert run(*curl, f"{url}/256").returncode == 22
    assert run(*curl, f"{live_server.url}/ping/nope").returncode == 22
    assert len(signals(beat)) == 7


def test_every_ping_answer_carries_cors_and_the_body_limit(bot):
    beat, token = bot
    for path, status in ((f"/ping/{token}", 200), (f"/ping/{token}/log/", 200), ("/ping/unknown", 404), (f"/ping/{token}?rid=x", 400)):
        answer = Client().get(path)
        assert answer.status_code == status, path
        assert answer["Access-Control-Allow-Origin"] == "*" and answer["Ping-Body-Limit"] == "10000"
        assert "Set-Cookie" not in answer


def test_a_body_is_kept_up_to_the_limit(bot):
    beat, token = bot
    Client().post(f"/ping/{token}/log", data="x" * 12_000, content_type="text/plain")
    assert len(HeartbeatSignal.objects.get(heartbeat=beat).message) == 10_000


def test_a_start_or_a_log_never_changes_the_status(bot):
    beat, token = bot
    Client().get(f"/ping/{token}/fail")
    Client().get(f"/ping/{token}/start")
    Client().post(f"/ping/{token}/log", data="still trying", content_type="text/plain")
    beat.refresh_from_db()
    assert beat.last_kind == "failure"
    Client().get(f"/ping/{token}/0")
    beat.refresh_from_db()
    assert beat.last_kind == "success" and beat.deadline is not None


def test_the_automations_page_shows_run_durations_exit_statuses_and_messages(alice, bot):
    beat, token = bot
    rid = uuid.uuid4()
    Client().get(f"/ping/{token}/start?rid={rid}")
    Client().post(f"/ping/{token}/4?rid={rid}", data="auth failed\nfail-safe ran", content_type="text/plain")
    page = verify_client(Client(), alice).get("/automations/").content.decode()
    assert "last runs:" in page and "(failed)" in page
    assert "(exit 4)" in page and "auth failed\nfail-safe ran" in page
    assert "slug <code>es-spread-bot</code>" in page


def test_a_ping_key_is_made_behind_step_up_and_shown_once(alice, bot, stale_mfa):
    assert stale_mfa.post("/automations/ping-key/")["Location"].startswith("/accounts/mfa/confirm/")
    client = verify_client(Client(), alice)
    shown = client.get(client.post("/automations/ping-key/")["Location"]).content.decode()
    key = shown.split('id="ping-key" type="text" class="feed-url" value="')[1].split('"')[0]
    assert f"/ping/{key}/es-spread-bot" in shown
    assert key not in client.get("/automations/ping-key/new/").content.decode()
    assert Client().get(f"/ping/{key}/es-spread-bot/start").status_code == 200
    # A new key replaces it.
    client.post("/automations/ping-key/")
    assert Client().get(f"/ping/{key}/es-spread-bot").status_code == 404
