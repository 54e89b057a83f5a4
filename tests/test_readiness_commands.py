"""``manage.py readiness`` and ``manage.py snapshot_readiness``, and the
snapshot selector's fixed query count."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from checklist.models import ReadinessSnapshot
from checklist.services import snapshot_all
from devices.models import TrustedDevice
from devices.selectors import inventories_for
from readiness.rules import CATALOG
from tests import builders as build

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_readiness_json_matches_the_inventory_format_exactly(alice):
    build.device(alice, validated_on=date(2026, 11, 1))
    output = run("readiness", "--user", "alice", "--as-of", "2026-11-25", "--json")
    assert output.count("\n") <= 1  # exactly one JSON object
    data = json.loads(output)
    assert list(data) == ["user", "as_of", "catalog", "score", "level", "rules"]
    assert data["user"] == "alice" and data["as_of"] == "2026-11-25"
    assert isinstance(data["score"], int) and not isinstance(data["score"], bool)
    assert data["level"] in ("ready", "at_risk", "not_ready")
    assert [r["id"] for r in data["rules"]] == [rule.id for rule in CATALOG]
    for rule in data["rules"]:
        assert list(rule) == ["id", "status", "weight", "points", "reason", "accepted_until", "findings"]
        assert all(list(f) == ["severity", "section", "item", "message"] for f in rule["findings"])
        assert isinstance(rule["weight"], int)
        assert isinstance(rule["points"], float)
        assert isinstance(rule["reason"], str) and rule["reason"]
        assert rule["status"] in ("pass", "partial", "fail", "na")
    devices = data["rules"][0]
    assert devices == {
        "id": "devices.trusted",
        "status": "partial",
        "weight": 15,
        "points": 7.5,
        "reason": "Only 1 validated device; add a phone as a second",
        "accepted_until": None,
        "findings": [
            {"severity": "warning", "section": "devices", "item": None, "message": "Only 1 validated device; add a phone as a second"}
        ],
    }


def test_readiness_json_carries_the_accepted_until_date(alice):
    from devices.models import AcceptedRisk

    AcceptedRisk.objects.create(owner=alice, rule="mfa.broker", reason="Switching to IB Key next week", until=date(2026, 12, 1))
    data = json.loads(run("readiness", "--user", "alice", "--as-of", "2026-11-25", "--json"))
    assert next(r for r in data["rules"] if r["id"] == "mfa.broker")["accepted_until"] == "2026-12-01"
    data = json.loads(run("readiness", "--user", "alice", "--as-of", "2026-12-02", "--json"))
    assert next(r for r in data["rules"] if r["id"] == "mfa.broker")["accepted_until"] is None


def test_readiness_as_of_moves_the_day_scored(alice):
    build.device(alice, validated_on=date(2025, 11, 25))
    at_limit = json.loads(run("readiness", "--user", "alice", "--as-of", "2026-11-25", "--json"))
    past_limit = json.loads(run("readiness", "--user", "alice", "--as-of", "2026-11-26", "--json"))
    assert at_limit["rules"][0]["status"] == "partial"
    assert past_limit["rules"][0]["status"] == "fail"


def test_readiness_defaults_to_today_and_accepts_any_case_of_username(alice):
    data = json.loads(run("readiness", "--user", "ALICE", "--json"))
    assert data["as_of"] == timezone.localdate().isoformat() and data["user"] == "alice"


def test_readiness_without_json_prints_a_table_for_people(alice):
    build.prepared_trader(alice)
    output = run("readiness", "--user", "alice")
    assert output.splitlines()[0] == f"alice on {timezone.localdate().isoformat()}: 100/100, ready"
    assert len(output.splitlines()) == 1 + len(CATALOG)
    assert "devices.trusted" in output


def test_readiness_refuses_an_unknown_user_or_a_bad_date(alice):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("readiness", "--user", "nobody")
    with pytest.raises(CommandError, match="not a date"):
        run("readiness", "--user", "alice", "--as-of", "25/11/2026")


def test_readiness_does_not_store_a_snapshot(alice):
    run("readiness", "--user", "alice", "--json")
    assert not ReadinessSnapshot.objects.exists()


def test_snapshot_readiness_stores_every_user_once_per_day(alice, bob):
    build.prepared_trader(alice)
    output = run("snapshot_readiness", "--as-of", "2026-11-25")
    assert output.strip() == "Stored readiness snapshots of 2 users for 2026-11-25."
    run("snapshot_readiness", "--as-of", "2026-11-25")
    assert ReadinessSnapshot.objects.count() == 2
    snap = ReadinessSnapshot.objects.get(user=bob, date=date(2026, 11, 25))
    assert snap.score == 0 and snap.level == "not_ready"
    assert set(snap.statuses) == {r.id for r in CATALOG}
    run("snapshot_readiness")
    assert ReadinessSnapshot.objects.filter(date=timezone.localdate()).count() == 2


def test_snapshot_readiness_rewrites_the_day_after_a_change(alice):
    run("snapshot_readiness", "--as-of", "2026-11-25")
    build.device(alice, validated_on=date(2026, 11, 1))
    run("snapshot_readiness", "--as-of", "2026-11-25")
    snap = ReadinessSnapshot.objects.get(user=alice)
    assert snap.statuses["devices.trusted"] == "partial"


def test_snapshot_readiness_skips_deactivated_users(alice, bob):
    bob.is_active = False
    bob.save()
    run("snapshot_readiness")
    assert list(ReadinessSnapshot.objects.values_list("user__username", flat=True)) == ["alice"]


def _traders(n: int) -> list[int]:
    User.objects.bulk_create(User(username=f"t{i:04d}") for i in range(n))
    users = list(User.objects.filter(username__startswith="t").order_by("pk"))
    today = timezone.localdate()
    TrustedDevice.objects.bulk_create(
        TrustedDevice(owner=u, name="Office workstation", kind="desktop", validated_on=today - timedelta(days=3)) for u in users
    )
    return [u.pk for u in users]


def _snapshot_queries() -> int:
    with CaptureQueriesContext(connection) as queries:
        snapshot_all(date(2026, 11, 25))
    return len(queries)


def test_snapshot_query_count_is_the_same_for_1_and_500_traders(django_assert_num_queries):
    ids = _traders(1)
    with CaptureQueriesContext(connection) as one_selector:
        inventories_for(ids)
    one = _snapshot_queries()
    ReadinessSnapshot.objects.all().delete()
    User.objects.filter(pk__in=ids).delete()

    ids = _traders(500)
    with django_assert_num_queries(len(one_selector)):
        inventories = inventories_for(ids)
    assert len(inventories) == 500
    with django_assert_num_queries(one):
        snapshot_all(date(2026, 11, 25))
    assert ReadinessSnapshot.objects.count() == 500
