"""Security notices, alerts, reminders, digests, heartbeat alerts and reset
links go only to a confirmed address, whichever path sends them; the rule is
applied in one place, ``accounts.mail`` (issue "One inventory, one read
model", part 4).

Each flow runs twice through its real entry point (an HTTP request, a
command, a heartbeat ping or the sweep): once for a confirmed address, which
is mailed, and once for the same address unconfirmed, which is not, while
the rest of the flow still happens."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.background import Worker
from accounts.models import AuditEvent, User
from desk.models import ReminderLog
from devices.models import Heartbeat, RecoveryMethod
from tests import builders as build
from tests.conftest import PASSWORD, current_code

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 7781"


@pytest.fixture(params=[True, False], ids=["confirmed", "unconfirmed"])
def confirmed(request) -> bool:
    return request.param


def unless_confirmed(confirmed: bool, *people: User) -> None:
    """Take back the confirmation of each person's address, unless ``confirmed``."""
    if not confirmed:
        for person in people:
            person.verified_email = ""
            person.save(update_fields=["verified_email"])


def received(mailoutbox, person: User, subject: str) -> int:
    """How many e-mails about ``subject`` reached the person's address."""
    return sum(1 for m in mailoutbox if person.email in m.to and subject in m.subject)


@pytest.fixture
def alice_overdue(alice, lena) -> User:
    """alice (on lena's desk) has a recovery phone overdue for re-verification
    and dropped a level since yesterday: she is due a reminder, lena a digest."""
    build.ready_inventory(alice)
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=build.today() - timedelta(days=190))
    build.snapshot(alice, days_ago=1, score=90)
    build.snapshot(alice, score=70, recovery__current="partial")
    return alice


def test_a_new_browser_notice_reaches_only_a_confirmed_address(confirmed, alice, mailoutbox):
    unless_confirmed(confirmed, alice)
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert client.post("/accounts/login/code/", {"otp_token": current_code(alice)}).status_code == 302
    assert AuditEvent.objects.filter(action="browser.new_alert", actor=alice).exists()
    assert received(mailoutbox, alice, "new browser") == (1 if confirmed else 0)


def test_a_security_notice_reaches_only_a_confirmed_address(confirmed, alice, alice_client, mailoutbox):
    unless_confirmed(confirmed, alice)
    alice_client.post("/accounts/password/change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert AuditEvent.objects.filter(action="password.changed", subject=alice).exists()
    assert received(mailoutbox, alice, "password was changed") == (1 if confirmed else 0)


def test_an_address_change_is_told_to_the_old_address_only_if_it_was_confirmed(confirmed, alice, alice_client, mailoutbox):
    unless_confirmed(confirmed, alice)
    assert alice_client.post("/accounts/email/change/", {"email": "alice.new@example.com"}).status_code == 302
    assert User.objects.get(pk=alice.pk).email == "alice.new@example.com"
    assert received(mailoutbox, alice, "address was changed") == (1 if confirmed else 0)


def test_a_heartbeat_down_alert_reaches_only_confirmed_trader_and_lead(confirmed, alice, lena, alice_client, mailoutbox):
    unless_confirmed(confirmed, alice, lena)
    bot = build.automation(alice, key=build.api_key(alice))
    alice_client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2})
    ping = alice_client.get(f"/automations/{bot.pk}/heartbeat/address/").context["urls"][0].replace("http://testserver", "")
    assert Client().get(ping).status_code == 200
    # The last check-in was 8 minutes ago: past period (5) + grace (2).
    ago = timezone.now() - timedelta(minutes=8)
    Heartbeat.objects.filter(automation=bot).update(last_at=ago, deadline=ago + timedelta(minutes=7))
    call_command("heartbeat_sweep", stdout=StringIO())
    assert Heartbeat.objects.get(automation=bot).notified == "down"
    assert received(mailoutbox, alice, "stopped checking in") == (1 if confirmed else 0)
    assert received(mailoutbox, lena, "stopped checking in") == (1 if confirmed else 0)


def test_a_heartbeat_failure_ping_alerts_only_confirmed_addresses(confirmed, alice, lena, alice_client, mailoutbox):
    unless_confirmed(confirmed, alice, lena)
    bot = build.automation(alice, key=build.api_key(alice))
    alice_client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2})
    fail = alice_client.get(f"/automations/{bot.pk}/heartbeat/address/").context["urls"][1].replace("http://testserver", "")
    assert Client().get(fail).status_code == 200
    assert Heartbeat.objects.get(automation=bot).notified == "failing"
    assert received(mailoutbox, alice, "authentication failure") == (1 if confirmed else 0)
    assert received(mailoutbox, lena, "authentication failure") == (1 if confirmed else 0)


def test_a_daily_reminder_reaches_only_a_confirmed_address(confirmed, alice_overdue, mailoutbox):
    alice = alice_overdue
    unless_confirmed(confirmed, alice)
    call_command("send_reminders", stdout=StringIO())
    assert received(mailoutbox, alice, "overdue") == (1 if confirmed else 0)
    assert ReminderLog.objects.filter(recipient=alice, kind="daily").exists() == confirmed


def test_a_leads_digest_reaches_only_a_confirmed_address(confirmed, alice_overdue, lena, mailoutbox):
    unless_confirmed(confirmed, lena)
    call_command("send_reminders", stdout=StringIO())
    assert received(mailoutbox, alice_overdue, "overdue") == 1  # the run itself went ahead
    assert received(mailoutbox, lena, "Desk digest") == (1 if confirmed else 0)


def test_a_one_click_reminder_reaches_only_a_confirmed_address(confirmed, alice_overdue, lena_client, mailoutbox):
    alice = alice_overdue
    unless_confirmed(confirmed, alice)
    response = lena_client.post(f"/desk/traders/{alice.pk}/remind/", follow=True)
    assert response.status_code == 200
    assert received(mailoutbox, alice, "overdue") == (1 if confirmed else 0)
    assert AuditEvent.objects.filter(action="desk.reminder_sent", subject=alice).exists() == confirmed


def test_a_password_reset_link_reaches_only_a_confirmed_address(confirmed, alice, mailoutbox):
    unless_confirmed(confirmed, alice)
    response = Client().post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302  # the same answer either way
    assert received(mailoutbox, alice, "Reset your password") == (1 if confirmed else 0)


DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.parametrize("subject", ["new browser", "Reset your password"])
def test_the_worker_asks_again_when_the_address_changed_after_the_message_was_queued(subject, alice, settings, mailoutbox):
    """A message is queued for a confirmed address; by the time the worker
    sends it, the account has a new, unconfirmed address, which gets nothing."""
    settings.TASKS = DB_TASKS
    if subject == "new browser":
        client = Client()
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        client.post("/accounts/login/code/", {"otp_token": current_code(alice)})
    else:
        Client().post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert DBTaskResult.objects.count() == 1
    User.objects.filter(pk=alice.pk).update(email="alice.new@example.com")
    Worker(worker_id="test", queues=["default"], batch=True).run()
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert [m for m in mailoutbox if subject in m.subject] == []
