"""GET /api/readiness/ and /api/inventory/, and the article's scenarios,
played through real requests."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from devices.inventory import export_inventory
from devices.models import Subscription, TrustedDevice
from readiness.rules import CATALOG
from tests import builders as build
from tests.test_auth_login import password_step

pytestmark = pytest.mark.django_db


def rules_by_id(client) -> dict[str, dict]:
    response = client.get("/api/readiness/")
    assert response.status_code == 200
    return {r["id"]: r for r in response.json()["rules"]}


def test_the_api_serves_the_same_json_as_the_command(alice, alice_client):
    build.device(alice)
    response = alice_client.get("/api/readiness/")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    out = StringIO()
    call_command("readiness", "--user", "alice", "--json", stdout=out)
    assert response.json() == json.loads(out.getvalue())
    assert list(response.json()) == ["user", "as_of", "catalog", "score", "level", "rules"]


def test_the_api_scores_another_day_on_request(alice, alice_client):
    assert alice_client.get("/api/readiness/?as_of=2026-01-31").json()["as_of"] == "2026-01-31"
    assert alice_client.get("/api/readiness/?as_of=yesterday").status_code == 400


def test_the_api_needs_a_signed_in_mfa_verified_session(alice):
    anonymous = Client()
    response = anonymous.get("/api/readiness/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    password_only = Client()
    password_step(password_only)
    response = password_only.get("/api/readiness/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/code/")


def test_the_api_only_ever_shows_my_own_account(alice, bob, alice_client):
    build.prepared_trader(bob)
    data = alice_client.get("/api/readiness/?user=bob").json()
    assert data["user"] == "alice" and data["score"] < 100


def test_the_inventory_api_returns_my_export_and_is_audited(alice, bob, alice_client):
    build.prepared_trader(alice)
    build.device(bob, "Bob's laptop", kind="laptop")
    response = alice_client.get("/api/inventory/")
    assert response.status_code == 200
    data = response.json()
    assert data == json.loads(json.dumps(export_inventory(alice)))
    assert data["format"] == "gatecheck.inventory/2"
    assert {d["name"] for d in data["devices"]} == {"Office workstation", "iPhone"}
    assert [s["region"] for s in data["subscriptions"]] == ["US", "HK"]
    assert data["drills"][0]["completed"] is True
    assert AuditEvent.objects.filter(action="inventory.exported", subject=alice).exists()


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


def test_fully_prepared_trader_scores_100(alice, alice_client):
    build.prepared_trader(alice)
    data = alice_client.get("/api/readiness/").json()
    assert data["score"] == 100 and data["level"] == "ready"
    assert [r["status"] for r in data["rules"]] == ["pass"] * len(CATALOG)
    assert sum(r["points"] for r in data["rules"]) == sum(r.weight for r in CATALOG)


def test_workstation_only_trader_who_loses_it(alice, alice_client):
    workstation = build.device(alice, "Office workstation")
    build.recovery(alice, "phone", "+1 555 010 0142")
    build.recovery(alice, "email", "alice@example.com")
    build.profile(alice, regions_traded=[])
    before = rules_by_id(alice_client)["devices.trusted"]
    assert before["status"] == "partial"
    assert before["reason"] == "Only 1 validated device; add a phone as a second"

    # The drill shows what the loss would mean: no other device to switch to.
    drill_url = alice_client.post("/drills/start/", {"lost_device": workstation.pk})["Location"]
    drill_page = html.unescape(alice_client.get(drill_url).content.decode())
    assert "You have no other validated device" in drill_page

    # Then it really is lost.
    TrustedDevice.objects.filter(pk=workstation.pk).update(status="lost")
    after = rules_by_id(alice_client)["devices.trusted"]
    assert after["status"] == "fail" and after["points"] == 0.0
    assert after["reason"] == "Device 'Office workstation' is reported lost; revoke it at the broker (and 1 more)"
    assert [(f["severity"], f["item"]) for f in after["findings"]] == [("critical", "Office workstation"), ("critical", None)]
    dashboard = alice_client.get("/")
    assert dashboard.context["actions"][0][0].id == "devices.trusted"
    assert dashboard.context["report"].level == "not_ready"


def test_bot_on_the_human_login(alice, alice_client):
    build.prepared_trader(alice)
    bot = alice.automations.get()
    bot.api_key = None
    bot.save()
    data = alice_client.get("/api/readiness/").json()
    segmented = next(r for r in data["rules"] if r["id"] == "credentials.segmented")
    assert segmented["status"] == "fail"
    assert segmented["reason"] == "Automation 'ES spread bot' runs on your human login"
    assert data["score"] == 88  # 15 of 120 lost: still ready
    assert alice_client.get("/").context["actions"][0][0].id == "credentials.segmented"


def test_trader_who_trades_hk_without_a_feed(alice, alice_client):
    build.prepared_trader(alice)
    Subscription.objects.filter(owner=alice, region="HK").delete()
    market = rules_by_id(alice_client)["marketdata.covered"]
    assert market["status"] == "partial" and market["points"] == 5.0
    assert market["reason"] == "You trade HK with no active HK feed"
    assert [gap.message for gap in alice_client.get("/subscriptions/").context["gaps"]] == [market["reason"]]
    # Adding the feed through the page closes the gap.
    alice_client.post("/subscriptions/add/", {"region": "HK", "feed": "HKEX level 1", "active": "on"})
    assert rules_by_id(alice_client)["marketdata.covered"]["status"] == "pass"


def test_hk_only_trader_without_a_feed_fails_market_data(alice, alice_client):
    build.profile(alice, regions_traded=["HK"])
    assert rules_by_id(alice_client)["marketdata.covered"]["status"] == "fail"


def test_scores_drop_as_dates_pass(alice, alice_client):
    build.prepared_trader(alice)
    later = (timezone.localdate() + timedelta(days=100)).isoformat()
    data = alice_client.get(f"/api/readiness/?as_of={later}").json()
    statuses = {r["id"]: r["status"] for r in data["rules"]}
    assert statuses["drill.rehearsed"] == "fail" and statuses["credentials.rotation"] == "fail"
    assert data["score"] < 100
