"""manage.py send_reminders: trader reminders and lead digests, once a day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Desk
from desk.models import ReminderLog
from devices.models import ApiKey, RecoveryMethod
from tests.builders import ready_inventory, snapshot, today
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def run(as_of: date | None = None) -> str:
    from io import StringIO

    out = StringIO()
    args = ["--as-of", as_of.isoformat()] if as_of else []
    call_command("send_reminders", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def desk_with_work(alice, lena):
    """alice: phone overdue, key due soon; carl: nothing due; lena leads both."""
    carl = make_user("carl", first_name="Carl", last_name="Berg")
    Desk.objects.get(name="Futures desk").members.add(carl)
    ready_inventory(alice)
    ready_inventory(carl, phone="+44 20 7946 0958", email="carl@example.org")
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=today() - timedelta(days=190))
    ApiKey.objects.create(
        owner=alice,
        label="algo-futures",
        scopes=["read"],
        service_account=True,
        created_on=today() - timedelta(days=10),
        expires_on=today() + timedelta(days=6),
    )
    # alice was ready yesterday and is at risk today; carl stays ready.
    snapshot(alice, days_ago=1, score=90)
    snapshot(alice, score=70, recovery__current="partial")
    snapshot(carl, days_ago=1, score=95)
    snapshot(carl, score=95)
    return carl


def test_trader_gets_overdue_and_due_soon_items_in_text_and_html(desk_with_work, mailoutbox):
    run()
    to_alice = [m for m in mailoutbox if m.to == ["alice@example.com"]]
    assert len(to_alice) == 1
    message = to_alice[0]
    assert "1 overdue" in message.subject
    assert "Overdue:" in message.body and "Re-verify recovery phone '+1 *** *** 0142'" in message.body
    assert "API key 'algo-futures' expires" in message.body
    assert "555 010" not in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "<li>" in html and "algo-futures" in html
    assert not [m for m in mailoutbox if m.to == ["carl@example.com"]]  # nothing due


def test_running_twice_on_a_day_sends_nothing_new(desk_with_work, mailoutbox):
    first = run()
    sent = len(mailoutbox)
    assert sent == 2  # alice's reminder and lena's digest
    second = run()
    assert len(mailoutbox) == sent
    assert "sent 1 reminder(s) and 1 digest(s)" in first
    assert "sent 0 reminder(s) and 0 digest(s); 2 already sent today" in second
    assert ReminderLog.objects.filter(kind="daily", date=today()).count() == 1
    assert ReminderLog.objects.filter(kind="digest", date=today()).count() == 1


def test_lead_digest_names_who_dropped_a_level_and_who_is_overdue(desk_with_work, mailoutbox, lena):
    run()
    digest = next(m for m in mailoutbox if m.to == ["lena@example.com"])
    assert "Desk digest" in digest.subject
    body = digest.body
    assert "Futures desk" in body
    assert "Dropped a level since yesterday:\n- alice: Ready → At risk (90 → 70)" in body
    assert "Overdue:\n- alice (At risk): 1 overdue: recovery check" in body
    assert "Carl Berg" not in body
    # The digest names kinds of items, never a number or address.
    assert "0142" not in body and "example.net" not in body
    assert "Futures desk" in digest.alternatives[0][0]


def test_no_digest_on_a_quiet_day(lena, alice, mailoutbox):
    ready_inventory(alice)
    snapshot(alice, days_ago=1, score=95)
    snapshot(alice, score=95)
    run()
    assert mailoutbox == []


def test_as_of_moves_the_day_and_its_idempotency_key(desk_with_work, mailoutbox):
    run(today() + timedelta(days=1))
    run(today() + timedelta(days=1))
    assert ReminderLog.objects.filter(date=today() + timedelta(days=1), kind="daily").count() == 1
    run()
    assert ReminderLog.objects.filter(date=today(), kind="daily").count() == 1


def test_someone_with_no_desk_and_no_inventory_is_not_reminded(db, mailoutbox):
    make_user("newcomer")
    run()
    assert mailoutbox == []


def test_bad_as_of_is_refused(db):
    with pytest.raises(CommandError, match="as-of"):
        call_command("send_reminders", "--as-of", "yesterday")


def test_a_failed_send_is_logged_and_retried_on_the_next_run(desk_with_work, mailoutbox, monkeypatch, caplog):
    from django.core.mail.backends.locmem import EmailBackend

    def broken(self, messages):
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailBackend, "send_messages", broken)
    # The run goes on past the failed send, logs it, and exits non-zero at the end.
    with pytest.raises(CommandError, match="Reminders failed"):
        run()
    assert "SMTP down" in caplog.text
    assert not ReminderLog.objects.filter(kind="daily").exists()
    monkeypatch.undo()
    run()
    assert ReminderLog.objects.filter(kind="daily").count() == 1
    assert len(mailoutbox) == 2


def test_links_use_the_configured_site_url(desk_with_work, mailoutbox, settings):
    settings.GATECHECK_SITE_URL = "https://gatecheck.example.com"
    run()
    to_alice = next(m for m in mailoutbox if m.to == ["alice@example.com"])
    assert "https://gatecheck.example.com/" in to_alice.body
    digest = next(m for m in mailoutbox if m.to == ["lena@example.com"])
    assert "https://gatecheck.example.com/desk/" in digest.body


def test_without_a_site_url_the_mail_says_where_to_go(desk_with_work, mailoutbox):
    run()
    to_alice = next(m for m in mailoutbox if m.to == ["alice@example.com"])
    assert "Sign in to Gatecheck to see your dashboard." in to_alice.body


def test_reminders_and_digests_go_only_to_confirmed_addresses(desk_with_work, mailoutbox, alice, lena):
    alice.verified_email = ""
    alice.save()
    lena.email = "lena.new@example.com"  # changed since it was confirmed
    lena.save()
    run()
    assert not [m for m in mailoutbox if m.to in (["alice@example.com"], ["lena.new@example.com"], ["lena@example.com"])]
