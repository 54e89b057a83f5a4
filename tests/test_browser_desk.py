"""lena, a desk lead, finds who has no recent drill and opens that trader's
detail page, in a real browser."""

from __future__ import annotations

import re

import pytest

from accounts.models import Desk
from checklist.models import Drill
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

    page.get_by_label("Failing rule").select_option("drill.rehearsed")
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
