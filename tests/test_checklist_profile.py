"""The trading profile (/profile/) and the calendar feed of coming-due dates."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from accounts.models import AuditEvent
from checklist.models import CalendarFeed, ReadinessSnapshot
from devices.models import TradingProfile
from tests import builders as build

pytestmark = pytest.mark.django_db

PROFILE_POST = {
    "broker": "IBKR",
    "broker_mfa": "ib_key",
    "regions_traded": ["US", "HK"],
    "plan_complex_orders": "tws",
    "plan_transfers_statements": "client_portal",
    "plan_alerts_light_execution": "mobile",
    "support_contact": "+1 877 442 2757",
}


def test_profile_page_offers_every_input_of_the_profile(alice_client):
    html = alice_client.get("/profile/").content.decode()
    for name in PROFILE_POST:
        assert f'name="{name}"' in html
    assert "Not recorded yet" in html
    assert "Suits: IBKR Desktop or Trader Workstation." in html


def test_saving_the_profile_stores_it_audits_old_and_new_values_and_rescores(alice, alice_client):
    response = alice_client.post("/profile/", PROFILE_POST)
    assert response.status_code == 302
    profile = TradingProfile.objects.get(owner=alice)
    assert profile.broker_mfa == "ib_key"
    assert profile.regions_traded == ["US", "HK"]
    assert profile.plan_complex_orders == "tws"
    event = AuditEvent.objects.get(action="profile.updated")
    assert event.actor == alice and event.subject == alice
    assert event.details["broker_mfa"] == {"old": None, "new": "ib_key"}
    assert event.details["regions_traded"] == {"old": None, "new": ["US", "HK"]}
    snapshot = ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate())
    assert snapshot.statuses["mfa.broker"] == "pass"

    alice_client.post("/profile/", {**PROFILE_POST, "broker_mfa": "sms"})
    change = AuditEvent.objects.filter(action="profile.updated").order_by("-pk").first()
    assert change.details == {"broker_mfa": {"old": "ib_key", "new": "sms"}}
    assert ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses["mfa.broker"] == "partial"


def test_saving_an_unchanged_profile_writes_no_audit_event(alice, alice_client):
    alice_client.post("/profile/", PROFILE_POST)
    alice_client.post("/profile/", PROFILE_POST)
    assert AuditEvent.objects.filter(action="profile.updated").count() == 1


def test_empty_choices_are_stored_as_not_recorded(alice, alice_client):
    alice_client.post("/profile/", {**PROFILE_POST, "broker_mfa": "", "plan_alerts_light_execution": "", "regions_traded": []})
    profile = TradingProfile.objects.get(owner=alice)
    assert profile.broker_mfa is None and profile.plan_alerts_light_execution is None
    assert profile.regions_traded == []


def test_unknown_values_are_refused(alice, alice_client):
    response = alice_client.post("/profile/", {**PROFILE_POST, "regions_traded": ["MARS"], "broker_mfa": "carrier_pigeon"})
    assert response.status_code == 200
    assert not TradingProfile.objects.filter(owner=alice).exists()
    assert "Select a valid choice" in response.content.decode()


def test_a_secret_pasted_as_support_contact_is_refused_and_not_stored(alice, alice_client):
    secret = "password=hunter2-Tr4d1ng"
    response = alice_client.post("/profile/", {**PROFILE_POST, "support_contact": secret})
    assert response.status_code == 200
    assert "Gatecheck never stores secrets" in response.content.decode()
    assert not TradingProfile.objects.filter(owner=alice).exists()
    assert not any(secret in str(e.details) for e in AuditEvent.objects.all())


def test_profile_writes_need_a_csrf_token(alice):
    from tests.conftest import verify_client

    client = verify_client(Client(enforce_csrf_checks=True), alice)
    assert client.post("/profile/", PROFILE_POST).status_code == 403
    assert not TradingProfile.objects.filter(owner=alice).exists()


# --------------------------------------------------------------------------
# Calendar feed
# --------------------------------------------------------------------------


def _turn_on_feed(client) -> str:
    response = client.post("/profile/calendar/", follow=True)
    assert response.redirect_chain == [("/profile/calendar/address/", 302)]
    return html.unescape(re.search(r'value="(http[^"]+\.ics\?token=[^"]+)"', response.content.decode()).group(1)).replace("http://testserver", "")


def test_turning_the_feed_on_needs_a_recent_second_factor(stale_mfa, alice):
    response = stale_mfa.post("/profile/calendar/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    assert not CalendarFeed.objects.filter(owner=alice).exists()


def test_the_feed_confirmation_page_is_shown_on_get_and_changes_nothing(alice, alice_client):
    response = alice_client.get("/profile/calendar/")
    assert response.status_code == 200
    assert "Turn it on" in response.content.decode()
    assert not CalendarFeed.objects.filter(owner=alice).exists()


def test_the_feed_address_is_shown_once_and_only_its_digest_is_stored(alice, alice_client):
    response = alice_client.post("/profile/calendar/", follow=True)
    assert "no-store" in response["Cache-Control"]
    url = _turn_on_feed(alice_client)
    token = re.search(r"^/calendar\.ics\?token=([A-Za-z0-9_-]+)$", url).group(1)
    assert len(token) >= 40
    feed = CalendarFeed.objects.get(owner=alice)
    assert feed.token != token and feed.token == CalendarFeed.digest(token)
    assert token not in alice_client.get("/profile/").content.decode()
    events = AuditEvent.objects.filter(action="calendar.token_rotated")
    assert events.count() == 2
    assert all(token not in str(e.details) + e.object_label for e in events)


def test_the_feed_serves_coming_due_dates_as_icalendar(alice, alice_client):
    today = timezone.localdate()
    build.api_key(alice, "algo-futures", expires_on=today + timedelta(days=20))
    build.recovery(alice, "phone", "+1 555 010 0142", verified_on=today - timedelta(days=100))
    url = _turn_on_feed(alice_client)
    response = Client().get(url)  # a calendar app: no session at all
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    events = {str(e["SUMMARY"]): e for e in calendar.walk("VEVENT")}
    assert events["API key 'algo-futures' expires"].decoded("DTSTART") == today + timedelta(days=20)
    assert events["Rotate API key 'algo-futures'"].decoded("DTSTART") == today + timedelta(days=80)
    assert events["Re-verify recovery phone '+1 *** *** 0142'"].decoded("DTSTART") == today + timedelta(days=80)
    assert events["Run your first device-loss drill"].decoded("DTSTART") == today
    assert "http://testserver/keys/" in str(events["API key 'algo-futures' expires"]["URL"])
    uids = [str(e["UID"]) for e in calendar.walk("VEVENT")]
    assert len(set(uids)) == len(uids)


def test_event_uids_stay_the_same_when_a_date_moves(alice, alice_client):
    key = build.api_key(alice, "algo-futures")
    url = _turn_on_feed(alice_client)
    first = {str(e["SUMMARY"]): str(e["UID"]) for e in Calendar.from_ical(Client().get(url).content).walk("VEVENT")}
    key.expires_on = key.expires_on + timedelta(days=30)
    key.save()
    second = {str(e["SUMMARY"]): str(e["UID"]) for e in Calendar.from_ical(Client().get(url).content).walk("VEVENT")}
    assert first == second


def test_the_feed_token_grants_that_feed_only(alice, alice_client):
    url = _turn_on_feed(alice_client)
    calendar_app = Client()
    assert calendar_app.get(url).status_code == 200
    for page in ("/", "/profile/", "/api/readiness/", "/recovery-card/"):
        response = calendar_app.get(page)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), page
    assert calendar_app.post(url).status_code == 405
    assert calendar_app.head(url).status_code == 200


def test_rotating_the_feed_address_kills_the_old_one(alice, alice_client):
    old = _turn_on_feed(alice_client)
    new = _turn_on_feed(alice_client)
    assert old != new
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200


def test_turning_the_feed_off_is_audited_and_the_address_stops_working(alice, alice_client):
    url = _turn_on_feed(alice_client)
    response = alice_client.post("/profile/calendar/off/")
    assert response.status_code == 302
    assert not CalendarFeed.objects.filter(owner=alice).exists()
    assert AuditEvent.objects.filter(action="calendar.token_revoked", subject=alice).exists()
    assert Client().get(url).status_code == 404
    assert alice_client.get("/profile/calendar/off/").status_code == 405


def test_unknown_or_malformed_tokens_are_not_found(db):
    assert Client().get("/calendar.ics?token=" + "A" * 43).status_code == 404
    assert Client().get("/calendar.ics?token=short").status_code == 404
    assert Client().get("/calendar.ics").status_code == 404


def test_a_deactivated_users_feed_stops(alice, alice_client):
    url = _turn_on_feed(alice_client)
    alice.is_active = False
    alice.save()
    assert Client().get(url).status_code == 404


def test_a_refused_secret_is_not_echoed_back_by_any_readiness_form(alice_client):
    secret = "password: Hunter2-correct-horse-77"
    for url, data in (
        ("/profile/", {"broker": "IBKR", "support_contact": secret}),
        ("/subscriptions/add/", {"region": "US", "feed": secret, "active": "on"}),
        ("/risks/accept/", {"rule": "drill.rehearsed", "reason": secret, "until": "2026-12-01"}),
    ):
        response = alice_client.post(url, data)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "never stores secrets" in html or "never store" in html, url
        assert "Hunter2" not in html, url


def test_reloading_the_address_page_shows_it_no_more_and_keeps_the_feed(alice, alice_client):
    url = _turn_on_feed(alice_client)
    digest = CalendarFeed.objects.get(owner=alice).token
    again = alice_client.get("/profile/calendar/address/")
    assert again.status_code == 200 and again.context["url"] is None
    assert build.texts(again.content, "addr-gone")
    # The address already copied still works, and nothing new was made.
    assert CalendarFeed.objects.get(owner=alice).token == digest
    assert Client().get(url).status_code == 200
    assert not any(k.startswith("checklist.calendar") for k in alice_client.session.keys())


def test_calendar_events_carry_an_alarm(alice, alice_client):
    build.device(alice, validated_on=timezone.localdate() - timedelta(days=360))
    url = _turn_on_feed(alice_client)
    calendar = Calendar.from_ical(Client().get(url).content)
    # Every due date carries a reminder (the broker's recurring quiet windows do not: test_quiet_windows.py).
    events = [e for e in calendar.walk("VEVENT") if "RRULE" not in e]
    assert events and all(e.walk("VALARM") for e in events)
    alarm = events[0].walk("VALARM")[0]
    assert str(alarm["ACTION"]) == "DISPLAY" and alarm.decoded("TRIGGER") == -timedelta(hours=15)
