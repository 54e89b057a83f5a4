"""One trader's dates must not break anyone else (issue 10): values at the ends
of the calendar, stored before the importer refused them (or written by any
other path), leave every page of that trader, their lead's desk page and CSV,
other traders, and the nightly jobs working."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from checklist.models import ReadinessSnapshot
from devices.models import AcceptedRisk, Drill
from readiness import rules
from readiness.rules import add_days
from tests.builders import api_key, device, lead_pages, prepared_trader, recovery, trader_pages
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db

END = date.max
END_MOMENT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def poison(user) -> None:
    """Every stored date of ``user`` that a due date or a chart is computed from, at the end of the calendar."""
    prepared_trader(user)
    device(user, "Doomsday laptop", kind="laptop", validated_on=END)
    recovery(user, "email", "end@example.com", verified_on=END)
    api_key(user, "end-key", created_on=END, last_rotated_on=END, expires_on=END)
    api_key(user, "start-key", created_on=date.min, last_rotated_on=None, expires_on=date.min)
    Drill.objects.create(owner=user, lost_device="iPhone", started_at=END_MOMENT - timedelta(minutes=5), finished_at=END_MOMENT, completed=True)
    start = datetime(1, 1, 1, tzinfo=UTC)
    Drill.objects.create(owner=user, lost_device="iPhone", started_at=start, finished_at=start + timedelta(minutes=5), completed=True)
    AcceptedRisk.objects.create(owner=user, rule="marketdata.covered", reason="forever", until=END)


def test_add_days_holds_at_the_ends_of_the_calendar():
    assert add_days(END, 365) == END
    assert add_days(date.min, -1) == date.min
    assert add_days(date(2026, 1, 1), 1) == date(2026, 1, 2)


def test_due_dates_of_end_of_calendar_values_are_computed(alice):
    poison(alice)
    from devices.selectors import inventory_for, limits

    inventory = inventory_for(alice)
    for as_of in (date(2026, 12, 1), END, date.min):
        rules.evaluate(inventory, as_of, limits())
        rules.coming_due(inventory, as_of, limits())
        assert all(isinstance(item.due_on, date) for item in rules.upcoming_dates(inventory, as_of, limits()))


def test_every_page_of_the_trader_answers_200(alice, alice_client):
    poison(alice)
    for page in trader_pages(alice):
        assert alice_client.get(page).status_code == 200, page


def test_the_calendar_feed_answers_200(alice, alice_client):
    poison(alice)
    from checklist import services

    token = services.calendar_feed_rotate(request=None, owner=alice)
    response = alice_client.get(f"/calendar.ics?token={token}")
    assert response.status_code == 200
    assert b"BEGIN:VEVENT" in response.content


def test_the_leads_desk_page_csv_and_trader_page_answer_200(alice, lena, lena_client):
    poison(alice)
    call_command("snapshot_readiness")
    for page in lead_pages(alice):
        assert lena_client.get(page).status_code == 200, page


def test_another_trader_on_the_same_desk_is_not_affected(alice, lena, lena_client):
    bob = make_user("bob")
    lena.led_desks.get().members.add(bob)
    prepared_trader(bob)
    poison(alice)
    assert verify_client(lena_client.__class__(), bob).get("/").status_code == 200
    response = lena_client.get("/desk/")
    assert response.status_code == 200


def test_the_nightly_jobs_finish_for_everyone(alice, lena, mailoutbox, capsys):
    bob = make_user("bob")
    lena.led_desks.get().members.add(bob)
    poison(alice)
    call_command("snapshot_readiness")
    assert ReadinessSnapshot.objects.filter(user__in=[alice, bob]).count() == 2
    call_command("send_reminders")
    assert {message.to[0] for message in mailoutbox} >= {"alice@example.com", "bob@example.com"}


def test_a_job_that_fails_on_one_trader_logs_it_and_goes_on(alice, bob, lena, monkeypatch, caplog, mailoutbox):
    prepared_trader(bob)
    device(bob, "Old laptop", validated_on=timezone.localdate() - timedelta(days=360))  # due in 5 days: bob gets a reminder
    lena.led_desks.get().members.add(bob)
    from desk import services as desk_services

    real = desk_services.reminder_items

    def broken_for_alice(inventory, as_of):
        if any(d.name == "Doomsday laptop" for d in inventory.devices):
            raise RuntimeError("broken trader")
        return real(inventory, as_of)

    device(alice, "Doomsday laptop", validated_on=date(2026, 1, 1))
    monkeypatch.setattr(desk_services, "reminder_items", broken_for_alice)
    with caplog.at_level(logging.ERROR), pytest.raises(CommandError, match=rf"Reminders failed for 1 user\(s\) \(ids {alice.pk}\)"):
        call_command("send_reminders")
    assert "bob@example.com" in {message.to[0] for message in mailoutbox}
    assert any("alice" in r.getMessage() or str(alice.pk) in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_snapshot_job_that_fails_on_one_trader_logs_it_and_goes_on(alice, bob, monkeypatch, caplog):
    from checklist import services

    real = services.rules.evaluate

    def broken_for_alice(inventory, as_of, limits):
        if any(d.name == "Doomsday laptop" for d in inventory.devices):
            raise RuntimeError("broken trader")
        return real(inventory, as_of, limits)

    device(alice, "Doomsday laptop", validated_on=date(2026, 1, 1))
    monkeypatch.setattr(services.rules, "evaluate", broken_for_alice)
    with caplog.at_level(logging.ERROR), pytest.raises(CommandError, match=rf"Scoring failed for 1 user\(s\) \(ids {alice.pk}\)"):
        call_command("snapshot_readiness")
    assert ReadinessSnapshot.objects.filter(user=bob).exists()
    assert not ReadinessSnapshot.objects.filter(user=alice).exists()
    assert any(str(alice.pk) in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
