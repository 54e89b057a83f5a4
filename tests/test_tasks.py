"""Background work: every e-mail leaves the request through a task, the
scheduler knows every periodic job, and each job is idempotent (a second run
does nothing new)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.tasks import TaskContext, task_backends
from django.utils import timezone

from accounts import mail as outgoing
from accounts.models import AuthFailure, SignInAlert, TrustedBrowser, UserSession
from accounts.services import rows_prune
from accounts.tasks import prune
from checklist.models import CurrentScore, ReadinessSnapshot
from checklist.tasks import snapshots_nightly
from desk.models import ReminderLog
from desk.tasks import reminders_daily
from devices.models import RecoveryMethod
from devices.tasks import heartbeats_sweep
from tests import builders as build
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

DUMMY = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": ["default"]}}


@pytest.fixture
def queued(settings):
    """Tasks are only recorded, as a real queue would hold them until a worker runs."""
    settings.TASKS = DUMMY
    backend = task_backends["default"]
    backend.clear()
    return backend.results


def run_as_worker(result):
    """Run a queued task as a worker does, with its context."""
    return result.task.call(TaskContext(task_result=result), *result.args, **result.kwargs)


def task_names(results) -> list[str]:
    return [result.task.name for result in results]


# --- E-mails leave the request -------------------------------------------------------------


def test_a_security_notice_is_queued_and_the_request_returns(alice_client, alice, queued):
    response = alice_client.post("/accounts/security/backup-codes/")
    assert response.status_code == 302  # on to the page that shows the new codes
    assert mail.outbox == []
    assert task_names(queued) == ["mail_send"]
    (message,) = queued[0].args[0]
    assert message["to"] == ["alice@example.com"] and "backup codes" in message["subject"].lower()


def test_a_password_reset_queues_the_account_not_the_link(client, alice, queued):
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert mail.outbox == []
    assert task_names(queued) == ["password_reset_send"]
    # The worker makes the link: nothing in the queue signs anyone in.
    assert "token" not in repr(queued[0].args) and "/reset/" not in repr(queued[0].args)
    queued[0].task.call(*queued[0].args)
    assert len(mail.outbox) == 1 and "/accounts/password/reset/" in mail.outbox[0].body


def test_a_leads_reminder_is_claimed_in_the_request_and_sent_by_a_task(lena_client, alice, queued):
    RecoveryMethod.objects.create(owner=alice, kind="phone", label="+1 555 010 0142", last_verified_on=timezone.localdate() - timedelta(days=200))
    response = lena_client.post(f"/desk/traders/{alice.pk}/remind/")
    assert response.status_code == 302
    assert mail.outbox == [] and task_names(queued) == ["reminders_deliver"]
    assert ReminderLog.objects.filter(recipient=alice, kind="manual").count() == 1
    queued[0].task.call(*queued[0].args)
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_a_failed_delivery_gives_the_claim_back(lena_client, alice, queued, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    lena_client.post(f"/desk/traders/{alice.pk}/remind/")
    monkeypatch.setattr(EmailBackend, "send_messages", lambda self, messages: (_ for _ in ()).throw(OSError("SMTP down")))
    assert queued[0].task.call(*queued[0].args) == 0
    assert not ReminderLog.objects.filter(recipient=alice, kind="manual").exists()


def test_failed_mail_is_retried_later_then_given_up(queued, monkeypatch, settings, caplog):
    from django.core.mail.backends.locmem import EmailBackend

    monkeypatch.setattr(EmailBackend, "send_messages", lambda self, messages: (_ for _ in ()).throw(OSError("SMTP down")))
    batch = [outgoing.payload(to=["a@example.com"], subject="one", body="x"), outgoing.payload(to=["b@example.com"], subject="two", body="y")]
    first = outgoing.mail_send.enqueue(batch)
    assert run_as_worker(first) == {"sent": 0, "failed": 2}
    retry = queued[-1]
    assert retry.task.run_after > timezone.now() and retry.args == [batch, 1]
    last = outgoing.mail_send.enqueue(batch, settings.GATECHECK_MAIL_RETRIES)
    assert run_as_worker(last) == {"sent": 0, "failed": 2}
    assert len(queued) == 3  # the two runs and the one retry
    assert "not sent after 4 attempt(s)" in caplog.text


def test_a_batch_shares_one_connection_and_one_bad_message_spares_the_rest(monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    opened, original = [], EmailBackend.send_messages

    def picky(self, messages):
        if messages[0].to == ["bad@example.com"]:
            raise OSError("mailbox unavailable")
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", picky)
    monkeypatch.setattr(EmailBackend, "open", lambda self: opened.append(self))
    batch = [outgoing.payload(to=[f"{n}@example.com"], subject=n, body=n) for n in ("one", "bad", "three")]
    assert outgoing.deliver(batch) == [1]
    assert len(opened) == 1 and [m.subject for m in mail.outbox] == ["one", "three"]


# --- The scheduler and idempotent jobs --------------------------------------------------------


def test_the_scheduler_knows_each_periodic_job():
    from accounts.background import load_periodic

    assert {"snapshots_nightly", "reminders_daily", "prune", "heartbeats_sweep"} <= set(load_periodic())


def test_nightly_snapshots_twice_store_nothing_new(alice, bob):
    build.prepared_trader(alice)
    snapshots_nightly.enqueue()
    first = list(ReadinessSnapshot.objects.order_by("user_id").values_list("user_id", "date", "score", "statuses"))
    current = list(CurrentScore.objects.order_by("user_id").values_list("user_id", "score", "due"))
    snapshots_nightly.enqueue()
    assert list(ReadinessSnapshot.objects.order_by("user_id").values_list("user_id", "date", "score", "statuses")) == first
    assert list(CurrentScore.objects.order_by("user_id").values_list("user_id", "score", "due")) == current
    assert len(first) == 2


def test_daily_reminders_twice_send_nothing_new(lena, alice, mailoutbox):
    RecoveryMethod.objects.create(owner=alice, kind="phone", label="+1 555 010 0142", last_verified_on=timezone.localdate() - timedelta(days=200))
    snapshots_nightly.enqueue()
    result = reminders_daily.enqueue()
    assert result.return_value["reminders"] == 1 and result.return_value["digests"] == 1
    sent = len(mailoutbox)
    again = reminders_daily.enqueue()
    assert len(mailoutbox) == sent
    assert again.return_value == {"reminders": 0, "digests": 0, "already": 2, "failed": []}


def test_pruning_removes_what_no_longer_counts_and_twice_removes_nothing_more(alice, alice_client, settings):
    now = timezone.now()
    live = UserSession.objects.get(user=alice)
    # An expired Django session, a row past the 24-hour limit, a row whose session is gone.
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=now - timedelta(minutes=1))
    old = UserSession.objects.create(user=alice, session_key="y" * 32, created_at=now - timedelta(days=2), last_seen=now - timedelta(days=2))
    Session.objects.create(session_key=old.session_key, session_data="", expire_date=now + timedelta(days=1))
    UserSession.objects.create(user=alice, session_key="z" * 32, last_seen=now - timedelta(hours=2))
    AuthFailure.objects.create(bucket="ip:192.0.2.1", at=now - timedelta(days=settings.GATECHECK_FAILURE_RETENTION_DAYS + 1))
    AuthFailure.objects.create(bucket="ip:192.0.2.1")
    # An expired trusted browser and a live one; an alert past its link's age and a fresh one.
    for days in (-1, 1):
        TrustedBrowser.objects.create(user=alice, secret_hash="0" * 64, device_id="x", fingerprint="0" * 64, expires_at=now + timedelta(days=days))
    SignInAlert.objects.create(user=alice, session_row=0, created_at=now - timedelta(days=8))
    SignInAlert.objects.create(user=alice, session_row=0)
    result = prune.enqueue()
    assert result.return_value == {"sessions": 2, "session_rows": 2, "failures": 1, "task_results": 0, "trusted_browsers": 1, "alerts": 1}
    assert TrustedBrowser.objects.count() == 1 and SignInAlert.objects.count() == 1
    assert list(UserSession.objects.values_list("pk", flat=True)) == [live.pk]
    assert AuthFailure.objects.count() == 1
    assert alice_client.get("/").status_code == 200  # the live session is untouched
    assert rows_prune() == {"sessions": 0, "session_rows": 0, "failures": 0, "task_results": 0, "trusted_browsers": 0, "alerts": 0}


def test_pruning_removes_old_task_results():
    from django_tasks_db.models import DBTaskResult

    old = timezone.now() - timedelta(days=30)
    DBTaskResult.objects.create(
        task_path="accounts.tasks.prune", args_kwargs={"args": [], "kwargs": {}}, status="SUCCESSFUL", finished_at=old, enqueued_at=old,
        queue_name="default", backend_name="default", priority=0,
    )
    DBTaskResult.objects.create(
        task_path="accounts.tasks.prune", args_kwargs={"args": [], "kwargs": {}}, status="READY", enqueued_at=old,
        queue_name="default", backend_name="default", priority=0,
    )
    assert rows_prune()["task_results"] == 1
    assert DBTaskResult.objects.count() == 1


def test_a_newcomer_without_a_desk_gets_no_task_mail(db, mailoutbox):
    make_user("newcomer")
    reminders_daily.enqueue()
    assert mailoutbox == []


def test_the_heartbeat_sweep_twice_tells_nothing_new(alice, mailoutbox):
    from devices.models import Heartbeat

    build.prepared_trader(alice)
    ago = timezone.now() - timedelta(minutes=30)
    Heartbeat.objects.filter(owner=alice).update(last_at=ago, deadline=ago + timedelta(minutes=7))
    first = heartbeats_sweep.enqueue()
    second = heartbeats_sweep.enqueue()
    assert (first.return_value, second.return_value) == ({"went_down": 1}, {"went_down": 0})
    assert [m.subject for m in mailoutbox] == ["[Gatecheck] Automation 'ES spread bot' stopped checking in"]
