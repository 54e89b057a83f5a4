"""The desk lead's pages: the desk table, a trader's detail, reminders, the
CSV export, isolation between desks and the query budget at 500 traders.

lena leads the "Futures desk" (alice and, here, carl); olga leads the
"Options desk" (bob). Scores come from stored snapshots, written here directly.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent, Desk, User
from checklist.models import ReadinessSnapshot
from checklist.services import snapshot_refresh, snapshots_store
from desk.models import ReminderLog
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, RecoveryMethod, TradingProfile, TrustedDevice
from readiness import rules
from tests import builders as build
from tests.builders import ALL_PASS, lead_of, ready_inventory, snapshot, today
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db





def row_of(html: str, username: str) -> str:
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        if f">{username}<" in row or f"/{username}<" in row or f"{username}</span>" in row:
            return row
    raise AssertionError(f"no row for {username}")


def cells_of(row: str) -> list[str]:
    """Each heatmap cell's status word (after its glyph), without its reason's tooltip."""
    return [build.no_glyph(text) for text in build.texts(re.sub(r'<span class="hm-tip".*?</span></td>', "</td>", row), "hm")]


def names_in(html: str) -> list[str]:
    return re.findall(r'<th scope="row" class="who"><a href="/desk/traders/\d+/">([^<]+)</a>', html)


@pytest.fixture
def carl(lena) -> User:
    user = make_user("carl", first_name="Carl", last_name="Berg")
    Desk.objects.get(name="Futures desk").members.add(user)
    return user


@pytest.fixture
def olga(bob) -> User:
    return lead_of("Options desk", "olga", bob)


@pytest.fixture
def desk_scores(alice, carl, bob, olga):
    """alice at risk with an accepted risk; carl ready; bob on the other desk."""
    ready_inventory(alice)
    ready_inventory(carl, phone="+44 20 7946 0958", email="carl@example.org")
    ready_inventory(bob)
    AcceptedRisk.objects.create(owner=alice, rule="marketdata.covered", reason="HK positions closed until January", until=today() + timedelta(days=20))
    snapshot(alice, days_ago=7, score=60)
    snapshot(
        alice,
        score=72,
        recovery__current="partial",
        credentials__segmented="na",
        credentials__rotation="na",
        marketdata__covered="fail",
        drill__rehearsed="fail",
        automation__failsafe="na",
    )
    snapshot(carl, days_ago=8, score=95)
    snapshot(carl, score=90)
    snapshot(bob, score=40, drill__rehearsed="fail")


# --- Access ---------------------------------------------------------------------------


def test_a_trader_gets_403_on_the_desk(alice_client):
    assert alice_client.get("/desk/").status_code == 403
    assert alice_client.get("/desk/export.csv").status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get("/desk/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_lead_is_staff_in_the_desk_leads_group_with_view_permissions_only(lena):
    lena.refresh_from_db()
    assert lena.is_staff and not lena.is_superuser
    group = Group.objects.get(name="Desk leads")
    assert lena.groups.filter(pk=group.pk).exists()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "view_user" in codenames and "view_trusteddevice" in codenames and "view_auditevent" in codenames
    assert all(code.startswith("view_") for code in codenames)


def test_a_lead_removed_from_every_desk_loses_admin_access(lena):
    Desk.objects.get(name="Futures desk").leads.remove(lena)
    lena.refresh_from_db()
    assert not lena.is_staff
    assert not lena.groups.exists()


# --- The table ------------------------------------------------------------------------


def test_heatmap_shows_each_rule_with_text_labels(lena_client, desk_scores, alice):
    response = lena_client.get("/desk/")
    assert response.status_code == 200
    row = row_of(response.content.decode(), "alice")
    assert cells_of(row) == ["pass", "partial", "n/a", "n/a", "pass", "accepted", "fail", "n/a", "pass", "pass", "pass"]
    assert '<td class="num">72</td>' in row
    assert "At risk" in row
    assert "+12" in row  # 72 now, 60 a week ago
    assert f'formaction="/desk/traders/{alice.pk}/remind/"' not in row  # nothing due for alice


def rescored(*users: User) -> None:
    """What the one inventory write path does after an edit: re-score and store."""
    for user in users:
        snapshot_refresh(user)


def test_remind_buttons_post_to_their_trader_through_one_csrf_form(lena_client, desk_scores, alice):
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=today() - timedelta(days=200))
    rescored(alice)
    html = lena_client.get("/desk/").content.decode()
    assert re.search(r'<form method="post" id="remind-form"[^>]*><input type="hidden" name="csrfmiddlewaretoken"', html)
    assert f'form="remind-form" formaction="/desk/traders/{alice.pk}/remind/"' in row_of(html, "alice")


def test_desk_summary_has_average_and_count_per_level(lena_client, desk_scores):
    html = lena_client.get("/desk/").content.decode()
    summary = html.split('aria-label="Desk summary"')[1].split("</section>")[0]
    values = re.findall(r'<span class="stat-value">([^<]+)</span>', summary)
    # average (72 + 90) / 2 = 81; ready 1 (carl), at risk 1 (alice), not ready 0
    assert values[:4] == ["81", "1", "1", "0"]


def test_a_lead_sees_only_their_desk(lena_client, desk_scores):
    response = lena_client.get("/desk/")
    assert sorted(names_in(response.content.decode())) == ["Carl Berg", "alice"]
    assert sorted(row.username for row in response.context["table"].shown) == ["alice", "carl"]


def test_filter_by_failing_rule(lena_client, desk_scores):
    html = lena_client.get("/desk/?failing=drill.rehearsed").content.decode()
    assert names_in(html) == ["alice"]
    # A fail the lead accepted as a risk is still failing.
    assert names_in(lena_client.get("/desk/?failing=marketdata.covered").content.decode()) == ["alice"]
    assert names_in(lena_client.get("/desk/?failing=devices.trusted").content.decode()) == []


def test_filter_by_level_and_search_by_name(lena_client, desk_scores):
    assert names_in(lena_client.get("/desk/?level=ready").content.decode()) == ["Carl Berg"]
    assert names_in(lena_client.get("/desk/?q=berg").content.decode()) == ["Carl Berg"]
    assert names_in(lena_client.get("/desk/?q=ALI").content.decode()) == ["alice"]
    # The summary still describes the whole desk.
    assert "Showing 1 of 2 traders" in lena_client.get("/desk/?q=berg").content.decode()


def test_sort_by_any_column(lena_client, desk_scores):
    assert names_in(lena_client.get("/desk/?sort=score&dir=desc").content.decode()) == ["Carl Berg", "alice"]
    assert names_in(lena_client.get("/desk/?sort=score&dir=asc").content.decode()) == ["alice", "Carl Berg"]
    assert names_in(lena_client.get("/desk/?sort=drill.rehearsed").content.decode()) == ["alice", "Carl Berg"]
    assert names_in(lena_client.get("/desk/?sort=drill.rehearsed&dir=desc").content.decode()) == ["Carl Berg", "alice"]
    assert names_in(lena_client.get("/desk/?sort=name").content.decode()) == ["alice", "Carl Berg"]
    assert names_in(lena_client.get("/desk/?sort=name&dir=desc").content.decode()) == ["Carl Berg", "alice"]


def test_overdue_and_due_soon_tags_come_from_due_dates(lena_client, desk_scores, alice, carl):
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=today() - timedelta(days=200))
    ApiKey.objects.create(
        owner=carl, label="algo", scopes=["read"], service_account=True, created_on=today() - timedelta(days=10), expires_on=today() + timedelta(days=5)
    )
    rescored(alice, carl)
    html = lena_client.get("/desk/").content.decode()
    assert "overdue 1" in row_of(html, "alice")
    assert "due soon 1" in row_of(html, "carl")
    assert names_in(lena_client.get("/desk/?due=overdue").content.decode()) == ["alice"]


def test_a_trader_without_a_snapshot_is_listed_as_not_scored(lena_client, alice):
    # Joining a desk scores a trader; a member whose score is gone (or whose
    # membership was loaded straight into the table) is listed as not scored.
    from checklist import tallies
    from checklist.models import CurrentScore, ReadinessSnapshot

    ReadinessSnapshot.objects.filter(user=alice).delete()
    CurrentScore.objects.filter(user=alice).delete()
    tallies.forget()
    html = lena_client.get("/desk/").content.decode()
    assert "Not scored" in row_of(html, "alice")
    assert cells_of(row_of(html, "alice")) == ["—"] * 11


def test_viewing_the_desk_is_audited(lena_client, lena, desk_scores):
    lena_client.get("/desk/")
    assert AuditEvent.objects.filter(action="desk.viewed", actor=lena).exists()


# --- Isolation ------------------------------------------------------------------------------


def test_another_desks_id_in_the_desk_filter_is_a_404(lena_client, desk_scores):
    other = Desk.objects.get(name="Options desk")
    assert lena_client.get(f"/desk/?desk={other.pk}").status_code == 404
    assert lena_client.get(f"/desk/export.csv?desk={other.pk}").status_code == 404
    own = Desk.objects.get(name="Futures desk")
    assert lena_client.get(f"/desk/?desk={own.pk}").status_code == 200


def test_another_desks_trader_is_a_404_everywhere(lena_client, desk_scores, bob, mailoutbox):
    assert lena_client.get(f"/desk/traders/{bob.pk}/").status_code == 404
    assert lena_client.post(f"/desk/traders/{bob.pk}/remind/").status_code == 404
    assert lena_client.get(f"/desk/traders/{bob.pk}/mfa-reset/").status_code == 404
    assert lena_client.post(f"/desk/traders/{bob.pk}/mfa-reset/", {"reason": "Lost his phone on the train", "identity_confirmed": "on"}).status_code == 404
    assert mailoutbox == []
    assert bob.totpdevice_set.exists()


def test_export_picks_only_overseen_traders_even_by_id(lena_client, desk_scores, alice, bob):
    body = build.body(lena_client.get(f"/desk/export.csv?trader={alice.pk}&trader={bob.pk}"))
    assert [row["username"] for row in csv.DictReader(io.StringIO(body))] == ["alice"]


# --- Detail page -----------------------------------------------------------------------------


def test_detail_page_shows_rules_due_dates_counts_and_masked_labels(lena_client, desk_scores, alice):
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=today() - timedelta(days=200))
    response = lena_client.get(f"/desk/traders/{alice.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Trusted devices" in html and "Device-loss drill" in html
    assert "+1 *** *** 0142" in html
    assert "a***@example.net" in html
    assert "555 010" not in html and "alice.home" not in html
    assert "Desk 4, under the monitor" not in html  # device notes never reach the lead
    assert "2 active" in html  # devices
    assert "Risk accepted until" in html and "HK positions closed until January" in html
    assert "overdue" in html  # the stale phone is overdue
    assert AuditEvent.objects.filter(action="desk.trader_viewed", subject=alice).exists()


def test_detail_page_is_read_only(lena_client, desk_scores, alice):
    html = lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()
    forms = re.findall(r'<form method="post" action="([^"]+)"', html)
    assert set(forms) <= {f"/desk/traders/{alice.pk}/remind/", "/accounts/logout/"}


# --- Reminders ---------------------------------------------------------------------------------


def test_send_reminder_emails_the_trader_once_a_day_and_audits(lena_client, lena, desk_scores, alice, mailoutbox):
    RecoveryMethod.objects.filter(owner=alice, kind="phone").update(last_verified_on=today() - timedelta(days=200))
    response = lena_client.post(f"/desk/traders/{alice.pk}/remind/")
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["alice@example.com"]
    assert "Re-verify recovery phone '+1 *** *** 0142'" in message.body
    assert "lena" in message.body
    assert message.alternatives and "text/html" in message.alternatives[0][1]
    event = AuditEvent.objects.get(action="desk.reminder_sent")
    assert event.actor == lena and event.subject == alice

    lena_client.post(f"/desk/traders/{alice.pk}/remind/")
    assert len(mailoutbox) == 1  # rate-limited: one per trader per day
    assert ReminderLog.objects.filter(recipient=alice, kind="manual").count() == 1
    assert AuditEvent.objects.filter(action="desk.reminder_sent").count() == 1


def test_send_reminder_is_post_only_with_csrf(lena, desk_scores, alice, mailoutbox):
    client = verify_client(Client(enforce_csrf_checks=True), lena)
    assert client.get(f"/desk/traders/{alice.pk}/remind/").status_code == 405
    assert client.post(f"/desk/traders/{alice.pk}/remind/").status_code == 403
    assert mailoutbox == []


# --- CSV export ------------------------------------------------------------------------------


def test_export_needs_a_fresh_second_factor(lena_client):
    session = lena_client.session
    session["mfa_at"] = time.time() - 16 * 60
    session.save()
    response = lena_client.get("/desk/export.csv?level=ready")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/mfa/confirm/?next=")
    assert "export.csv" in response["Location"] and "level" in response["Location"]
    assert not AuditEvent.objects.filter(action="desk.exported").exists()


def test_export_csv_content_follows_the_filters_and_is_audited(lena_client, lena, desk_scores):
    response = lena_client.get("/desk/export.csv?failing=drill.rehearsed")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(build.body(response))))
    assert len(rows) == 1
    row = rows[0]
    assert row["username"] == "alice"
    assert row["score"] == "72" and row["level"] == "at_risk" and row["change_7d"] == "12"
    assert row["marketdata.covered"] == "accepted" and row["drill.rehearsed"] == "fail" and row["automation.failsafe"] == "n/a"
    event = AuditEvent.objects.get(action="desk.exported")
    assert event.actor == lena and event.details["rows"] == 1


def test_export_neutralises_spreadsheet_formulas(lena_client, carl):
    carl.first_name = '=HYPERLINK("http://evil")'
    carl.save()
    body = build.body(lena_client.get("/desk/export.csv"))
    assert "'=HYPERLINK" in body


# --- Query budget ------------------------------------------------------------------------------


def many_traders(desk: Desk, count: int, prefix: str = "t") -> list[User]:
    """``count`` traders with a small inventory and two snapshots each, in bulk."""
    day = today()
    users = User.objects.bulk_create([User(username=f"{prefix}{i:04d}", first_name="Trader", last_name=f"{prefix}{i:04d}") for i in range(count)])
    desk.members.add(*users)
    TrustedDevice.objects.bulk_create(
        [
            TrustedDevice(owner=u, name=n, kind=k, platforms=["tws"], validated_on=day - timedelta(days=30))
            for u in users
            for n, k in (("Desk", "desktop"), ("Phone", "mobile"))
        ]
    )
    RecoveryMethod.objects.bulk_create(
        [
            RecoveryMethod(owner=u, kind=k, label=f"{k}-{u.pk}", last_verified_on=day - timedelta(days=i % 200))
            for i, u in enumerate(users)
            for k in ("phone", "email")
        ]
    )
    keys = ApiKey.objects.bulk_create(
        [
            ApiKey(owner=u, label="algo", scopes=["read"], service_account=True, created_on=day - timedelta(days=20), expires_on=day + timedelta(days=40))
            for u in users
        ]
    )
    Automation.objects.bulk_create(
        [Automation(owner=k.owner, name="bot", api_key=k, token_refresh=True, fallback_contact="desk", on_auth_failure="flatten") for k in keys]
    )
    Drill.objects.bulk_create(
        [
            Drill(
                owner=u,
                lost_device="Phone",
                started_at=timezone.now() - timedelta(days=10),
                finished_at=timezone.now() - timedelta(days=10) + timedelta(minutes=20),
                completed=True,
            )
            for u in users
        ]
    )
    TradingProfile.objects.bulk_create([TradingProfile(owner=u, broker_mfa="ib_key", regions_traded=["US"]) for u in users])
    AcceptedRisk.objects.bulk_create([AcceptedRisk(owner=u, rule="interfaces.mapped", reason="new joiner", until=day + timedelta(days=10)) for u in users[::3]])
    for d in (7, 0):
        snapshots_store(
            [
                ReadinessSnapshot(user=u, date=day - timedelta(days=d), score=(i * 7 + d) % 101, level=rules.level_for((i * 7 + d) % 101), statuses=ALL_PASS)
                for i, u in enumerate(users)
            ]
        )
    return users


def desk_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/desk/").status_code == 200
    return len(captured)


def test_desk_page_uses_a_fixed_number_of_queries(lena_client, lena, django_assert_max_num_queries):
    desk = Desk.objects.get(name="Futures desk")
    many_traders(desk, 3, "a")
    few = desk_queries(lena_client)
    many_traders(desk, 497, "b")
    with django_assert_max_num_queries(few):
        html = lena_client.get("/desk/").content.decode()
    assert len(names_in(html)) == 50  # one page of 501 (alice too)
    assert "Showing 501 of 501 traders." in build.texts(html, "showing")[0]
    assert few <= 25


def test_export_queries_do_not_grow_with_the_desk(lena_client):
    desk = Desk.objects.get(name="Futures desk")
    many_traders(desk, 5, "a")
    with CaptureQueriesContext(connection) as small:
        lena_client.get("/desk/export.csv")
    many_traders(desk, 200, "b")
    with CaptureQueriesContext(connection) as large:
        lena_client.get("/desk/export.csv")
    assert len(large) == len(small)


def test_a_lead_of_two_desks_can_pick_one(lena_client, lena, desk_scores, alice, carl):
    rates = Desk.objects.create(name="Rates desk")
    rates.leads.add(lena)
    dina = make_user("dina")
    rates.members.add(dina)
    html = lena_client.get("/desk/").content.decode()
    assert sorted(names_in(html)) == ["Carl Berg", "alice", "dina"]
    assert '<select name="desk"' in html
    assert names_in(lena_client.get(f"/desk/?desk={rates.pk}").content.decode()) == ["dina"]


def test_a_trader_on_two_desks_does_not_reveal_the_other_desk(lena_client, alice, bob, olga):
    Desk.objects.get(name="Options desk").members.add(alice)
    html = lena_client.get("/admin/accounts/user/").content.decode()
    assert "Futures desk" in html and "Options desk" not in html
    assert "bob" not in names_in(lena_client.get("/desk/").content.decode())
