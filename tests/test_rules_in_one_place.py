"""Each rule the pages share lives once, in ``readiness`` (issue "One
inventory, one read model", part 4): the level thresholds and the due-soon
window are read from ``readiness.rules`` by the dashboard, its chart and
the desk, so they cannot disagree."""

from __future__ import annotations

from datetime import timedelta

import pytest

from readiness import rules
from tests import builders as build

pytestmark = pytest.mark.django_db


def test_an_item_due_within_the_window_is_due_soon_on_the_dashboard_as_on_the_desk(alice, alice_client, lena, lena_client):
    """Due in 10 days: inside the 14-day window, so the dashboard tags it
    "Due soon" (it used to wait until 3 days) and the desk counts it."""
    today = build.today()
    build.ready_inventory(alice)
    key = build.api_key(alice)
    key.last_rotated_on = today - timedelta(days=rules.Limits().rotation_days - 10)
    key.created_on = key.last_rotated_on
    key.save()
    dashboard = alice_client.get("/").content.decode()
    assert "Due soon</span>" in dashboard
    desk = lena_client.get("/desk/").content.decode()
    assert "due soon 1" in desk


def test_a_score_one_short_of_ready_is_one_point_to_ready(alice, alice_client):
    assert rules.points_to_ready(rules.READY_FROM - 1) == 1 and rules.points_to_ready(rules.READY_FROM) == 0
    assert rules.level_for(rules.READY_FROM) == rules.READY and rules.level_for(rules.READY_FROM - 1) == rules.AT_RISK
    assert rules.level_for(rules.AT_RISK_FROM) == rules.AT_RISK and rules.level_for(rules.AT_RISK_FROM - 1) == rules.NOT_READY


@pytest.mark.parametrize(("days_ago", "expected"), [(9, "+"), (20, None)], ids=["stored 9 days ago", "only 20 days ago"])
def test_the_dashboard_the_desk_and_the_trader_page_agree_on_the_7_day_change(alice, alice_client, lena, lena_client, days_ago, expected):
    """One definition (rules.week_baseline): the newest score stored 7 to 14
    days before. A score stored 20 days ago is no baseline on any page; the
    trader page and the dashboard used to compare with it while the desk
    did not."""
    from checklist.services import snapshot_refresh

    build.ready_inventory(alice)
    build.snapshot(alice, days_ago=days_ago, score=40)
    snapshot_refresh(alice)  # stores today's score and the desk's current row
    dashboard = alice_client.get("/").context["week_change"]
    trader_page = lena_client.get(f"/desk/traders/{alice.pk}/").context["d"].change
    desk_row = lena_client.get("/desk/").content.decode()
    if expected is None:
        assert dashboard is None and trader_page is None
        assert '<td class="chg">—</td>' in desk_row
    else:
        assert dashboard == trader_page and dashboard > 0
        assert f'<td class="chg chg-up">+{dashboard}</td>' in desk_row
