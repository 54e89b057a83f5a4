"""The trader's dashboard at /: score ring, next actions, rule cards, coming
due, 90-day history, guided start, and a query budget that does not grow
with the inventory."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checklist.models import ReadinessSnapshot
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, RecoveryMethod, Subscription, TrustedDevice
from readiness.rules import CATALOG
from tests import builders as build
from tests.conftest import make_user, verify_client
from tests.test_auth_login import password_step

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_password_only_session_is_sent_to_the_code_step(client, alice):
    password_step(client)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/code/")


def test_empty_inventory_shows_the_guided_start_not_red_cards(alice_client):
    response = alice_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Get ready before you need to be" in html
    for gate in ("identity", "device", "authorization", "programmatic"):
        assert f"<strong>{gate}</strong>" in html
    assert html.count('class="start-link"') == 3
    assert "Add your trusted devices" in html and "Add your recovery methods" in html
    assert 'href="/profile/"' in html
    assert "dash-rule" not in html
    assert "tag-fail" not in html


def test_first_device_replaces_the_guided_start_with_the_score(alice, alice_client):
    build.device(alice)
    html = alice_client.get("/").content.decode()
    assert "Get ready before you need to be" not in html
    assert html.count('class="card dash-rule') == len(CATALOG)
    assert f"The {len(CATALOG)} rules</h2>" in html


def test_prepared_trader_sees_100_and_ready_with_nothing_to_fix(alice, alice_client):
    build.prepared_trader(alice)
    response = alice_client.get("/")
    html = response.content.decode()
    assert response.context["report"].score == 100
    assert "Score 100 of 100: Ready" in html
    assert "Nothing to fix" in html
    assert [build.no_glyph(tag) for tag in build.texts(html, "rule-status")] == ["Pass"] * len(CATALOG)


def test_every_rule_card_has_status_text_points_reason_and_fix_link(alice, alice_client):
    build.device(alice, validated_on=today() - timedelta(days=10))
    response = alice_client.get("/")
    html = response.content.decode()
    cards = response.context["cards"]
    assert [c.result.id for c in cards] == [r.id for r in CATALOG]
    devices_card = cards[0]
    assert devices_card.result.status == "partial"
    assert "7.5 of 15 points" in html
    assert "Only 1 validated device; add a phone as a second" in html
    # Status is given in words and a glyph as well as colour.
    tags = build.texts(html, "rule-status")
    assert tags[0] == "◐ Partial"
    assert {"✕ Fail", "– Not applicable"} <= set(tags)
    assert "Not scored · weight 15" in html
    drill_card = re.search(r'id="rule-drillrehearsed".*?</article>', html, re.S).group(0)
    assert 'href="/drills/"' in drill_card and "Fix this" in drill_card


def test_next_three_actions_are_ordered_by_points_lost(alice, alice_client):
    build.device(alice, validated_on=today() - timedelta(days=10))
    build.profile(alice, broker_mfa="sms", regions_traded=[])
    response = alice_client.get("/")
    actions = [result.id for result, _ in response.context["actions"]]
    # recovery.current and drill.rehearsed lose 15, devices.trusted 7.5, mfa.broker 2.5.
    assert actions == ["recovery.current", "drill.rehearsed", "devices.trusted"]
    html = response.content.decode()
    assert "+15 points" in html and "+7.5 points" in html


def test_accepted_risk_shows_on_its_card_and_leaves_the_next_actions(alice, alice_client):
    build.device(alice)
    AcceptedRisk.objects.create(owner=alice, rule="drill.rehearsed", reason="Drill booked with the desk on Friday", until=today() + timedelta(days=5))
    response = alice_client.get("/")
    html = response.content.decode()
    assert "drill.rehearsed" not in [r.id for r, _ in response.context["actions"]]
    card = next(c for c in response.context["cards"] if c.result.id == "drill.rehearsed")
    assert card.result.status == "fail" and card.result.points == 0
    assert not card.open_risk
    assert "Risk accepted</span> until " + (today() + timedelta(days=5)).isoformat() + ": Drill booked with the desk on Friday" in html


def test_open_rules_link_to_accepting_the_risk_on_its_own_page_with_a_90_day_limit(alice, alice_client):
    build.device(alice)
    html = alice_client.get("/").content.decode()
    card = re.search(r'id="rule-recoverycurrent".*?</article>', html, re.S).group(0)
    assert 'href="/risks/accept/?rule=recovery.current">Accept this risk…</a>' in card
    passing = re.search(r'id="rule-permissionscleared".*?</article>', html, re.S).group(0)
    assert "Accept this risk" not in passing
    page = alice_client.get("/risks/accept/?rule=recovery.current").content.decode()
    assert f'max="{(today() + timedelta(days=90)).isoformat()}"' in page
    assert 'name="rule" value="recovery.current"' in page


def test_coming_due_lists_dates_within_14_days_and_flags_overdue(alice, alice_client):
    build.device(alice, "Old laptop", kind="laptop", validated_on=today() - timedelta(days=370))
    build.recovery(alice, "phone", "+1 555 010 0142", verified_on=today() - timedelta(days=175))
    build.api_key(alice, "far-key", expires_on=today() + timedelta(days=40))
    response = alice_client.get("/")
    html = response.content.decode()
    due = {d["item"].label: d for d in response.context["due"]}
    assert due["Old laptop"]["days"] == -5
    assert "5 days overdue" in html and "✕ Overdue" in build.texts(html, "due-tag")
    assert due["+1 *** *** 0142"]["days"] == 5
    assert (today() + timedelta(days=5)).isoformat() in html
    assert "far-key" not in due  # expires in 40 days, rotation due in 80: outside the window
    assert "Run your first device-loss drill" in [d["item"].what for d in response.context["due"]]


def test_dashboard_stores_todays_snapshot_once_per_day(alice, alice_client):
    build.device(alice)
    alice_client.get("/")
    alice_client.get("/")
    snapshots = ReadinessSnapshot.objects.filter(user=alice)
    assert snapshots.count() == 1
    snap = snapshots.get()
    assert snap.date == today()
    assert snap.score == alice_client.get("/").context["report"].score
    assert snap.statuses["devices.trusted"] == "partial"
    assert set(snap.statuses) == {r.id for r in CATALOG}


def test_change_since_last_week_reads_the_snapshot_from_seven_days_ago(alice, alice_client):
    build.prepared_trader(alice)
    ReadinessSnapshot.objects.create(user=alice, date=today() - timedelta(days=8), score=71, level="at_risk", statuses={})
    ReadinessSnapshot.objects.create(user=alice, date=today() - timedelta(days=3), score=90, level="ready", statuses={})
    response = alice_client.get("/")
    assert response.context["week_change"] == 29
    html = response.content.decode()
    assert "▲ +29" in html and "(was 71)" in html


def test_no_week_old_score_says_history_starts_today(alice, alice_client):
    build.device(alice)
    html = alice_client.get("/").content.decode()
    assert "No score from a week ago yet" in html


def test_history_chart_draws_90_days_with_level_bands(alice, alice_client):
    build.device(alice)
    for days_ago, score in ((120, 10), (89, 40), (30, 62), (1, 90)):
        ReadinessSnapshot.objects.create(user=alice, date=today() - timedelta(days=days_ago), score=score, level="x", statuses={})
    response = alice_client.get("/")
    chart = response.context["chart"]
    # 120 days ago is outside the window; today's score is appended.
    assert [p.score for p in chart.points] == [40, 62, 90, response.context["report"].score]
    html = response.content.decode()
    svg = re.search(r'<svg class="history".*?</svg>', html, re.S).group(0)
    for band in ("band-not_ready", "band-at_risk", "band-ready"):
        assert band in svg
    assert "<polyline" in svg and svg.count("<circle") == 4
    assert "<title>" + (today() - timedelta(days=30)).isoformat() + ": 62</title>" in svg


def test_pages_have_no_inline_script_or_style(alice, alice_client):
    build.prepared_trader(alice)
    for url in ("/", "/profile/", "/subscriptions/", "/drills/", "/risks/", "/recovery-card/"):
        html = alice_client.get(url).content.decode()
        assert "style=" not in html, url
        assert "<style" not in html, url
        assert re.search(r"<script(?![^>]*\ssrc=)", html) is None, url
        assert re.search(r"<[^>]+\son[a-z]+\s*=", html) is None, url


def _fill(user, n: int) -> None:
    """``n`` items spread over every section."""
    TrustedDevice.objects.bulk_create(
        TrustedDevice(owner=user, name=f"dev {i}", kind="desktop", platforms=["tws"], validated_on=today()) for i in range(n)
    )
    RecoveryMethod.objects.bulk_create(RecoveryMethod(owner=user, kind="email", label=f"r{i}@example.com", last_verified_on=today()) for i in range(n))
    keys = ApiKey.objects.bulk_create(
        ApiKey(owner=user, label=f"key {i}", created_on=today(), expires_on=today() + timedelta(days=5), service_account=True) for i in range(n)
    )
    Automation.objects.bulk_create(
        Automation(owner=user, name=f"bot {i}", api_key=keys[i], fallback_contact="desk", on_auth_failure="halt")
        for i in range(n)
    )
    Subscription.objects.bulk_create(Subscription(owner=user, region="US", feed=f"feed {i}") for i in range(n))
    now = timezone.now()
    Drill.objects.bulk_create(
        Drill(owner=user, lost_device="dev 0", started_at=now - timedelta(days=i % 80, minutes=40), finished_at=now - timedelta(days=i % 80),
              completed=True)
        for i in range(n)
    )
    AcceptedRisk.objects.create(owner=user, rule="drill.rehearsed", reason="testing", until=today() + timedelta(days=30))


def _dashboard_queries(items: int) -> int:
    trader = make_user(f"trader{items}")
    _fill(trader, items)
    client = verify_client(Client(), trader)
    client.get("/")  # the first view writes the session's bookkeeping
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_dashboard_query_count_is_the_same_for_1_and_200_items(django_assert_max_num_queries):
    one = _dashboard_queries(1)
    trader = make_user("trader-200")
    _fill(trader, 200)
    client = verify_client(Client(), trader)
    client.get("/")
    with django_assert_max_num_queries(one):
        assert client.get("/").status_code == 200
    assert one <= 16


def test_dashboard_masks_recovery_phone_and_email_in_reasons_and_due_dates(alice, alice_client):
    build.recovery(alice, "phone", "+1 555 010 0142", verified_on=today() - timedelta(days=200))
    build.recovery(alice, "email", "alice.private@example.com", verified_on=today() - timedelta(days=200))
    html = alice_client.get("/").content.decode()
    assert "555 010" not in html and "alice.private" not in html
    assert "+1 *** *** 0142" in html


def test_coming_due_tells_never_done_from_overdue_and_merges_a_keys_two_dates(alice, alice_client):
    laptop = build.device(alice, "Laptop", kind="laptop")
    type(laptop).objects.filter(pk=laptop.pk).update(validated_on=None)
    build.device(alice, "Old laptop", kind="laptop", validated_on=today() - timedelta(days=370))
    # Expires in 5 days and is due for rotation in 3: one job, shown once.
    build.api_key(alice, "algo", created_on=today() - timedelta(days=87), expires_on=today() + timedelta(days=5))
    response = alice_client.get("/")
    groups = {key: [e["item"].what for e in entries] for key, _, entries in response.context["due_groups"]}
    assert groups["never"] == ["Run your first device-loss drill", "Validate device 'Laptop' (never validated)"]
    assert groups["overdue"] == ["Re-validate device 'Old laptop'"]
    assert groups["soon"] == ["Rotate API key 'algo'"]
    assert build.texts(response.content, "due-group") == ["Never done", "Overdue", "Coming up"]


def test_the_next_due_date_is_always_shown(alice, alice_client):
    build.prepared_trader(alice)
    response = alice_client.get("/")
    assert response.context["due_groups"] == []
    nxt = response.context["next_due"]
    assert nxt is not None and nxt.due_on > today() + timedelta(days=14)
    assert build.texts(response.content, "next-due")[0].startswith("Next after that:")


def test_close_to_ready_says_how_many_points_and_the_start_stays_a_checklist(alice, alice_client):
    build.prepared_trader(alice)
    alice.trusted_devices.filter(kind="mobile").delete()  # devices.trusted partial: 92.5 -> still ready
    alice.drills.all().delete()  # drill.rehearsed fails: 15 points gone
    response = alice_client.get("/")
    report = response.context["report"]
    assert report.level == "at_risk"
    assert build.texts(response.content, "to-ready") == [f"{85 - report.score} points to Ready."]
    # Everything of the guided start is done, so the checklist is gone.
    assert build.texts(response.content, "start-checklist") == []


def test_the_guided_start_stays_a_checklist_until_its_steps_are_done(alice, alice_client):
    build.device(alice)
    steps = build.texts(alice_client.get("/").content, "start-tag")
    assert [build.no_glyph(s) for s in steps] == ["Done", "To do", "To do"]


def _history_of(user, days: int) -> None:
    """``days`` of stored scores before today, in bulk (the rows a year of nightly runs leaves)."""
    ReadinessSnapshot.objects.bulk_create(
        ReadinessSnapshot(user=user, date=today() - timedelta(days=d), score=50 + d % 40, level="at_risk", statuses={}) for d in range(1, days + 1)
    )


def test_dashboard_queries_are_the_same_with_1_and_365_days_of_history_and_read_90(django_assert_max_num_queries):
    short, long = make_user("short-history"), make_user("long-history")
    for trader, days in ((short, 1), (long, 365)):
        _fill(trader, 3)
        _history_of(trader, days)
    few = _dashboard_queries_of(short)
    client = verify_client(Client(), long)
    client.get("/")
    with django_assert_max_num_queries(len(few)) as captured:
        html = client.get("/").content.decode()
    history = [q["sql"] for q in captured.captured_queries if "readinesssnapshot" in q["sql"]]
    # One read of stored scores, bounded by date: 89 stored days and today on the chart.
    assert len(history) == 1 and '"date" >=' in history[0]
    assert "90 days scored" in html


def _dashboard_queries_of(trader) -> list[dict]:
    client = verify_client(Client(), trader)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return queries.captured_queries


def test_a_lead_who_also_trades_sees_a_desk_card_and_a_trader_does_not(lena, lena_client, alice_client):
    page = lena_client.get("/").content.decode()
    assert "Your desk" in page and 'href="/desk/"' in page and "(1 trader)" in page
    assert "Your desk" not in alice_client.get("/").content.decode()
