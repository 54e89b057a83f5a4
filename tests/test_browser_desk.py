"""lena, a desk lead, finds who has no recent drill and opens that trader's
detail page, in a real browser."""

from __future__ import annotations

import re

import pytest

from accounts.models import Desk
from devices.models import Drill
from readiness.rules import CATALOG
from tests.builders import ready_inventory, snapshot
from tests.conftest import make_user, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]




def test_lead_filters_by_failing_rule_and_opens_a_trader(live_server, page, allow_async_unsafe):
    lena = make_user("lena")
    alice = make_user("alice", first_name="Alice", last_name="Chen")
    carl = make_user("carl", first_name="Carl", last_name="Berg")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lena)
    desk.members.add(alice, carl)
    ready_inventory(alice)
    Drill.objects.filter(owner=alice).delete()  # alice never rehearsed: the stored fail is true
    ready_inventory(carl, phone="+44 20 7946 0958", email="carl@example.org")
    snapshot(alice, days_ago=7, score=90)
    snapshot(alice, score=85, drill__rehearsed="fail")
    snapshot(carl, score=100)

    sign_in_browser(page, live_server, lena, "/desk/")
    rows = page.locator("table.heatmap tbody tr")
    assert rows.count() == 2

    page.get_by_label("Fails outright").select_option("drill.rehearsed")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"failing=drill\.rehearsed"))
    assert rows.count() == 1
    assert page.get_by_text("Showing 1 of 2 traders").is_visible()
    assert rows.first.locator("td.hm-fail").inner_text() == "✕ fail"

    rows.first.get_by_role("link", name="Alice Chen").click()
    page.wait_for_url(f"{live_server.url}/desk/traders/{alice.pk}/")
    assert page.get_by_role("heading", name=re.compile("Alice Chen")).is_visible()
    drill_card = page.locator("li.rule-card", has=page.get_by_role("heading", name="Device-loss drill"))
    assert drill_card.locator(".hm-key").inner_text() == "✕ fail"
    assert page.get_by_text("+1 *** *** 0142").is_visible()
    assert "555 010" not in page.content()
    assert page.get_by_role("button", name="Send reminder").is_visible()


def test_severity_reads_without_colour_under_deuteranopia(live_server, page, allow_async_unsafe, tmp_path):
    """With red and green indistinguishable, every status tag, heatmap cell
    and finding still says what it is, in a glyph and a word."""
    from tests import builders as build

    lena = make_user("lena")
    alice = make_user("alice")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lena)
    desk.members.add(alice)
    build.device(alice, "Old phone", kind="mobile", status="lost")
    snapshot(alice, score=40, drill__rehearsed="fail", devices__trusted="fail", recovery__current="partial")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": "deuteranopia"})
    sign_in_browser(page, live_server, lena, "/desk/")
    page.screenshot(path=str(tmp_path / "desk-deuteranopia.png"), full_page=True)
    cells = page.locator("td.hm").all_inner_texts()
    assert cells and all(re.fullmatch(r"[✓◐✕–≈] (pass|partial|fail|n/a|accepted)|—", c.strip()) for c in cells)
    page.goto(f"{live_server.url}/desk/traders/{alice.pk}/")
    tags = page.locator(".rule-status").all_inner_texts()
    assert len(tags) == len(CATALOG) and all(re.match(r"[✓◐✕–≈] ", t) for t in tags)
    severities = page.locator(".finding .tag").all_inner_texts()
    assert severities and all(t in ("✕ Critical", "! Warning") for t in severities)


