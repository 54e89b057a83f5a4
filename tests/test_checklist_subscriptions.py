"""Market-data subscriptions (/subscriptions/) and their gap list."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from checklist.models import ReadinessSnapshot
from devices.models import Subscription
from tests import builders as build
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db


def test_the_gap_list_names_each_region_traded_without_an_active_feed(alice, alice_client):
    build.profile(alice, regions_traded=["US", "HK", "JP"])
    Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    Subscription.objects.create(owner=alice, region="JP", feed="TSE level 1", active=False)
    response = alice_client.get("/subscriptions/")
    page = response.content.decode()
    assert [gap.ref for gap in response.context["gaps"]] == ["HK", "JP"]
    assert "You trade HK with no active HK feed" in page
    assert "You trade JP with no active JP feed" in page
    assert 'href="/subscriptions/add/?region=HK"' in page
    assert "US equities bundle" in page and "TSE level 1" in page


def test_no_regions_traded_asks_for_them_in_the_profile(alice_client):
    page = alice_client.get("/subscriptions/").content.decode()
    assert "You have not said which regions you trade yet" in page
    assert "No feeds yet" in page


def test_every_region_covered_says_so(alice, alice_client):
    build.profile(alice, regions_traded=["US"])
    Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    assert "Every region you trade (US) has an active feed." in alice_client.get("/subscriptions/").content.decode()


def test_the_add_form_takes_the_region_from_the_gap_link(alice_client):
    page = alice_client.get("/subscriptions/add/?region=HK").content.decode()
    assert '<option value="HK" selected>' in page


def test_adding_a_feed_stores_it_audits_and_rescores(alice, alice_client):
    build.profile(alice, regions_traded=["HK"])
    response = alice_client.post("/subscriptions/add/", {"region": "HK", "feed": "HKEX level 1", "active": "on"})
    assert response.status_code == 302
    sub = Subscription.objects.get(owner=alice)
    assert (sub.region, sub.feed, sub.active) == ("HK", "HKEX level 1", True)
    event = AuditEvent.objects.get(action="subscription.created")
    assert event.subject == alice and event.details == {
        "region": {"old": None, "new": "HK"},
        "feed": {"old": None, "new": "HKEX level 1"},
        "active": {"old": None, "new": True},
    }
    assert ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses["marketdata.covered"] == "pass"


def test_feed_names_are_unique_per_trader(alice, bob, alice_client):
    Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    Subscription.objects.create(owner=bob, region="EU", feed="Euronext")
    response = alice_client.post("/subscriptions/add/", {"region": "US", "feed": "US equities bundle", "active": "on"})
    assert response.status_code == 200
    assert "You already have a feed with this name." in response.content.decode()
    # Another trader's feed name does not clash.
    assert alice_client.post("/subscriptions/add/", {"region": "EU", "feed": "Euronext", "active": "on"}).status_code == 302
    assert Subscription.objects.filter(owner=alice).count() == 2


def test_a_secret_in_the_feed_name_is_refused(alice, alice_client):
    response = alice_client.post("/subscriptions/add/", {"region": "US", "feed": "token: sk_live_4eC39HqLyjWDarjtT1zdp7dc", "active": "on"})
    assert response.status_code == 200
    assert "Gatecheck never stores secrets" in response.content.decode()
    assert not Subscription.objects.exists()


def test_editing_a_feed_audits_the_change(alice, alice_client):
    sub = Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    response = alice_client.post(f"/subscriptions/{sub.pk}/edit/", {"region": "US", "feed": "US equities bundle"})
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.active is False
    assert AuditEvent.objects.get(action="subscription.updated").details == {"active": {"old": True, "new": False}}


def test_deleting_a_feed_needs_a_recent_second_factor_and_a_confirmation(alice, stale_mfa):
    sub = Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    response = stale_mfa.post(f"/subscriptions/{sub.pk}/delete/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/confirm/")
    assert Subscription.objects.filter(pk=sub.pk).exists()


def test_deleting_a_feed_shows_a_confirmation_on_get_then_deletes_on_post(alice, alice_client):
    sub = Subscription.objects.create(owner=alice, region="US", feed="US equities bundle")
    response = alice_client.get(f"/subscriptions/{sub.pk}/delete/")
    assert response.status_code == 200 and "Delete feed 'US equities bundle'" in html.unescape(response.content.decode())
    assert Subscription.objects.filter(pk=sub.pk).exists()
    assert alice_client.post(f"/subscriptions/{sub.pk}/delete/").status_code == 302
    assert not Subscription.objects.filter(pk=sub.pk).exists()
    assert AuditEvent.objects.filter(action="subscription.deleted", subject=alice).exists()


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_another_traders_feed_is_not_found_and_unchanged(action, alice_client, bob):
    sub = Subscription.objects.create(owner=bob, region="US", feed="Bob's bundle")
    url = f"/subscriptions/{sub.pk}/{action}/"
    assert alice_client.get(url).status_code == 404
    assert alice_client.post(url, {"region": "EU", "feed": "taken over", "active": "on"}).status_code == 404
    sub.refresh_from_db()
    assert (sub.region, sub.feed, sub.active) == ("US", "Bob's bundle", True)


def test_adding_a_feed_needs_a_csrf_token(alice):
    client = verify_client(Client(enforce_csrf_checks=True), alice)
    assert client.post("/subscriptions/add/", {"region": "US", "feed": "x", "active": "on"}).status_code == 403
    assert not Subscription.objects.exists()


def test_gap_buttons_use_the_right_article(alice, alice_client):
    build.profile(alice, regions_traded=["US", "EU", "HK"])
    html = alice_client.get("/subscriptions/").content
    assert build.texts(html, "btn-small")[:3] == ["Add a US feed", "Add an EU feed", "Add an HK feed"]
