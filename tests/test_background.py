"""Gatecheck watches itself (issue 20), in one process: the scheduler's
catch-up and single enqueue, taking back tasks of dead workers, retries that
end FAILED, resumable nightly scores, per-message reminder claims, /healthz's
sweep and queue checks, /metrics, request ids, the superuser's page, reads
that survive a refused audit row, commands that fail in one line, and the
ping-address race. The same faults with real processes are in test_faults.py."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import background
from accounts.background import PERIODIC, Worker, latest_due, load_periodic, mark_set, scheduler_tick, tasks_reclaim
from accounts.models import JobMark, MetricCounter, WorkerBeat
from checklist import services as checklist_services
from checklist.models import ReadinessSnapshot
from desk.models import ReminderLog
from desk.services import reminders_send_daily
from devices.models import Heartbeat, RecoveryMethod
from tests import builders as build
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
TOKEN = "m" * 40


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def queued(name: str) -> int:
    return DBTaskResult.objects.filter(task_path__endswith=f".{name}").count()


# --- The scheduler -----------------------------------------------------------------


def test_a_cron_trigger_gives_the_last_due_time_and_coalesces_the_missed_ones():
    load_periodic()
    _, nightly = PERIODIC["snapshots_nightly"]
    assert latest_due(nightly, at("2026-12-05T23:00"), at("2026-12-06T00:04")) is None
    assert latest_due(nightly, at("2026-12-05T23:00"), at("2026-12-06T07:00")) == at("2026-12-06T00:05")
    # Down for three days: one run, for the last due time.
    assert latest_due(nightly, at("2026-12-02T23:00"), at("2026-12-06T07:00")) == at("2026-12-06T00:05")


def test_jobs_missed_while_the_scheduler_was_down_run_once_when_it_is_back(settings):
    settings.TASKS = DB_TASKS
    load_periodic()
    assert scheduler_tick(at("2026-12-05T23:59:30")) == []  # first sight: nothing is owed yet
    # Down from midnight to 07:00: the nightly scores, the reminders, the
    # hourly pruning and the sweep each run once, not once per missed time.
    assert sorted(scheduler_tick(at("2026-12-06T07:00:10"))) == [
        "audit_old_prune", "heartbeats_sweep", "prune", "reminder_logs_old_prune", "reminders_daily", "signals_old_prune",
        "snapshots_nightly", "snapshots_old_thin",
    ]
    assert [queued(name) for name in ("snapshots_nightly", "reminders_daily", "prune", "heartbeats_sweep")] == [1, 1, 1, 1]
    assert scheduler_tick(at("2026-12-06T07:00:40")) == []
    assert scheduler_tick(at("2026-12-06T07:01:00")) == ["heartbeats_sweep"]


def test_two_schedulers_enqueue_each_due_time_once(settings):
    settings.TASKS = DB_TASKS
    load_periodic()
    scheduler_tick(at("2026-12-06T00:04:30"))
    # The second scheduler read the mark before the first moved it.
    stale = JobMark.objects.get(name="schedule:snapshots_nightly").at
    assert "snapshots_nightly" in scheduler_tick(at("2026-12-06T00:05:01"))
    # Its conditional update moves nothing, so it enqueues nothing.
    assert not JobMark.objects.filter(name="schedule:snapshots_nightly", at=stale).update(at=at("2026-12-06T00:05"))
    assert scheduler_tick(at("2026-12-06T00:05:02")) == []
    assert queued("snapshots_nightly") == 1


def test_a_scheduler_that_read_the_mark_before_another_moved_it_enqueues_nothing(settings, monkeypatch):
    settings.TASKS = DB_TASKS
    load_periodic()
    scheduler_tick(at("2026-12-06T00:04:30"))
    stale = {m.name: m for m in JobMark.objects.filter(name__startswith="schedule:")}
    assert "snapshots_nightly" in scheduler_tick(at("2026-12-06T00:05:01"))  # the first scheduler
    # The second read every mark before the first moved them.
    monkeypatch.setattr(JobMark.objects, "get_or_create", lambda name, defaults: (stale[name], False))
    assert scheduler_tick(at("2026-12-06T00:05:02")) == []
    assert queued("snapshots_nightly") == 1


def test_a_daily_job_caught_up_late_works_for_the_day_it_was_due(settings):
    settings.TASKS = DB_TASKS
    load_periodic()
    scheduler_tick(at("2026-12-05T23:00"))
    scheduler_tick(at("2026-12-06T23:30"))  # down all day: the 00:05 and 06:30 runs, late
    kwargs = {row.task_path.rsplit(".", 1)[-1]: row.args_kwargs["kwargs"] for row in DBTaskResult.objects.all()}
    assert kwargs["snapshots_nightly"] == {"as_of": "2026-12-06"} and kwargs["reminders_daily"] == {"as_of": "2026-12-06"}
    assert kwargs["heartbeats_sweep"] == {} and kwargs["prune"] == {}


def test_one_job_that_cannot_be_enqueued_does_not_hold_back_the_others(settings, monkeypatch, caplog):
    settings.TASKS = DB_TASKS
    load_periodic()
    scheduler_tick(at("2026-12-06T00:04:30"))
    task, trigger = PERIODIC["prune"]

    class Broken:
        name = "prune"
        func = task.func

        def enqueue(self, **kwargs):
            raise RuntimeError("queue refused")

    monkeypatch.setitem(PERIODIC, "prune", (Broken(), trigger))
    assert "heartbeats_sweep" in scheduler_tick(at("2026-12-06T00:07:10"))
    assert "enqueueing prune failed" in caplog.text
    # The mark did not move: prune is enqueued on the next tick.
    monkeypatch.setitem(PERIODIC, "prune", (task, trigger))
    assert "prune" in scheduler_tick(at("2026-12-06T00:07:20"))


def test_the_scheduler_loop_survives_a_lost_database(monkeypatch, caplog):
    calls = []

    def tick(now=None):
        calls.append(1)
        if len(calls) < 3:
            raise background.DatabaseFault("server closed the connection unexpectedly")
        stop.set()
        return []

    stop = background.threading.Event()
    monkeypatch.setattr(background, "scheduler_tick", tick)
    monkeypatch.setattr(stop, "wait", lambda seconds: None)
    background.scheduler_run(stop, interval=0)
    assert len(calls) == 3 and "trying again" in caplog.text


# --- Taking back the tasks of dead workers ------------------------------------------------


def running(worker_ids: list[str], *, minutes_ago: float = 10) -> DBTaskResult:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return DBTaskResult.objects.create(
        task_path="accounts.tasks.prune", args_kwargs={"args": [], "kwargs": {}}, status="RUNNING", started_at=started,
        enqueued_at=started, run_after=started, queue_name="default", backend_name="default", priority=0, worker_ids=worker_ids,
    )


def test_a_task_of_a_worker_that_stopped_beating_is_taken_back(settings):
    settings.GATECHECK_TASK_RECLAIM_SECONDS = 300
    WorkerBeat.objects.create(worker_id="alive", host="h", pid=1)
    WorkerBeat.objects.create(worker_id="dead", host="h", pid=2, seen_at=timezone.now() - timedelta(minutes=6))
    kept, lost, unknown, fresh = running(["alive"]), running(["dead"]), running(["never-seen"]), running(["never-seen"], minutes_ago=1)
    assert tasks_reclaim() == 2
    statuses = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert [statuses[t.pk] for t in (kept, lost, unknown, fresh)] == ["RUNNING", "READY", "READY", "RUNNING"]
    assert tasks_reclaim() == 0  # taken back once


def test_a_task_whose_worker_keeps_dying_ends_failed_and_visible(settings, client):
    settings.GATECHECK_TASK_MAX_TRIES = 3
    doomed = running(["a", "b", "c"])
    assert tasks_reclaim() == 1
    doomed.refresh_from_db()
    assert doomed.status == "FAILED" and doomed.exception_class_path == "accounts.background.WorkerLost"
    admin = make_user("root", is_superuser=True, is_staff=True)
    page = verify_client(Client(), admin).get("/background/")
    assert page.status_code == 200 and "WorkerLost" in page.content.decode()


def test_a_worker_takes_back_its_own_task_whose_result_it_could_not_write():
    mine = running(["me"], minutes_ago=0)
    WorkerBeat.objects.create(worker_id="me", host="h", pid=1)
    assert tasks_reclaim(worker_id="me", current="") == 1
    mine.refresh_from_db()
    assert mine.status == "READY"


def test_a_failing_task_is_tried_again_later_then_ends_failed(settings, caplog):
    settings.TASKS = DB_TASKS
    settings.GATECHECK_TASK_MAX_TRIES = 2
    from accounts.mail import linked_send

    result = linked_send.enqueue("no-such-kind", 1, "https://example.com/", {})
    worker = Worker(worker_id="w1", queues=["default"], batch=True)
    worker.run()
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == "READY" and row.run_after > timezone.now()  # tried again in 30 s
    DBTaskResult.objects.filter(pk=row.pk).update(run_after=timezone.now())
    Worker(worker_id="w2", queues=["default"], batch=True).run()
    row.refresh_from_db()
    assert row.status == "FAILED" and row.worker_ids == ["w1", "w2"] and "KeyError" in row.exception_class_path
    assert MetricCounter.objects.get(name="tasks_total", labels="outcome=failed,task=linked_send").value == 1
    assert MetricCounter.objects.get(name="tasks_total", labels="outcome=retried,task=linked_send").value == 1


# --- Handlers that run twice ----------------------------------------------------------


class Killed(BaseException):
    """What SIGKILL does to a run: it stops between two statements."""


def test_a_nightly_run_killed_midway_resumes_after_its_last_batch(monkeypatch, settings):
    monkeypatch.setattr(checklist_services, "SNAPSHOT_BATCH", 3)
    people = [make_user(f"t{n}", with_totp=False) for n in range(8)]
    ReadinessSnapshot.objects.all().delete()
    real, calls = checklist_services.inventories_for, []

    def dies_on_the_third_batch(ids):
        calls.append(list(ids))
        if len(calls) == 3:
            raise Killed
        return real(ids)

    monkeypatch.setattr(checklist_services, "inventories_for", dies_on_the_third_batch)
    with pytest.raises(Killed):
        checklist_services.snapshot_all()
    assert ReadinessSnapshot.objects.filter(date=timezone.localdate()).count() == 6
    calls.clear()
    run = checklist_services.snapshot_all()
    assert run.stored == len(people) - 6 and calls == [[people[6].pk, people[7].pk]]
    assert ReadinessSnapshot.objects.filter(date=timezone.localdate()).count() == 8


def test_a_reminder_run_killed_mid_batch_loses_and_repeats_no_message(monkeypatch, lena, mailoutbox):
    traders = [make_user(f"r{n}", with_totp=False) for n in range(6)]
    for person in traders:
        lena.led_desks.get().members.add(person)
        RecoveryMethod.objects.create(owner=person, kind="phone", label="+1 555 010 0142", last_verified_on=timezone.localdate() - timedelta(days=200))
    real = EmailBackend.send_messages

    def dies_on_the_fourth(self, messages):
        if len(mailoutbox) == 3:
            raise Killed
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", dies_on_the_fourth)
    with pytest.raises(Killed):
        reminders_send_daily(as_of=timezone.localdate())
    assert len(mailoutbox) == 3 and ReminderLog.objects.filter(kind="daily").count() == 3
    monkeypatch.setattr(EmailBackend, "send_messages", real)
    reminders_send_daily(as_of=timezone.localdate())
    reminded = sorted(m.to[0] for m in mailoutbox if "readiness" in m.subject.lower() and m.to[0].startswith("r"))
    assert reminded == sorted(f"{p.username}@example.com" for p in traders)  # each once


# --- /healthz, /metrics, the background page ------------------------------------------------


def test_healthz_fails_when_the_sweep_has_not_finished_for_three_minutes(client):
    mark_set("sweep", at=timezone.now() - timedelta(minutes=4))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["sweep"] and body["sweep"].startswith("last finished 2")
    mark_set("sweep")
    assert client.get("/healthz").status_code == 200


def test_healthz_fails_when_a_task_has_waited_too_long(client, settings):
    settings.TASKS = DB_TASKS
    mark_set("sweep")
    from accounts.tasks import prune

    result = prune.enqueue()
    assert client.get("/healthz").json()["queue"] == "ok"
    DBTaskResult.objects.filter(pk=result.id).update(enqueued_at=timezone.now() - timedelta(minutes=11))
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["failed"] == ["queue"]
    assert "oldest task waiting 6" in response.json()["queue"]


def test_the_queue_age_counts_from_when_a_task_may_run(client, settings):
    settings.TASKS = DB_TASKS
    mark_set("sweep")
    from accounts.tasks import prune

    now = timezone.now()
    retried, waiting = prune.enqueue(), prune.enqueue()
    # A retry enqueued long ago, deferred until a minute ago, and a task that has waited 11 minutes.
    DBTaskResult.objects.filter(pk=retried.id).update(enqueued_at=now - timedelta(minutes=30), run_after=now - timedelta(minutes=1))
    DBTaskResult.objects.filter(pk=waiting.id).update(enqueued_at=now - timedelta(minutes=11))
    assert background.queue_state(now)["oldest_seconds"] == pytest.approx(660, abs=2)
    assert client.get("/healthz").json()["failed"] == ["queue"]


def test_a_load_balancer_probe_checks_the_web_node_alone(client):
    mark_set("sweep", at=timezone.now() - timedelta(hours=1))
    assert client.get("/healthz").status_code == 503
    response = client.get("/healthz/web")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok", "database_write": "ok"}


def test_a_mail_task_run_again_sends_only_what_had_not_left_and_retries_what_failed(settings, monkeypatch):
    from django.tasks import TaskContext

    from accounts import mail

    settings.TASKS = DB_TASKS
    batch = [mail.payload(to=[f"{n}@example.com"], subject=n, body=n) for n in ("bad", "one", "two", "three")]
    result = mail.mail_send.enqueue(batch)
    real, sent = EmailBackend.send_messages, []

    def dies_on_the_third(self, messages):
        if messages[0].to == ["bad@example.com"]:
            raise OSError("mailbox unavailable")
        if messages[0].to == ["two@example.com"] and not sent:
            sent.append("killed")
            raise Killed
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", dies_on_the_third)
    with pytest.raises(Killed):
        mail.mail_send.call(TaskContext(task_result=result), batch)
    from django.core import mail as outbox

    assert [m.to for m in outbox.outbox] == [["one@example.com"]]
    assert mail.mail_send.call(TaskContext(task_result=result), batch) == {"sent": 3, "failed": 1}
    assert [m.to for m in outbox.outbox] == [["one@example.com"], ["two@example.com"], ["three@example.com"]]
    retry = DBTaskResult.objects.exclude(pk=result.id).get(task_path="accounts.mail.mail_send")
    assert [m["to"] for m in retry.args_kwargs["args"][0]] == [["bad@example.com"]]
    # The same message carries the same Message-ID on every try.
    ids = {m.extra_headers["Message-ID"] for m in outbox.outbox}
    assert len(ids) == 3 and mail.message_id(result.id, 2) in ids


def test_the_sweep_pings_the_outside_monitor(settings, monkeypatch):
    seen = []

    class Answer(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(background.urllib.request, "urlopen", lambda url, timeout: seen.append((url, timeout)) or Answer(b"OK"))
    settings.GATECHECK_SELF_PING_URL = "https://hc-ping.example/abc"
    from devices.tasks import heartbeats_sweep

    heartbeats_sweep.enqueue()
    assert seen == [("https://hc-ping.example/abc", 10)] and JobMark.objects.filter(name="sweep").exists()


def test_metrics_answer_only_the_token_or_a_listed_network(client, settings, alice):
    settings.GATECHECK_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "x" * 40).status_code == 404
    settings.GATECHECK_METRICS_TOKEN = "short"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer short").status_code == 404  # too short to count
    settings.GATECHECK_METRICS_TOKEN = ""
    settings.GATECHECK_METRICS_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 404
    # Behind a proxy the app was not told of, the proxy's address is everyone's.
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404


def test_metrics_show_requests_tasks_queue_sweep_bots_and_mail(client, settings, alice, mailoutbox):
    settings.GATECHECK_METRICS_TOKEN = TOKEN
    build.heartbeat(build.automation(alice), minutes_ago=60)
    Client().get("/healthz")
    from accounts import mail

    mail.enqueue([mail.payload(to=["x@example.com"], subject="s", body="b")])
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'gatecheck_request_seconds_count{method="GET",view="healthz"}' in text
    assert 'gatecheck_mail_total{outcome="sent"} 1.0' in text
    assert "gatecheck_queue_depth 0.0" in text and "gatecheck_queue_oldest_seconds" in text
    assert "gatecheck_sweep_lag_seconds" in text and "gatecheck_workers_alive 0.0" in text
    assert 'gatecheck_bots{state="down"} 1.0' in text and 'gatecheck_bots{state="up"} 0.0' in text


def test_each_response_carries_a_request_id_taken_from_the_proxy_when_sane(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-42.a").headers["X-Request-ID"] == "edge-42.a"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nforged").headers["X-Request-ID"]
    assert len(made) == 32 and "\n" not in made


def test_the_background_page_is_for_superusers_only(alice_client, settings):
    assert alice_client.get("/background/").status_code == 404
    root = make_user("root", is_superuser=True, is_staff=True)
    WorkerBeat.objects.create(worker_id="w-alive", host="node-1", pid=4242)
    mark_set("sweep")
    text = verify_client(Client(), root).get("/background/").content.decode()
    assert "node-1 · process 4242" in text and "Alive" in text and "On time" in text and "snapshots_nightly" in text


# --- Full disk and read-only database ---------------------------------------------------


def test_reads_survive_a_refused_audit_row_and_security_changes_fail_closed(lena, lena_client, alice, alice_client, read_only_database, caplog):
    read_only_database()
    with caplog.at_level(logging.ERROR, logger="gatecheck.audit"):
        assert lena_client.get(f"/desk/traders/{alice.pk}/").status_code == 200
    assert "refused the audit row of a read (desk.trader_viewed)" in caplog.text
    from accounts.audit import record_event, record_read

    assert record_read(action="desk.viewed", actor=lena) is None
    with pytest.raises(background.DatabaseFault), transaction.atomic():
        record_event(action="mfa.reset", actor=lena)


def test_commands_report_a_refusing_database_in_one_line(alice, read_only_database, tmp_path):
    read_only_database()
    exported = io.StringIO()
    call_command("export_inventory", "--user", "alice", stdout=exported)  # a read: its audit row is logged instead
    document = tmp_path / "inventory.json"
    document.write_text(exported.getvalue())
    assert json.loads(document.read_text())["format"].startswith("gatecheck.inventory/")
    with pytest.raises(CommandError) as refused:
        call_command("import_inventory", "--user", "alice", str(document))
    assert str(refused.value).startswith("The database could not finish this command:") and "\n" not in str(refused.value)


# --- The ping address race --------------------------------------------------------------


def test_of_two_new_ping_addresses_made_at_once_the_loser_says_so(alice, alice_client):
    from devices import services as device_services

    auto = build.automation(alice)
    beat = build.heartbeat(auto)
    first = alice_client.post(f"/automations/{auto.pk}/heartbeat/rotate/")
    cookie = first.cookies.copy()
    device_services.heartbeat_rotate(request=None, heartbeat=Heartbeat.objects.get(pk=beat.pk))  # the other click won
    alice_client.cookies.update(cookie)
    page = alice_client.get(first["Location"]).content.decode()
    assert "no longer works" in page and "/ping/" not in page
