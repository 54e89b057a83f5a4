"""The desk table's finishing touches (issue 15), through real requests: a
"failing or partial" filter per rule, per-rule totals over every matching
trader, the desk average's trend, each cell's stored reason, and a Remind
button that shows it was sent."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.core import mail
from django.core.cache import cache

from checklist.services import snapshot_refresh
from desk import selectors
from tests import builders as build
from tests import test_desk
from tests.builders import snapshot
from tests.test_desk import names_in, row_of

pytestmark = pytest.mark.django_db

# The desk table's fixtures: alice (at risk) and carl (ready) on lena's desk, bob on olga's.
carl, olga, desk_scores = test_desk.carl, test_desk.olga, test_desk.desk_scores


@pytest.fixture(autouse=True)
def _cold_trend_cache():
    cache.clear()


def totals(html: str) -> dict[str, tuple[int, int]]:
    """The per-rule totals row: rule id -> (failing, partial)."""
    found = re.findall(r'<td class="rule-total[^"]*"><a href="\?[^"]*rule=([\w.]+)[^"]*"[^>]*>.*?(\d+)<span aria-hidden="true"> ✕</span>.*?(\d+)<span', html)
    return {rid: (int(fail), int(partial)) for rid, fail, partial in found}


def test_failing_or_partial_filter_per_rule(lena_client, desk_scores):
    # alice is partial on recovery and fails the drill; carl passes both.
    html = lena_client.get("/desk/?rule=recovery.current").content.decode()
    assert names_in(html) == ["alice"]
    assert build.texts(html, "showing") == ["Showing 1 of 2 traders."]
    assert names_in(lena_client.get("/desk/?rule=drill.rehearsed").content.decode()) == ["alice"]
    assert names_in(lena_client.get("/desk/?rule=devices.trusted").content.decode()) == []
    # Combined with search: nobody named carl is failing or partial on recovery.
    assert names_in(lena_client.get("/desk/?rule=recovery.current&q=carl").content.decode()) == []
    # An unknown rule is not a filter: the whole table, as for any malformed parameter.
    assert len(names_in(lena_client.get("/desk/?rule=nope").content.decode())) == 2


def test_rule_totals_count_every_matching_trader_not_just_the_page(lena_client, desk_scores, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 1)
    html = lena_client.get("/desk/").content.decode()
    assert len(names_in(html)) == 1
    counted = totals(html)
    assert set(counted) == set(selectors.RULE_IDS)
    # Stored statuses: an accepted fail still counts as failing.
    assert counted["recovery.current"] == (0, 1)
    assert counted["drill.rehearsed"] == (1, 0)
    assert counted["marketdata.covered"] == (1, 0)
    assert counted["devices.trusted"] == (0, 0)
    # Over the filtered set: carl alone has nothing failing.
    assert totals(lena_client.get("/desk/?q=carl").content.decode())["drill.rehearsed"] == (0, 0)
    # Each total links to its rule's filter, keeping the others.
    assert 'href="?q=carl&amp;rule=drill.rehearsed"' in lena_client.get("/desk/?q=carl").content.decode()


def test_desk_average_trend_from_the_stored_history(lena_client, desk_scores, alice, carl):
    snapshot(alice, days_ago=28, score=50)
    snapshot(carl, days_ago=28, score=71)
    html = lena_client.get("/desk/").content.decode()
    # 28 days ago (50 + 71) / 2 = 61 (half up); 7 days ago alice alone, 60; today (72 + 90) / 2 = 81.
    assert build.texts(html, "trend-text") == [
        f"61 → 81 over 4 weeks (since {(build.today() - timedelta(days=28)):%Y-%m-%d})"
    ]
    assert re.search(r'<svg class="spark"[^>]*role="img" aria-label="Score from [\d-]+ to [\d-]+: 61 to 81"', html)


def test_no_trend_without_history(lena_client, lena, alice):
    snapshot(alice, score=80)
    html = lena_client.get("/desk/").content.decode()
    assert build.texts(html, "trend-text") == []
    assert "Desk average" in html


def test_each_cell_links_to_the_rule_and_carries_its_stored_reason(lena_client, alice):
    build.device(alice, "Old phone +1 555 010 9999", kind="mobile", status="lost")
    report = snapshot_refresh(alice)
    html = lena_client.get("/desk/").content.decode()
    row = row_of(html, "alice")
    detail = selectors.trader_detail(alice, build.today())
    cells = re.findall(
        r'<td class="hm hm-[\w]+"><a href="/desk/traders/(\d+)/#rule-([\w.]+)" aria-describedby="([\w-]+)">.*?</a>'
        r'<span class="hm-tip" role="tooltip" id="([\w-]+)"><strong>([^<]+)</strong> ([^<]*)</span></td>',
        row,
    )
    assert len(cells) == len(report.results)
    for (pk, rid, described, tip, title, reason), card in zip(cells, detail.cards, strict=True):
        assert (int(pk), rid, described, title) == (alice.pk, card.id, tip, card.title)
        assert unescape(reason) == card.reason
    # The rule card the cell links to carries that id.
    assert f'id="rule-{cells[0][1]}"' in lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()
    assert "555 010 9999" not in html


def test_remind_shows_it_was_sent_and_keeps_the_table_as_it_was(lena_client, desk_scores, alice):
    page = "/desk/?rule=recovery.current&sort=name"
    assert "Reminder sent" not in row_of(lena_client.get(page).content.decode(), "alice")
    response = lena_client.post(f"/desk/traders/{alice.pk}/remind/", {"next": "desk", "back": "rule=recovery.current&sort=name&evil=1"})
    assert response.status_code == 302
    assert response["Location"] == "/desk/?rule=recovery.current&sort=name"
    assert len(mail.outbox) == 1
    html = lena_client.get(response["Location"]).content.decode()
    assert "Reminder e-mailed to alice." in html
    row = row_of(html, "alice")
    assert re.search(r"Reminder sent \d\d:\d\d", row)
    assert '<button type="button" class="btn btn-small" disabled>Sent today</button>' in row
    assert 'form="remind-form"' not in row
    # A second click the same day sends nothing more.
    lena_client.post(f"/desk/traders/{alice.pk}/remind/", {"next": "desk"})
    assert len(mail.outbox) == 1


def test_remind_form_carries_the_current_query(lena_client, desk_scores):
    html = lena_client.get("/desk/?rule=recovery.current&page=1").content.decode()
    assert '<input type="hidden" name="back" value="rule=recovery.current">' in html
    # Scores stored without reasons (written before reasons were kept) point to the trader's page.
    assert "<strong>Recovery methods</strong> Open the trader&#39;s page for the reason.</span>" in html


def test_the_filter_controls_keep_what_was_asked_escaped(lena_client, desk_scores):
    html = lena_client.get('/desk/?rule=recovery.current&level=ready&q="><b>x&sort=name&dir=desc').content.decode()
    assert '<option value="recovery.current" selected>' in html
    assert '<option value="ready" selected>Ready</option>' in html
    assert 'value="&quot;&gt;&lt;b&gt;x"' in html and "<b>x" not in html
    assert '<input type="hidden" name="sort" value="name" id="id_sort">' in html
    assert '<label for="id_rule">Falls short on</label><select name="rule" id="id_rule">' in html


def test_reasons_follow_each_rescore_and_survive_older_history_written_later(alice):
    from checklist.models import CurrentScore

    snapshot_refresh(alice)
    first = CurrentScore.objects.get(user=alice).reasons
    assert set(first) == set(selectors.RULE_IDS) and all(first.values())
    # History for an earlier day changes the 7-day change, not today's reasons.
    snapshot(alice, days_ago=7, score=10)
    assert CurrentScore.objects.get(user=alice).reasons == first
    # A new lost device is a new reason, masked like the trader page's.
    build.device(alice, "Spare +1 555 010 7777", kind="mobile", status="lost")
    snapshot_refresh(alice)
    reason = CurrentScore.objects.get(user=alice).reasons["devices.trusted"]
    assert "lost" in reason and "555 010 7777" not in reason
