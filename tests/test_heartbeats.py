"""Live evidence: heartbeats, pings, transitions and rule automation.alive."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from checklist.models import ReadinessSnapshot
from devices import services
from devices.models import Heartbeat, HeartbeatSignal
from devices.schedules import Schedule, status
from tests import builders as build
from tests.conftest import make_user

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "minutes_ago", "expected"),
    [(None, 0, "new"), ("success", 0, "up"), ("success", 5, "up"), ("success", 5.01, "late"), ("success", 7, "late"),
     ("success", 7.01, "down"), ("failure", 0, "failing")],
)
def test_status_at_every_boundary(kind, minutes_ago, expected):
    last = NOON - timedelta(minutes=minutes_ago) if kind else None
    assert status(Schedule(), last_kind=kind, last_success=last if kind == "success" else None, period_minutes=5, grace_minutes=2,
                  created_at=NOON, now=NOON) == expected


def make_beat(alice, client, *, period=5, grace=2) -> tuple[Heartbeat, str]:
    bot = build.automation(alice, key=build.api_key(alice))
    response = client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": period, "grace_minutes": grace})
    assert response["Location"] == f"/automations/{bot.pk}/heartbeat/address/"
    page = client.get(response["Location"])
    ok_url, fail_url = page.context["urls"]
    return Heartbeat.objects.get(automation=bot), ok_url.replace("http://testserver", "")


def test_a_ping_records_a_signal_sets_no_cookie_and_answers_ok(alice, alice_client):
    beat, url = make_beat(alice, alice_client)
    assert len(url.rsplit("/", 1)[1]) >= 32  # at least 128 random bits in the token
    bot = Client(enforce_csrf_checks=True)
    for method in (bot.get, bot.head, bot.post):
        response = method(url)
        assert response.status_code == 200 and not response.cookies
    assert bot.get(url).content == b"OK"
    beat.refresh_from_db()
    assert beat.last_kind == "success" and beat.token_digest and url.split("/")[-1] not in beat.token_digest
    assert HeartbeatSignal.objects.filter(heartbeat=beat).count() == 4


def test_an_unknown_token_is_a_404_and_the_fail_url_is_failing_at_once(alice, alice_client):
    beat, url = make_beat(alice, alice_client)
    assert Client().get("/ping/nothing-like-a-token").status_code == 404
    assert Client().get(url + "/fail").status_code == 200
    statuses = {r["id"]: r for r in alice_client.get("/api/readiness/").json()["rules"]}
    assert statuses["automation.alive"]["status"] == "fail"
    assert [f["message"] for f in statuses["automation.alive"]["findings"]] == ["Automation 'ES spread bot' reported an authentication failure"]


def test_rotation_voids_the_old_token(alice, alice_client):
    beat, url = make_beat(alice, alice_client)
    alice_client.post(f"/automations/{beat.automation_id}/heartbeat/rotate/")
    new = alice_client.get(f"/automations/{beat.automation_id}/heartbeat/address/").context["urls"][0].replace("http://testserver", "")
    assert Client().get(url).status_code == 404 and Client().get(new).status_code == 200
    # A reload shows it no more.
    assert alice_client.get(f"/automations/{beat.automation_id}/heartbeat/address/").context["urls"] is None


def test_the_history_cap_is_per_token_and_a_flood_cannot_make_a_live_bot_look_down(alice, bob, alice_client, bob_client):
    beat, url = make_beat(alice, alice_client)
    other, other_url = make_beat(bob, bob_client)
    limit = services.PING_LIMIT_PER_MINUTE
    assert [Client().get(url).status_code for _ in range(limit)] == [200] * limit
    recorded = HeartbeatSignal.objects.filter(heartbeat=beat).count()
    # Over the cap (someone floods a leaked address): the bot's own success
    # still keeps it up, without a history row...
    long_ago = timezone.now() - timedelta(minutes=9)
    Heartbeat.objects.filter(pk=beat.pk).update(last_at=long_ago, deadline=long_ago + timedelta(minutes=7))
    assert Client().get(url).status_code == 200
    kept = Heartbeat.objects.get(pk=beat.pk)
    assert kept.last_at > long_ago and kept.deadline > timezone.now() and kept.window_count == limit
    assert HeartbeatSignal.objects.filter(heartbeat=beat).count() == recorded
    # ...and a failure over the cap is refused: a /fail flood stays visible in the history up to the cap.
    assert Client().get(url + "/fail").status_code == 429
    assert Heartbeat.objects.get(pk=beat.pk).last_kind == "success"
    assert Client().get(other_url).status_code == 200  # another token has its own cap


def test_a_secret_in_a_message_is_masked_in_place_and_the_rest_is_kept(alice, alice_client):
    beat, url = make_beat(alice, alice_client)
    Client().post(url, data="refreshed ok", content_type="text/plain")
    Client().post(url, data="token refreshed\nnext at 09:31 token=ghp_16C7e42F292c6912E7710c838347Ae178B4a done", content_type="text/plain")
    Client().post(url, data="login ok\r\npassword: hunter2 then restarted", content_type="text/plain")
    kept = list(HeartbeatSignal.objects.filter(heartbeat=beat).order_by("id").values_list("message", flat=True))
    assert kept == ["refreshed ok", "token refreshed\nnext at 09:31 *** done", "login ok\npassword: *** then restarted"]


@pytest.mark.parametrize("new_minute", [True, False], ids=["a ping a minute", "a busy minute"])
def test_history_is_bounded_per_heartbeat_whatever_the_pace(alice, alice_client, new_minute):
    """One ping a minute (each the first of its minute) or a busy minute: every
    tenth ping trims, so at most SIGNALS_KEPT + TRIM_EVERY - 1 are kept."""
    kept, every = HeartbeatSignal.SIGNALS_KEPT, HeartbeatSignal.TRIM_EVERY
    beat, _ = make_beat(alice, alice_client)
    token = _token_of(alice_client, beat)
    counts = []
    for _ in range(3 * every + kept):
        if new_minute:
            Heartbeat.objects.filter(pk=beat.pk).update(window_count=0, window_start=None)
        elif Heartbeat.objects.get(pk=beat.pk).window_count >= services.PING_LIMIT_PER_MINUTE:
            break
        services.heartbeat_ping(token=token, kind="success", source_ip=None)
        counts.append(HeartbeatSignal.objects.filter(heartbeat=beat).count())
    assert max(counts) == kept + every - 1
    assert counts[2 * every - 1] == kept  # the 20th ping trimmed (nothing past 20 before it)
    assert counts[3 * every - 2] == kept + every - 1
    assert counts[3 * every - 1] == kept  # the 30th ping trimmed


def _token_of(client, beat) -> str:
    client.post(f"/automations/{beat.automation_id}/heartbeat/rotate/")
    return client.get(f"/automations/{beat.automation_id}/heartbeat/address/").context["urls"][0].rsplit("/", 1)[1]


def test_going_down_and_recovering_each_mail_the_trader_and_leads_once(alice, lena, alice_client):
    beat, url = make_beat(alice, alice_client)
    Client().get(url)
    mail.outbox.clear()
    # The last check-in was 8 minutes ago: past period (5) + grace (2).
    ago = timezone.now() - timedelta(minutes=8)
    Heartbeat.objects.filter(pk=beat.pk).update(last_at=ago, deadline=ago + timedelta(minutes=7))
    assert services.heartbeat_sweep() == 1
    assert services.heartbeat_sweep() == 0  # told once
    # The trader's e-mail carries their "I'm on it" link; the lead's says to acknowledge on the desk.
    mine, leads = sorted(mail.outbox, key=lambda m: m.to != [alice.email])
    assert "stopped checking in" in mine.subject and mine.to == [alice.email] and "I'm on it: " in mine.body
    assert leads.subject == mine.subject and leads.to == [lena.email] and "desk page" in leads.body
    assert AuditEvent.objects.filter(action="heartbeat.down", subject=alice).count() == 1
    # The stored score (the desk's) was refreshed by the transition.
    stored = ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses
    assert stored["automation.alive"] == "fail"
    Client().get(url)  # back up
    assert [m.subject for m in mail.outbox][2:] == ["[Gatecheck] Automation 'ES spread bot' is checking in again"] * 2
    Client().get(url)
    assert len(mail.outbox) == 4


def test_the_sweep_command_runs(alice, alice_client):
    out = StringIO()
    call_command("heartbeat_sweep", stdout=out)
    assert "went down" in out.getvalue()


def test_heartbeat_url_prints_two_absolute_urls_and_voids_the_old_token(alice, alice_client, settings):
    settings.GATECHECK_SITE_URL = "https://gatecheck.example.com"
    beat, url = make_beat(alice, alice_client)
    out = StringIO()
    call_command("heartbeat_url", "--user", "alice", "--automation", "ES spread bot", stdout=out)
    ok, fail = out.getvalue().splitlines()
    assert ok.startswith("https://gatecheck.example.com/ping/") and fail == ok + "/fail"
    assert Client().get(url).status_code == 404
    assert Client().get(ok.replace("https://gatecheck.example.com", "")).status_code == 200


def test_another_trader_cannot_see_or_rotate_a_heartbeat(alice, bob_client, alice_client):
    beat, _ = make_beat(alice, alice_client)
    digest = Heartbeat.objects.get(pk=beat.pk).token_digest
    for path in ("heartbeat/", "heartbeat/rotate/", "heartbeat/address/", "heartbeat/delete/"):
        assert bob_client.get(f"/automations/{beat.automation_id}/{path}").status_code == 404
        assert bob_client.post(f"/automations/{beat.automation_id}/{path}").status_code == 404
    assert Heartbeat.objects.get(pk=beat.pk).token_digest == digest


def test_the_automations_page_shows_the_live_status(alice, alice_client):
    beat, url = make_beat(alice, alice_client)
    assert build.texts(alice_client.get("/automations/").content, "hb-status") == ["– New"]
    Client().get(url)
    assert build.texts(alice_client.get("/automations/").content, "hb-status") == ["✓ Up"]


def test_rule_automation_alive_findings():
    from dataclasses import replace

    from readiness.rules import evaluate
    from tests.test_rules import AS_OF, bot, full_inventory

    def alive(*bots):
        return evaluate(replace(full_inventory(), automations=bots), AS_OF).result("automation.alive")

    assert alive(bot()).status == "pass"
    assert alive(bot(heartbeat="late")).status == "pass"
    assert (alive(bot(heartbeat=None)).status, alive(bot(heartbeat="new")).status) == ("partial", "partial")
    down = alive(bot(heartbeat="down"), bot(name="Copy bot", heartbeat=None))
    assert [(f.severity, f.item) for f in down.findings] == [("critical", "ES spread bot"), ("warning", "Copy bot")]
    assert alive(bot(status="paused", heartbeat="down")).status == "na"


def test_the_desk_shows_a_bots_down_tile_and_filter_and_the_lead_sees_no_token(alice, lena, alice_client, lena_client):
    beat, url = make_beat(alice, alice_client)
    Client().get(url + "/fail")
    response = lena_client.get("/desk/")
    assert build.texts(response.content, "bots-down")[0].startswith("1 ")
    filtered = lena_client.get("/desk/?failing=automation.alive")
    assert [row.username for row in filtered.context["table"].shown] == ["alice"]
    page = lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()
    assert "reported an authentication failure" in " ".join(build.texts(page, "finding-text"))
    assert url.rsplit("/", 1)[1] not in page


def _fleet(start: int, count: int, *, down: int, desk) -> list:
    """``count`` traders of ``desk``, each with one bot; the first ``down`` went silent 10 minutes ago."""
    owners = [make_user(f"bot{n:04d}", with_totp=False) for n in range(start, start + count)]
    desk.members.add(*owners)
    for n, owner in enumerate(owners):
        build.heartbeat(build.automation(owner, key=build.api_key(owner)), minutes_ago=10 if n < down else 1)
    return owners


def _swept() -> tuple[int, int]:
    """Bots told and the sweep's queries. The e-mails' task runs inline in
    tests and records its progress once per message sent (so that a worker
    killed mid-batch repeats none): those writes are the mail's, not the sweep's."""
    with CaptureQueriesContext(connection) as captured:
        told = services.heartbeat_sweep()
    # The "I'm on it" links are made by the mail task as each message leaves (one per message): the mail's too.
    link = re.compile(r'devices_acklink|FROM "devices_incident" WHERE \("devices_incident"\."closed_at" IS NULL AND "devices_incident"\."id" =')
    return told, sum(1 for q in captured if "accounts_jobmark" not in q["sql"] and not link.search(q["sql"]))


def test_the_sweep_costs_the_same_queries_at_50_and_500_bots(lena):
    desk = lena.led_desks.get()
    _fleet(0, 50, down=3, desk=desk)
    told, small = _swept()
    assert told == 3 and _swept() == (0, 2)  # nothing due: two indexed queries (deadlines passed, incidents to escalate)
    _fleet(50, 450, down=3, desk=desk)
    assert _swept() == (3, small)


def test_the_sweep_tells_a_batch_in_fixed_queries_whatever_the_number_going_down(lena):
    desk = lena.led_desks.get()
    _fleet(0, 60, down=5, desk=desk)
    mail.outbox.clear()
    told, few = _swept()
    assert told == 5 and len(mail.outbox) == 10  # each trader's, with their link, and their lead's
    down = Heartbeat.objects.filter(notified="up").order_by("pk")[:45]
    ago = timezone.now() - timedelta(minutes=10)
    Heartbeat.objects.filter(pk__in=[b.pk for b in down]).update(last_at=ago, deadline=ago + timedelta(minutes=7))
    mail.outbox.clear()
    told, many = _swept()
    assert told == 45 and many == few  # the audit rows go in one insert
    assert AuditEvent.objects.filter(action="heartbeat.down").count() == 50
    assert len(mail.outbox) == 90 and sum(m.to == [lena.email] for m in mail.outbox) == 45
    # Every trader told about has a fresh stored score that says so.
    owners = Heartbeat.objects.filter(notified="down").values_list("owner_id", flat=True)
    stored = ReadinessSnapshot.objects.filter(user_id__in=owners, date=timezone.localdate())
    assert stored.count() == 50 and {s.statuses["automation.alive"] for s in stored} == {"fail"}


@pytest.mark.postgres
def test_a_routine_ping_skips_the_disk_wait_and_a_transition_does_not(alice, alice_client):
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's (DATABASE_URL=postgres://...).")
    beat, url = make_beat(alice, alice_client)
    Client().get(url)  # new -> up: nothing told
    with CaptureQueriesContext(connection) as routine:
        assert Client().get(url).status_code == 200
    assert any("synchronous_commit TO OFF" in q["sql"] for q in routine.captured_queries)
    with CaptureQueriesContext(connection) as failing:
        assert Client().get(url + "/fail").status_code == 200
    assert AuditEvent.objects.filter(action="heartbeat.failing").count() == 1
    assert not any("synchronous_commit" in q["sql"] for q in failing.captured_queries)
