"""The desks' tallies (checklist.tallies) hold the same counts as counting
the current scores afresh, after every kind of write: a trader's edit, the
dashboard's re-score, the nightly run, history written late, membership
changes and deletions. Score writes move the tallies in place (no rebuild);
membership changes make the next read rebuild them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Desk, User
from accounts.selectors import traders_for
from checklist import tallies
from checklist.models import ScoreTally
from checklist.services import snapshot_all
from devices.models import RecoveryMethod, TrustedDevice
from tests import builders as build
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def live(scope: str) -> dict[str, int]:
    """The counts taken afresh from the current rows, as a rebuild takes them."""
    if scope == tallies.ALL:
        traders = User.objects.filter(pk__in=Desk.members.through.objects.values("user_id"))
    else:
        traders = traders_for(User.objects.filter(is_superuser=True).first(), [Desk.objects.get(pk=int(scope[1:]))])
    return tallies.count(traders, today())


def kept(scope: str) -> dict[str, int]:
    return dict(ScoreTally.objects.filter(scope=scope).values_list("name", "n"))


def built(scope: str):
    return set(ScoreTally.objects.filter(scope=scope).values_list("built_at", flat=True))


@pytest.fixture
def firm(lena, alice):
    """Two desks sharing one trader (alice), and a superuser to read every scope."""
    make_user("root", is_superuser=True, is_staff=True)
    futures = Desk.objects.get(name="Futures desk")
    rates = Desk.objects.create(name="Rates desk")
    bob, carl, dora = (make_user(name) for name in ("bob", "carl", "dora"))
    futures.members.add(bob, carl)
    rates.members.add(alice, dora)
    build.prepared_trader(alice)
    build.recovery(bob, "phone", "+1 555 010 0199", verified_on=today() - timedelta(days=400))
    snapshot_all()
    scopes = [tallies.desk_scope(futures.pk), tallies.desk_scope(rates.pk), tallies.ALL]
    for scope in scopes:
        tallies.read(scope, today(), lambda scope=scope: live(scope))
    return {"futures": futures, "rates": rates, "scopes": scopes}


def assert_true(scopes):
    for scope in scopes:
        assert kept(scope) == live(scope), scope


def test_a_trader_on_two_desks_is_counted_once_in_all(firm):
    assert kept(tallies.ALL)["total"] == 4
    assert kept(firm["scopes"][0])["total"] == 3
    assert kept(firm["scopes"][1])["total"] == 2
    assert_true(firm["scopes"])


def test_score_writes_move_the_tallies_in_place(firm, alice):
    stamps = {scope: built(scope) for scope in firm["scopes"]}
    # An edit through the trader's own page (re-scored by the write path).
    client = verify_client(build_client(), alice)
    phone = RecoveryMethod.objects.get(owner=alice, kind="phone")
    response = client.post(f"/recovery/{phone.pk}/delete/")
    assert response.status_code in (200, 302)
    assert_true(firm["scopes"])
    # An edit that skipped the write path: the dashboard's look stores the new score.
    TrustedDevice.objects.filter(owner=alice).update(validated_on=today() - timedelta(days=500))
    assert client.get("/").status_code == 200
    assert_true(firm["scopes"])
    # The nightly run, and history written late for a day already passed.
    snapshot_all()
    build.snapshot(alice, days_ago=3, score=12)
    assert_true(firm["scopes"])
    # None of this rebuilt them: the counts moved with each write.
    assert {scope: built(scope) for scope in firm["scopes"]} == stamps


def test_membership_changes_and_deletions_rebuild_on_the_next_read(firm, lena_client):
    futures, rates = firm["futures"], firm["rates"]
    futures_scope, rates_scope = tallies.desk_scope(futures.pk), tallies.desk_scope(rates.pk)
    erin = make_user("erin")
    build.recovery(erin, "phone", "+1 555 010 0111")
    snapshot_all()
    futures.members.add(erin)
    assert kept(futures_scope) == {} and kept(tallies.ALL) == {}
    # The desk page rebuilds the lead's desk, and shows the new count.
    assert "4 traders · stored scores" in lena_client.get("/desk/").content.decode()
    assert kept(futures_scope) == live(futures_scope)

    def reread(*scopes):
        for scope in scopes:
            tallies.read(scope, today(), lambda scope=scope: live(scope))
        assert_true(scopes)

    reread(rates_scope, tallies.ALL)
    erin.desks.add(rates)  # from the user's side
    assert kept(rates_scope) == {} and kept(tallies.ALL) == {} and kept(futures_scope) != {}
    reread(rates_scope, tallies.ALL)
    rates.members.remove(erin)
    assert kept(rates_scope) == {}
    reread(rates_scope, tallies.ALL)
    User.objects.get(username="dora").delete()
    assert ScoreTally.objects.count() == 0
    reread(futures_scope, rates_scope, tallies.ALL)
    rates.delete()
    assert kept(rates_scope) == {} and kept(tallies.ALL) == {}
    reread(futures_scope, tallies.ALL)


def test_a_new_day_or_an_hour_rebuilds(firm):
    scope = tallies.ALL
    ScoreTally.objects.filter(scope=scope).update(n=999)
    assert tallies.read(scope, today(), lambda: live(scope))["total"] == 999
    # Counted against yesterday: "overdue" moved with the day, so it is taken afresh.
    assert tallies.read(scope, today() + timedelta(days=1), lambda: {**live(scope), "total": 5})["total"] == 5
    ScoreTally.objects.filter(scope=scope).update(n=999, as_of=today(), built_at=timezone.now() - tallies.MAX_AGE)
    assert tallies.read(scope, today(), lambda: live(scope)) == live(scope)


def build_client():
    from django.test import Client

    return Client()


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_pages_by_score_and_name_read_along_the_indexes_in_the_same_order(lena, lena_client, direction):
    """Unscored traders first going up (last going down), by name; then by
    score, ties by name and id: the order every other sort uses, across a
    page boundary that splits the unscored from the scored."""
    desk = Desk.objects.get(name="Futures desk")
    people = User.objects.bulk_create(
        [User(username=f"t{i:03d}", first_name=["Zoe", "adam", "", "Mia"][i % 4], last_name=f"{i % 7}") for i in range(90)]
    )
    desk.members.add(*people)
    for i, person in enumerate(people[:60]):
        build.stored_score(person, today(), 40 + i % 5, "not_ready", {})
    from checklist.models import CurrentScore, ReadinessSnapshot
    from checklist.services import snapshots_refresh

    snapshots_refresh([p.pk for p in people[:60]])
    # Joining scored the other 30 too: they lose their scores, as members
    # loaded straight into the membership table would have none.
    ReadinessSnapshot.objects.filter(user__in=people[60:]).delete()
    CurrentScore.objects.filter(user__in=people[60:]).delete()
    tallies.forget()
    assert CurrentScore.objects.filter(user__in=people).count() == 60
    rows = {
        u.pk: (u.sort_name, u.current_score.score if hasattr(u, "current_score") else None)
        for u in User.objects.filter(desks=desk).select_related("current_score")
    }
    unscored = sorted((name, pk) for pk, (name, score) in rows.items() if score is None)
    scored = sorted(
        ((score, name, pk) for pk, (name, score) in rows.items() if score is not None),
        key=lambda t: (-t[0] if direction == "desc" else t[0], t[1], t[2]),
    )
    expected = [pk for *_, pk in ([*scored, *unscored] if direction == "desc" else [*unscored, *scored])]
    by_name = [pk for _, pk in sorted(((name, pk) for pk, (name, _) in rows.items()), reverse=direction == "desc")]

    def shown(url):
        html = lena_client.get(url).content.decode()
        return [int(pk) for pk in re.findall(r'<th scope="row" class="who"><a href="/desk/traders/(\d+)/', html)]

    assert shown(f"/desk/?sort=score&dir={direction}") + shown(f"/desk/?sort=score&dir={direction}&page=2") == expected
    names = shown(f"/desk/?sort=name&dir={direction}") + shown(f"/desk/?sort=name&dir={direction}&page=2")
    assert [rows[pk][0] for pk in names] == [rows[pk][0] for pk in by_name]


def test_a_renamed_trader_moves_in_the_order_by_name_at_once(firm, lena_client, alice):
    """The desk orders by the user's own sort name (a generated column), so
    a rename, through save() or around it, moves the trader at once."""

    def names():
        html = lena_client.get("/desk/?sort=name").content.decode()
        return re.findall(r'<th scope="row" class="who"><a href="/desk/traders/\d+/">([^<]+)</a>', html)

    alice.first_name, alice.last_name = "Zed", ""
    alice.save()
    assert names()[-1] == "Zed"
    User.objects.filter(pk=alice.pk).update(first_name="Abe")
    assert names()[0] == "Abe"


def test_a_refused_tally_write_still_shows_the_page(firm, lena_client, monkeypatch):
    from django.db import DatabaseError

    tallies.forget()

    def refuse(*args, **kwargs):
        raise DatabaseError("database is read-only")

    monkeypatch.setattr(ScoreTally.objects, "bulk_create", refuse)
    response = lena_client.get("/desk/")
    assert response.status_code == 200
    assert "3 traders · stored scores" in response.content.decode()
    assert ScoreTally.objects.count() == 0


def test_a_trader_who_joins_a_desk_is_scored_at_once(firm, lena_client):
    """So the lead sees their readiness, and a page by score has no unscored
    members to look for (a superuser's would scan every trader for them)."""
    from checklist.models import CurrentScore

    futures, rates = firm["futures"], firm["rates"]
    erin, fred = make_user("erin"), make_user("fred")
    build.recovery(erin, "phone", "+1 555 010 0111")
    assert not CurrentScore.objects.filter(user__in=[erin, fred]).exists()
    futures.members.add(erin)
    fred.desks.add(rates)  # from the user's side
    assert set(CurrentScore.objects.filter(user__in=[erin, fred]).values_list("user__username", flat=True)) == {"erin", "fred"}
    html = lena_client.get("/desk/").content.decode()
    assert "not scored yet" not in html
    scopes = [tallies.desk_scope(futures.pk), tallies.desk_scope(rates.pk), tallies.ALL]
    for scope in scopes:
        tallies.read(scope, today(), lambda scope=scope: live(scope))
    assert_true(scopes)
