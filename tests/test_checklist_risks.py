"""Accepted risks: accepted from a rule's card with a reason and an end date
at most 90 days ahead; they never change points, only the next actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from devices.models import AcceptedRisk
from tests import builders as build

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def accept(client, rule="drill.rehearsed", reason="Drill booked with the desk on Friday", days=30):
    return client.post("/risks/accept/", {"rule": rule, "reason": reason, "until": (today() + timedelta(days=days)).isoformat()})


def rule_json(client, rule_id):
    return next(r for r in client.get("/api/readiness/").json()["rules"] if r["id"] == rule_id)


def test_accepting_a_risk_keeps_status_and_points_and_records_the_date(alice, alice_client):
    build.device(alice)
    before = rule_json(alice_client, "drill.rehearsed")
    response = accept(alice_client)
    assert response.status_code == 302 and response["Location"] == "/"
    risk = AcceptedRisk.objects.get(owner=alice)
    assert (risk.rule, risk.reason, risk.until) == ("drill.rehearsed", "Drill booked with the desk on Friday", today() + timedelta(days=30))
    after = rule_json(alice_client, "drill.rehearsed")
    assert (after["status"], after["points"]) == (before["status"], before["points"])
    assert after["accepted_until"] == (today() + timedelta(days=30)).isoformat()
    event = AuditEvent.objects.get(action="risk.accepted")
    assert event.subject == alice and event.object_label == "drill.rehearsed"
    assert event.details["until"] == {"old": None, "new": (today() + timedelta(days=30)).isoformat()}


def test_90_days_is_the_longest_a_risk_can_be_accepted(alice, alice_client):
    assert accept(alice_client, days=90).status_code == 302
    AcceptedRisk.objects.all().delete()
    response = accept(alice_client, days=91)
    assert response.status_code == 200
    assert "At most 90 days ahead" in response.content.decode()
    assert not AcceptedRisk.objects.exists()


def test_a_past_end_date_is_refused(alice, alice_client):
    response = accept(alice_client, days=-1)
    assert response.status_code == 200
    assert "Pick today or a later day." in response.content.decode()
    assert not AcceptedRisk.objects.exists()


def test_a_reason_is_required_and_may_not_hold_a_secret(alice, alice_client):
    assert accept(alice_client, reason="   ").status_code == 200
    response = accept(alice_client, reason="backup codes: ABCD-EFGH-JKLM-NPQR")
    assert "Gatecheck never stores secrets" in response.content.decode()
    assert not AcceptedRisk.objects.exists()


def test_only_catalog_rules_can_be_accepted(alice, alice_client):
    assert accept(alice_client, rule="devices.everything").status_code == 404
    assert alice_client.get("/risks/accept/?rule=nope").status_code == 404
    assert not AcceptedRisk.objects.exists()


def test_the_accept_page_works_without_the_dashboard_form(alice_client):
    response = alice_client.get("/risks/accept/?rule=marketdata.covered")
    assert response.status_code == 200
    assert "Accept the risk: Market data" in response.content.decode()


def test_accepting_again_replaces_reason_and_date(alice, alice_client):
    accept(alice_client, days=10)
    accept(alice_client, reason="Moved to next month", days=40)
    risk = AcceptedRisk.objects.get(owner=alice)
    assert (risk.reason, risk.until) == ("Moved to next month", today() + timedelta(days=40))
    latest = AuditEvent.objects.filter(action="risk.accepted").order_by("-pk").first()
    assert latest.details["reason"] == {"old": "Drill booked with the desk on Friday", "new": "Moved to next month"}


def test_a_lapsed_risk_returns_the_rule_to_the_next_actions(alice, alice_client):
    build.device(alice)
    AcceptedRisk.objects.create(owner=alice, rule="drill.rehearsed", reason="old", until=today() - timedelta(days=1))
    response = alice_client.get("/")
    assert "drill.rehearsed" in [r.id for r, _ in response.context["actions"]]
    assert "Lapsed" in alice_client.get("/risks/").content.decode()


def test_withdrawing_a_risk_is_audited(alice, alice_client):
    accept(alice_client)
    risk = AcceptedRisk.objects.get()
    html = alice_client.get("/risks/").content.decode()
    assert "Drill booked with the desk on Friday" in html
    assert alice_client.post(f"/risks/{risk.pk}/withdraw/").status_code == 302
    assert not AcceptedRisk.objects.exists()
    assert AuditEvent.objects.filter(action="risk.withdrawn", object_label="drill.rehearsed").exists()
    assert alice_client.get(f"/risks/{risk.pk}/withdraw/").status_code in (404, 405)


def test_another_traders_risk_cannot_be_withdrawn(alice_client, bob):
    risk = AcceptedRisk.objects.create(owner=bob, rule="mfa.broker", reason="bob's", until=today() + timedelta(days=3))
    assert alice_client.post(f"/risks/{risk.pk}/withdraw/").status_code == 404
    assert alice_client.get(f"/risks/{risk.pk}/withdraw/").status_code in (404, 405)
    assert AcceptedRisk.objects.filter(pk=risk.pk).exists()


def test_accepting_for_a_rule_only_touches_my_own_risks(alice, bob, alice_client):
    AcceptedRisk.objects.create(owner=bob, rule="drill.rehearsed", reason="bob's", until=today() + timedelta(days=3))
    accept(alice_client)
    assert AcceptedRisk.objects.get(owner=bob).reason == "bob's"
    assert AcceptedRisk.objects.filter(owner=alice).count() == 1
