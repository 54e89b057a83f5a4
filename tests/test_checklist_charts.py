"""Pure helpers behind the pages: chart geometry, durations and the re-entry
steps. No database."""

from __future__ import annotations

import math
from datetime import date, timedelta

from checklist import charts
from readiness import rules
from readiness.recovery import duration_text, reentry_steps

AS_OF = date(2026, 11, 25)


def test_ring_draws_the_score_as_a_share_of_the_circle():
    ring = charts.Ring(score=72, level="at_risk")
    filled, total = (float(v) for v in ring.dasharray.split())
    assert math.isclose(total, 2 * math.pi * 52, abs_tol=0.01)
    assert math.isclose(filled / total, 0.72, abs_tol=0.001)
    assert ring.rotate == "rotate(-90 64 64)"
    assert charts.Ring(score=0, level="not_ready").dasharray.startswith("0.00 ")
    assert charts.Ring(score=100, level="ready").dasharray.split()[0] == charts.Ring(score=100, level="ready").dasharray.split()[1]


def test_history_chart_spans_90_days_ending_today():
    history = [(AS_OF - timedelta(days=89), 40, "not_ready"), (AS_OF, 90, "ready"), (AS_OF - timedelta(days=90), 5, "not_ready")]
    chart = charts.history_chart(history, AS_OF)
    assert [p.score for p in chart.points] == [40, 90]
    first, last = chart.points
    assert first.x == chart.left and last.x == chart.right
    assert first.y > last.y  # higher scores are drawn higher
    assert math.isclose(last.y, chart.bottom - (chart.bottom - chart.top) * 0.9)
    assert chart.polyline.count(",") == 2
    assert (chart.lowest, chart.highest) == (40, 90)


def test_history_bands_follow_the_levels():
    chart = charts.history_chart([], AS_OF)
    bands = {b.level: b for b in chart.bands}
    span = chart.bottom - chart.top
    assert math.isclose(bands["not_ready"].height, span * 0.60)
    assert math.isclose(bands["at_risk"].height, span * 0.25)
    assert math.isclose(bands["ready"].height, span * 0.15)
    assert math.isclose(bands["ready"].y, chart.top)
    assert [t.label for t in chart.ticks][-1] == "Nov 25"
    assert chart.ticks[0].anchor == "start" and chart.ticks[-1].anchor == "end"
    assert chart.lowest is None


def test_drill_trend_marks_bars_against_the_target():
    trend = charts.drill_trend([(date(2026, 9, 1), 45), (date(2026, 10, 1), 30), (date(2026, 11, 1), 12.5)], 30)
    assert [b.within_target for b in trend.bars] == [False, True, True]
    assert trend.bars[0].height > trend.bars[1].height > trend.bars[2].height
    assert math.isclose(trend.bars[1].y, trend.target_y)
    assert [b.value for b in trend.bars] == ["45 min", "30 min", "12 min"]


def test_durations_read_like_people_say_them():
    assert duration_text(timedelta(seconds=40)) == "40 s"
    assert duration_text(timedelta(minutes=18, seconds=12)) == "18 min 12 s"
    assert duration_text(timedelta(minutes=30)) == "30 min"
    assert duration_text(timedelta(hours=1, minutes=5, seconds=9)) == "1 h 5 min"
    assert duration_text(timedelta(hours=2)) == "2 h"
    assert duration_text(timedelta(seconds=-3)) == "0 s"


def _inventory(**changes) -> rules.Inventory:
    base = {
        "profile": rules.Profile(broker_mfa="ib_key"),
        "devices": (
            rules.Device("Office workstation", "desktop", frozenset({"tws", "api"}), AS_OF - timedelta(days=3), "active", False),
            rules.Device("iPhone", "mobile", frozenset({"mobile"}), AS_OF - timedelta(days=3), "active", False),
            rules.Device("Old iPad", "tablet", frozenset({"mobile"}), AS_OF - timedelta(days=400), "active", False),
        ),
        "recovery_methods": (
            rules.RecoveryMethod("phone", "+44 20 7946 0958", AS_OF),
            rules.RecoveryMethod("email", "trader@example.com", AS_OF),
            rules.RecoveryMethod("hardware_key", "YubiKey in the desk safe", AS_OF),
        ),
        "automations": (rules.Automation("ES bot", "k", True, "desk", "flatten", "active"),),
    }
    base.update(changes)
    return rules.Inventory(**base)


def test_losing_the_phone_points_to_the_computer_and_the_backup_factor():
    steps = reentry_steps(_inventory(), AS_OF, rules.Limits(), lost_device="iPhone", support_contact="+1 877 442 2757")
    text = " ".join(f"{s.title}: {s.detail}" for s in steps)
    assert steps[0].detail == "Sign in to IBKR on 'Office workstation' (desktop: Trader Workstation)."
    assert "Old iPad" not in text  # not validated within the limit
    assert "Your IB Key went with 'iPhone': use your hardware key 'YubiKey in the desk safe'." in text
    # The recovery number rang on the lost phone: codes go to the e-mail only.
    assert "+44 *** *** 0958" not in text and "t***@example.com" in text
    assert "7946" not in text and "trader@example.com" not in text
    assert "Confirm that 'ES bot' (flatten on auth failure) did what you planned." in text
    assert "Mark 'iPhone' lost in Gatecheck" in text
    assert not any(s.gap for s in steps)


def test_losing_the_computer_puts_the_phone_first():
    steps = reentry_steps(_inventory(), AS_OF, rules.Limits(), lost_device="Office workstation", support_contact="x")
    assert steps[0].detail.startswith("Sign in to IBKR on 'iPhone'")


def test_a_thin_inventory_yields_gaps_with_fix_links():
    lone = (rules.Device("Office workstation", "desktop", frozenset({"tws"}), AS_OF, "active", False),)
    steps = reentry_steps(rules.Inventory(devices=lone), AS_OF, rules.Limits(), lost_device="Office workstation")
    gaps = [s for s in steps if s.gap]
    assert [s.fix_url for s in gaps] == ["devices:device_list", "devices:recovery_list", "devices:recovery_list", "checklist:profile"]


def test_the_card_steps_cover_any_device():
    steps = reentry_steps(_inventory(), AS_OF, rules.Limits(), support_contact="+1 877 442 2757")
    assert steps[0].title == "Switch to one of your trusted devices"
    assert "Mark the lost device lost" in " ".join(s.detail for s in steps)
