"""A firm that grows from 500 to 5,000 traders: the desk page, the CSV export,
the nightly scores and the daily reminders keep their query budgets, and a
year of history changes nothing on the desk. Background jobs are idempotent,
requests only enqueue their e-mail, and the sign-in limits hold for a trading
floor behind one NAT address. No timings: only queries and outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Desk, User
from checklist import tallies
from checklist.models import ReadinessSnapshot
from checklist.services import snapshot_all
from desk.services import reminders_send_daily
from devices.models import Drill, RecoveryMethod, Subscription, TradingProfile, TrustedDevice
from tests import builders as build

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def hire(desk: Desk, count: int, prefix: str) -> list[User]:
    """``count`` traders with a confirmed e-mail, a device, a recovery phone (about one in
    six overdue or due soon), a drill and a profile, on ``desk``."""
    day = today()
    users = User.objects.bulk_create(
        [
            User(username=f"{prefix}{i:05d}", first_name="Trader", last_name=f"{prefix}{i:05d}", email=email, verified_email=email)
            for i in range(count)
            for email in [f"{prefix}{i}@example.com"]
        ]
    )
    desk.members.add(*users)
    TrustedDevice.objects.bulk_create(
        [TrustedDevice(owner=u, name="Desk", kind="desktop", platforms=["tws"], validated_on=day - timedelta(days=30)) for u in users]
    )
    RecoveryMethod.objects.bulk_create(
        [RecoveryMethod(owner=u, kind="phone", label=f"+1 555 01{i:05d}", last_verified_on=day - timedelta(days=i % 200)) for i, u in enumerate(users)]
    )
    TradingProfile.objects.bulk_create([TradingProfile(owner=u, broker_mfa="ib_key", regions_traded=["US"]) for u in users])
    started = timezone.now() - timedelta(days=20)
    Drill.objects.bulk_create(
        [Drill(owner=u, lost_device="Phone", started_at=started, finished_at=started + timedelta(minutes=15), completed=True) for u in users]
    )
    return users


def queries(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


@pytest.fixture
def floor(lena):
    """lena's desk with 500 traders (alice too), scored today."""
    desk = Desk.objects.get(name="Futures desk")
    hire(desk, 499, "a")
    snapshot_all()
    return desk


DESK_URLS = (
    "/desk/",
    "/desk/?page=7",
    "/desk/?sort=drill.rehearsed&dir=desc",
    "/desk/?sort=due",
    "/desk/?sort=name&dir=desc&page=3",
    "/desk/?due=overdue&q=trader",
    "/desk/?level=at_risk&failing=recovery.current&sort=change",
    "/desk/?rule=recovery.current&sort=score",
    "/desk/?rule=drill.rehearsed&q=trader&sort=name&page=2",
)


def desk_budget(client) -> list[int]:
    # Each page cold: the desk trend's hourly cache and the desk's tallies
    # (checklist.tallies) rebuilt, so their queries are counted every time.
    counts = []
    for url in DESK_URLS:
        cache.clear()
        tallies.forget()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        counts.append(len(captured))
    return counts


def test_desk_page_queries_are_the_same_at_500_and_5000_traders(floor, lena_client):
    small = desk_budget(lena_client)
    hire(floor, 4500, "b")
    snapshot_all()
    assert desk_budget(lena_client) == small
    html = lena_client.get("/desk/?page=2").content.decode()
    assert len(build.texts(html, "who")) == 50
    assert build.texts(html, "showing") == ["Showing 5000 of 5000 traders. Rows 51–100, page 2 of 100."]
    assert max(small) <= 25


def test_a_superuser_sees_every_desk_through_the_same_pages(floor, alice):
    other = Desk.objects.create(name="Rates desk")
    hire(other, 120, "r")
    snapshot_all()
    boss = build_superuser()
    client = verify(boss)
    html = client.get("/desk/?page=13").content.decode()
    assert build.texts(html, "showing") == ["Showing 620 of 620 traders. Rows 601–620, page 13 of 13."]
    assert len(build.texts(html, "who")) == 20


