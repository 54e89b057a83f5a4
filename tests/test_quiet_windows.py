"""Broker quiet windows in the calendar feed (issue "Live evidence v2", part 5):
an IBKR trader's feed holds the weekly Sunday token reset and the daily
restart time of TWS or IB Gateway chosen in the profile, as recurring
events with their time zone; another broker's feed holds neither."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from icalendar import Calendar

from checklist import services
from devices.models import TradingProfile
from readiness.brokers import catalog_for

pytestmark = pytest.mark.django_db


def feed(owner) -> list:
    token = services.calendar_feed_rotate(request=None, owner=owner)
    answer = Client().get(f"/calendar.ics?token={token}")
    assert answer.status_code == 200
    calendar = Calendar.from_ical(answer.content)
    events = [e for e in calendar.walk("VEVENT") if "rrule" in e]
    # Each TZID used has its VTIMEZONE (RFC 5545 3.2.19).
    zones = {str(z["TZID"]) for z in calendar.walk("VTIMEZONE")}
    assert {e["dtstart"].params["TZID"] for e in events} <= zones
    return events


def profile_form(**changes) -> dict:
    form = {"broker": "IBKR", "broker_mfa": "ib_key", "support_contact": "", "platform_restart_at": "", "platform_restart_tz": "America/New_York"}
    return form | changes


def test_the_profile_keeps_the_restart_time_and_the_feed_shows_both_windows(alice, alice_client):
    refused = alice_client.post("/profile/", profile_form(platform_restart_at="23:45", platform_restart_tz="Mars/Base"))
    assert "platform_restart_tz" in refused.context["form"].errors
    assert alice_client.post("/profile/", profile_form(platform_restart_at="23:45", platform_restart_tz="Europe/London")).status_code == 302
    assert TradingProfile.objects.get(owner=alice).platform_restart_at == time(23, 45)
    weekly, daily = sorted(feed(alice), key=lambda e: str(e["uid"]))[1], sorted(feed(alice), key=lambda e: str(e["uid"]))[0]
    assert weekly["rrule"]["FREQ"] == ["WEEKLY"] and weekly["rrule"]["BYDAY"] == ["SU"]
    start = weekly["dtstart"].dt
    assert start.tzinfo == ZoneInfo("America/New_York") and (start.weekday(), start.hour, start.minute) == (6, 1, 0)
    assert "token reset" in str(weekly["summary"])
    assert daily["rrule"]["FREQ"] == ["DAILY"]
    assert daily["dtstart"].dt.timetz() == time(23, 45, tzinfo=ZoneInfo("Europe/London"))
    assert "TWS or IB Gateway" in str(daily["summary"])


def test_the_facts_cite_ibkrs_own_pages():
    ibkr = catalog_for("IBKR")
    assert ibkr.weekly_reset == ("SU", "01:00", "America/New_York")
    assert "https://ibkrguides.com/traderworkstation/auto-restart-considerations.htm" in ibkr.sources
    assert "https://ibkrguides.com/traderworkstation/lock-and-exit.htm" in ibkr.sources


def test_another_brokers_feed_has_no_ibkr_windows(alice):
    TradingProfile.objects.create(owner=alice, broker="SCHWAB", platform_restart_at=time(2, 0))
    assert feed(alice) == []


def test_without_a_restart_time_only_the_weekly_reset_is_shown(alice):
    TradingProfile.objects.create(owner=alice, broker="IBKR")
    events = feed(alice)
    assert [str(e["uid"]).split("-", 1)[1] for e in events] == ["weekly-reset@gatecheck"]
    assert isinstance(events[0]["dtstart"].dt, datetime)