def _shot(page, tmp_path, name: str, *, full_page: bool = True) -> None:
    """A full-page screenshot, kept under $SCREENSHOT_DIR when set (to look at), else in tmp_path."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def test_lead_reads_reasons_totals_and_trend_and_reminds_at_1280_and_390(live_server, page, allow_async_unsafe, tmp_path):
    from datetime import timedelta

    from checklist.services import snapshot_refresh
    from tests import builders as build
    from tests.builders import snapshot

    lena = make_user("lena")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lena)
    names = [("Alice", "Chen"), ("Carl", "Berg"), ("Dana", "Okafor"), ("Emil", "Novak"), ("Farah", "Haddad"), ("Gus", "Lindqvist")]
    traders = []
    for n, (first, last) in enumerate(names):
        user = make_user(first.lower(), first_name=first, last_name=last)
        desk.members.add(user)
        ready_inventory(user, phone=f"+1 555 010 01{n:02d}")
        if n % 2:
            Drill.objects.filter(owner=user).delete()
        if n % 3 == 0:
            build.device(user, "Old phone", kind="mobile", status="lost")
            # Overdue: the recovery phone was last verified long ago.
            user.recovery_methods.filter(kind="phone").update(last_verified_on=build.today() - timedelta(days=400))
        snapshot(user, days_ago=28, score=50 + n)
        snapshot(user, days_ago=14, score=60 + n)
        snapshot_refresh(user)
        traders.append(user)

    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in_browser(page, live_server, lena, "/desk/")
    rows = page.locator("table.heatmap tbody tr")
    assert rows.count() == len(names)
    assert re.fullmatch(r"\d+ → \d+ over 4 weeks \(since [\d-]+\)", page.locator(".trend-text").inner_text())

    # A cell's reason shows on keyboard focus, and is the link's description.
    cell = rows.first.locator("td.hm a").first
    cell.focus()
    tip = rows.first.locator("td.hm .hm-tip").first
    assert tip.is_visible()
    assert cell.get_attribute("aria-describedby") == tip.get_attribute("id")
    _shot(page, tmp_path, "desk-1280-focus")
    page.mouse.move(0, 0)
    page.locator("body").click(position={"x": 5, "y": 5})
    assert not tip.is_visible()

    # The drill's total lists who fails it or is partial.
    drill_total = page.locator("td.rule-total").nth(6)
    assert drill_total.locator(".tot-fail").inner_text().startswith("3 ✕")
    assert drill_total.locator(".tot-partial").inner_text().startswith("0 ◐")
    # Its name, read out, says what the numbers are.
    assert drill_total.get_by_role("link", name="Device-loss drill: 3 failing, 0 partial. Show them.").count() == 1
    drill_total.locator("a").click()
    page.wait_for_url(re.compile(r"rule=drill\.rehearsed"))
    assert rows.count() == 3
    _shot(page, tmp_path, "desk-1280-rule-filter")

    page.goto(f"{live_server.url}/desk/?sort=name")
    page.get_by_role("button", name="Remind Alice Chen by e-mail").click()
    page.wait_for_url(f"{live_server.url}/desk/?sort=name")
    assert page.get_by_text("Reminder e-mailed to Alice Chen.").is_visible()
    first = rows.first
    assert re.search(r"Reminder sent \d\d:\d\d", first.locator("td.due").inner_text())
    assert first.get_by_role("button", name="Sent today").is_disabled()
    _shot(page, tmp_path, "desk-1280")

    page.goto(f"{live_server.url}/desk/traders/{traders[0].pk}/")
    _shot(page, tmp_path, "trader-1280")

    # At 390 px the trader column stays in view while the rule columns scroll.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/desk/?sort=name")
    wrap = page.locator(".heatmap-wrap")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    who = rows.first.locator("th.who")
    before = who.bounding_box()["x"]
    wrap.scroll_into_view_if_needed()
    wrap.hover()
    page.mouse.wheel(700, 0)
    page.wait_for_timeout(300)
    assert wrap.evaluate("el => el.scrollLeft") > 0
    assert abs(who.bounding_box()["x"] - before) < 1
    _shot(page, tmp_path, "desk-390-scrolled", full_page=False)
    wrap.evaluate("el => el.scrollTo(0, 0)")
    _shot(page, tmp_path, "desk-390")
    page.goto(f"{live_server.url}/desk/traders/{traders[0].pk}/")
    _shot(page, tmp_path, "trader-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