def test_csv_export_streams_every_trader_with_three_queries_per_2000(floor, lena_client):
    """The order streams as ids; the rows are read 2,000 at a time, three
    plain queries each (desk.selectors.desk_rows): 500 traders are one
    chunk, 5,000 are three."""
    def export():
        response = lena_client.get("/desk/export.csv?sort=name")
        assert response.streaming
        return build.body(response)

    with CaptureQueriesContext(connection) as small:
        body = export()
    assert len(body.splitlines()) == 1 + 500
    hire(floor, 4500, "b")
    snapshot_all()
    with CaptureQueriesContext(connection) as large:
        body = export()
    assert len(body.splitlines()) == 1 + 5000
    assert len(large) == len(small) + 2 * 3


def test_nightly_scores_cost_a_fixed_number_of_queries_per_batch(floor):
    small = queries(snapshot_all)
    hire(floor, 4500, "b")
    large = queries(snapshot_all)
    # 500 traders are one batch, 5,000 are ten; nothing is per trader.
    assert large - 1 <= 10 * (small - 1)
    # Queries per 1,000 traders, with one checkpoint write per batch and the
    # desks' counts taken before and after each batch's write (checklist.tallies.count_each).
    assert large / 5 <= 47
    assert ReadinessSnapshot.objects.filter(date=today()).count() == 5001  # with alice and lena


def test_daily_reminders_cost_a_fixed_number_of_queries_per_batch(floor, mailoutbox, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    opened = []
    original = EmailBackend.open
    monkeypatch.setattr(EmailBackend, "open", lambda self: opened.append(1) or original(self))
    small = queries(lambda: reminders_send_daily(as_of=today()))
    sent_small, opened_small = len(mailoutbox), len(opened)
    hire(floor, 4500, "b")
    snapshot_all()
    large = queries(lambda: reminders_send_daily(as_of=today() + timedelta(days=1)))
    # Each message is claimed in the transaction that sends it (a run killed
    # mid-batch loses and repeats nothing): a fixed number of queries per
    # message sent, and per batch of 500 people; nothing else grows.
    per_message = (large - small) / (len(mailoutbox) - 2 * sent_small)
    assert per_message <= 6
    # At most one mail-server connection per batch of 500 people, plus one for the digests.
    assert opened_small <= 2 + 1  # 501 people
    assert 10 <= len(opened) - opened_small <= 11 + 1  # 5,001 people
    assert len(mailoutbox) - sent_small > 500 and sent_small > 50


def test_a_year_of_history_does_not_change_the_desk_queries(floor, lena_client):
    before = desk_budget(lena_client)
    people = list(User.objects.filter(username__startswith="a")[:100])
    ReadinessSnapshot.objects.bulk_create(
        [
            ReadinessSnapshot(user=u, date=today() - timedelta(days=d), score=50 + d % 40, level="at_risk", statuses={})
            for u in people
            for d in range(1, 366)
        ],
        batch_size=2000,
    )
    with CaptureQueriesContext(connection) as captured:
        lena_client.get("/desk/?sort=score")
    assert desk_budget(lena_client) == before
    # The table reads no history at all; the trader pages read it bounded by date.
    assert not [q for q in captured if "readinesssnapshot" in q["sql"]]
    with CaptureQueriesContext(connection) as detail:
        assert lena_client.get(f"/desk/traders/{people[0].pk}/").status_code == 200
    history = [q["sql"] for q in detail if "readinesssnapshot" in q["sql"]]
    assert history and all('"date" >' in sql for sql in history)


def test_the_trader_dashboard_writes_only_when_the_score_changed(alice_client, alice):
    build.prepared_trader(alice)
    alice_client.get("/")
    with CaptureQueriesContext(connection) as captured:
        assert alice_client.get("/").status_code == 200
    writes = [q["sql"] for q in captured if q["sql"].startswith(("INSERT", "UPDATE")) and "readiness" in q["sql"]]
    assert writes == []
    # An edit that skipped the write path: the next look stores the new score.
    Subscription.objects.filter(owner=alice, region="HK").update(active=False)
    alice_client.get("/")
    assert ReadinessSnapshot.objects.get(user=alice, date=today()).statuses["marketdata.covered"] != "pass"


def build_superuser() -> User:
    from tests.conftest import make_user

    return make_user("root", is_superuser=True, is_staff=True)


def verify(user: User):
    from django.test import Client

    from tests.conftest import verify_client

    return verify_client(Client(), user)


def test_every_rule_has_a_column_on_the_current_score_row():
    from checklist.models import RULE_COLUMNS, CurrentScore
    from readiness import rules

    assert set(RULE_COLUMNS) == set(rules.RULE_IDS)
    assert all(CurrentScore._meta.get_field(column) for column in RULE_COLUMNS.values())
