"""Heartbeat schedules (CHECKLIST.md "Heartbeats v2") under a controlled clock:
cron times across a DST change, an XNYS holiday and early close, a weekend,
and the margins around a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devices.schedules import Schedule, next_change, next_checkins, problems, status

NY_CRON = Schedule(kind="cron", cron="30 9 * * 1-5", tz="America/New_York")
XNYS = Schedule(kind="market", exchange="XNYS", before_open=30, after_close=15)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def state(schedule, now, last_success=None, last_kind="success", period=5, grace=2, created=utc(2026, 1, 1)):
    return status(schedule, last_kind=last_kind if last_success or last_kind == "failure" else None, last_success=last_success,
                  period_minutes=period, grace_minutes=grace, created_at=created, now=now)


def test_cron_times_follow_the_zone_across_the_dst_change():
    # 2026-11-01: New York leaves daylight time; 09:30 local is 13:30 UTC before, 14:30 after.
    fri = utc(2026, 10, 30, 13, 31)
    assert next_checkins(NY_CRON, 5, fri, 3) == [utc(2026, 11, 2, 14, 30), utc(2026, 11, 3, 14, 30), utc(2026, 11, 4, 14, 30)]
    # Up until the due time, late within grace, down after.
    assert state(NY_CRON, utc(2026, 11, 2, 14, 29), last_success=fri) == "up"
    assert state(NY_CRON, utc(2026, 11, 2, 14, 31), last_success=fri) == "late"
    assert state(NY_CRON, utc(2026, 11, 2, 14, 33), last_success=fri) == "down"
    assert next_change(NY_CRON, last_kind="success", last_success=fri, period_minutes=5, grace_minutes=2,
                       created_at=fri, now=fri) == utc(2026, 11, 2, 14, 32)


def test_a_cron_bot_that_never_checked_in_is_new_until_its_first_time_and_grace():
    created = utc(2026, 12, 7, 12, 0)  # a Monday, 07:00 in New York
    assert state(NY_CRON, utc(2026, 12, 7, 14, 31), created=created) == "new"
    assert state(NY_CRON, utc(2026, 12, 7, 14, 33), created=created) == "down"


def test_market_windows_know_holidays_early_closes_and_weekends():
    # 2026-12-24: XNYS closes at 13:00 New York (18:00 UTC); 12-25 is a holiday; 12-26/27 a weekend.
    eve = utc(2026, 12, 24, 17, 0)
    assert state(XNYS, eve, last_success=eve - timedelta(minutes=4)) == "up"
    assert state(XNYS, utc(2026, 12, 24, 18, 14), last_success=eve) == "down"
    assert state(XNYS, utc(2026, 12, 24, 18, 16), last_success=eve) == "idle"  # close + 15 min margin
    assert state(XNYS, utc(2026, 12, 25, 15, 0), last_success=eve) == "idle"  # Christmas
    assert state(XNYS, utc(2026, 12, 26, 15, 0), last_success=eve) == "idle"  # Saturday
    # Monday: the window opens 30 min before the 14:30 UTC open; nothing is expected before it.
    assert state(XNYS, utc(2026, 12, 28, 13, 59), last_success=eve) == "idle"
    assert state(XNYS, utc(2026, 12, 28, 14, 4), last_success=eve) == "up"  # counted from the window's start
    assert state(XNYS, utc(2026, 12, 28, 14, 8), last_success=eve) == "down"
    # The sweep's next look: Monday's window start + period + grace, nothing before.
    assert next_change(XNYS, last_kind="success", last_success=eve, period_minutes=5, grace_minutes=2,
                       created_at=eve, now=utc(2026, 12, 24, 18, 16)) == utc(2026, 12, 28, 14, 7)
    # A bot down inside a window: looked at now until it is told, then at the window's close (it turns idle).
    assert next_change(XNYS, last_kind="success", last_success=eve, period_minutes=5, grace_minutes=2,
                       created_at=eve, now=utc(2026, 12, 24, 18, 0)) == utc(2026, 12, 24, 18, 0)
    assert next_change(XNYS, last_kind="success", last_success=eve, period_minutes=5, grace_minutes=2,
                       created_at=eve, now=utc(2026, 12, 24, 18, 0), told="down") == utc(2026, 12, 24, 18, 15)


def test_a_failure_stays_failing_inside_and_outside_the_window():
    assert state(XNYS, utc(2026, 12, 26, 15, 0), last_kind="failure") == "failing"
    assert next_change(XNYS, last_kind="failure", last_success=None, period_minutes=5, grace_minutes=2,
                       created_at=utc(2026, 12, 1), now=utc(2026, 12, 26)) is None


def test_the_next_five_check_ins_of_a_market_bot_skip_the_closed_days():
    times = next_checkins(Schedule(kind="market", exchange="XNYS"), 120, utc(2026, 12, 24, 16, 0))
    assert times == [utc(2026, 12, 24, 18, 0), utc(2026, 12, 28, 16, 30), utc(2026, 12, 28, 18, 30), utc(2026, 12, 28, 20, 30),
                     utc(2026, 12, 29, 16, 30)]


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Schedule(kind="cron", cron="61 * * * *"), "cron"),
        (Schedule(kind="cron", cron="* * * *"), "cron"),
        (Schedule(kind="cron", cron="*/5 * * * *", tz="Mars/Olympus"), "tz"),
        (Schedule(kind="market", exchange="XXXX"), "exchange"),
        (Schedule(kind="market", exchange="XNYS", before_open=241), "before_open"),
        (Schedule(kind="hourly"), "kind"),
    ],
)
def test_a_bad_schedule_is_refused_by_field(schedule, field):
    assert field in problems(schedule)


def test_good_schedules_pass():
    assert problems(NY_CRON) == {} and problems(XNYS) == {} and problems(Schedule()) == {}
    assert {"XNYS", "XNAS", "XHKG", "XLON", "XTKS", "XETR"} <= set(__import__("devices.schedules").schedules.exchanges())


# --- Through the app: the form, the file and the sweep ------------------------------------------

from django.core import mail  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from devices import services  # noqa: E402
from devices.inventory import InventoryInvalid, export_inventory, load, replace_inventory  # noqa: E402
from devices.models import Heartbeat  # noqa: E402
from tests import builders as build  # noqa: E402
from tests.conftest import verify_client  # noqa: E402


@pytest.mark.django_db
def test_the_form_keeps_a_market_schedule_and_shows_the_next_check_ins(alice):
    bot = build.automation(alice, key=build.api_key(alice))
    client = verify_client(Client(), alice)
    url = f"/automations/{bot.pk}/heartbeat/"
    refused = client.post(url, {"period_minutes": 5, "grace_minutes": 2, "schedule_kind": "market", "exchange": "", "before_open": 30})
    assert "exchange" in refused.context["form"].errors
    refused = client.post(url, {"period_minutes": 5, "grace_minutes": 2, "schedule_kind": "cron", "cron": "99 * * * *", "tz": "UTC"})
    assert "cron" in refused.context["form"].errors and not Heartbeat.objects.exists()
    client.post(url, {"period_minutes": 5, "grace_minutes": 2, "schedule_kind": "market", "exchange": "XNYS", "before_open": 30, "after_close": 15})
    beat = Heartbeat.objects.get(automation=bot)
    assert beat.schedule == Schedule(kind="market", exchange="XNYS", before_open=30, after_close=15)
    page = client.get(url).content.decode()
    assert page.count("data-local-time") == 5 and "XNYS sessions" in page
    # A bot that never checks in goes down inside the next window: the sweep will look then.
    assert beat.deadline is not None


@pytest.mark.django_db
def test_a_schedule_travels_in_the_file_and_a_bad_one_is_refused_at_its_path(alice):
    bot = build.automation(alice, key=build.api_key(alice))
    Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=5, grace_minutes=2, schedule_kind="cron",
                             cron="*/5 9-16 * * 1-5", tz="America/New_York")
    document = export_inventory(alice)
    assert document["automations"][0]["heartbeat"]["schedule"] == {"kind": "cron", "cron": "*/5 9-16 * * 1-5", "tz": "America/New_York"}
    replace_inventory(user=alice, plan=load(__import__("json").dumps(document)))
    assert export_inventory(alice) == document
    document["automations"][0]["heartbeat"]["schedule"] = {"kind": "market", "exchange": "XXXX", "before_open": 300}
    with pytest.raises(InventoryInvalid) as refused:
        load(__import__("json").dumps(document))
    paths = {p.path for p in refused.value.problems}
    assert paths == {"automations[0].heartbeat.schedule.exchange", "automations[0].heartbeat.schedule.before_open"}


@pytest.mark.django_db
def test_a_market_bot_is_idle_when_closed_and_alerts_once_per_session(alice):
    bot = build.automation(alice, key=build.api_key(alice))
    beat = Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=5, grace_minutes=2, schedule_kind="market", exchange="XNYS")
    # Its last check-in: Christmas Eve, 17:00 UTC (the early close is 18:00).
    eve = utc(2026, 12, 24, 17, 0)
    Heartbeat.objects.filter(pk=beat.pk).update(last_kind="success", last_at=eve, deadline=eve + timedelta(minutes=7), notified="up")
    mail.outbox.clear()
    assert services.heartbeat_sweep(now=utc(2026, 12, 24, 17, 8)) == 1  # down inside the session
    assert services.heartbeat_sweep(now=utc(2026, 12, 24, 17, 30)) == 0  # told once
    services.heartbeat_sweep(now=utc(2026, 12, 24, 18, 1))  # the close: idle, silently
    beat.refresh_from_db()
    assert beat.notified == "idle" and beat.deadline == utc(2026, 12, 28, 14, 37)
    assert services.heartbeat_sweep(now=utc(2026, 12, 26, 12, 0)) == 0  # the weekend: nothing due
    assert services.heartbeat_sweep(now=utc(2026, 12, 28, 14, 38)) == 1  # still dead at Monday's open: a new incident
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_a_quiet_bot_whose_period_is_shortened_is_told_down(alice, mailoutbox):
    bot = build.automation(alice, key=build.api_key(alice))
    beat = Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=60, grace_minutes=5)
    ago = timezone.now() - timedelta(minutes=20)
    Heartbeat.objects.filter(pk=beat.pk).update(last_kind="success", last_at=ago, deadline=ago + timedelta(minutes=65), notified="up")
    client = verify_client(Client(), alice)
    client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2, "schedule_kind": "simple"})
    beat.refresh_from_db()
    assert beat.last_at == ago  # the form wrote the schedule only
    assert services.heartbeat_sweep(now=timezone.now() + timedelta(seconds=1)) == 1
    assert Heartbeat.objects.get(pk=beat.pk).notified == "down"


@pytest.mark.django_db
def test_a_market_bot_imported_mid_session_that_never_checks_in_is_told_down(alice):
    document = {"format": "gatecheck.inventory/2", "automations": [{
        "name": "Open bot", "api_key": None, "token_refresh": True, "fallback_contact": "", "on_auth_failure": "flatten", "status": "active",
        "heartbeat": {"period_minutes": 5, "grace_minutes": 2, "schedule": {"kind": "market", "exchange": "XNYS"}}}]}
    full = export_inventory(alice) | document
    replace_inventory(user=alice, plan=load(__import__("json").dumps(full)))
    tuesday = utc(2026, 12, 8, 16, 0)  # inside Tuesday's session
    assert services.heartbeat_sweep(now=tuesday) == 1
    assert Heartbeat.objects.get().notified == "down"


@pytest.mark.parametrize(
    ("schedule", "path"),
    [({"kind": []}, "kind"), ({"kind": "cron", "cron": "0 0 30 2 *", "tz": "UTC"}, "cron"), ({"kind": "cron", "cron": "* * * * *", "tz": []}, "tz"),
     ({"kind": "cron", "cron": "* * * * * " + "1" * 120, "tz": "UTC"}, "cron")],
)
def test_a_bad_schedule_in_a_file_is_refused_at_its_path_without_a_crash(schedule, path):
    document = {"format": "gatecheck.inventory/2", "automations": [{
        "name": "Bot", "api_key": None, "token_refresh": True, "fallback_contact": "", "on_auth_failure": "flatten", "status": "active",
        "heartbeat": {"period_minutes": 5, "grace_minutes": 2, "schedule": schedule}}]}
    with pytest.raises(InventoryInvalid) as refused:
        load(__import__("json").dumps(document))
    assert f"automations[0].heartbeat.schedule.{path}" in {p.path for p in refused.value.problems}


def test_a_cron_that_never_comes_round_is_refused():
    assert "cron" in problems(Schedule(kind="cron", cron="0 0 30 2 *"))


def test_only_mic_codes_are_exchanges():
    from devices.schedules import exchanges

    assert "XNAS" in exchanges() and "NYSE" not in exchanges() and "LSE" not in exchanges()
