"""The mutation survivors of issue "One inventory, one read model".

An outside mutation sample found five deliberate bugs that no test noticed.
Each test below goes through the paths a user takes (the test Client, a
management command) and was seen failing with its mutation applied to
today's code, then passing again with the code restored:

1. ``devices.services.inventory_delete`` without its
   ``inventory_changed.send(...)`` (no re-score after a delete): the stored
   score, the lead's row and the desk tiles stayed as before the delete.
2. ``checklist.tallies.contribution`` counting ``next_due_on <= as_of`` as
   overdue (the SQL count says ``<``): the "with overdue items" tile of the
   lead's and the superuser's pages, moved by the tallies after a re-score,
   counted a trader whose item is due today; the overdue filter did not.
   That Python twin is gone: the tallies now move by the one SQL count
   (``checklist.tallies._count_sql``) taken per trader before and after the
   write, and the same mutation there (``<=``) turns this test red too.
3. ``checklist.tallies.apply`` adding every trader's change to the
   firm-wide scope (``ALL`` whether or not they are on a desk): a trader on
   no desk moved the superuser's tiles. (With a single desk the superuser's
   page reads that desk's tallies, which is why this test has two desks.)
4. ``devices.inventory.AutomationSection._heartbeat`` with no upper bound
   on the grace (``1440`` raised to ``10**9``): a grace the heartbeat form and
   the database refuse went through to the confirm page.
5. ``devices.services._tell`` alarming only a bot never alarmed about before
   (an extra condition: no ``heartbeat.down``/``heartbeat.failing`` audit row
   for it yet): a bot that failed, recovered and failed again was told once,
   through the ping URLs as through the sweep command.

Each mutation was one edit of the file named, the test run alone (red), the
file copied back from a copy taken before (green, ``git diff`` empty for it).
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Desk
from checklist import tallies
from checklist.models import CurrentScore, ScoreTally
from checklist.views import PENDING_IMPORT
from devices.forms import HeartbeatForm
from devices.models import Heartbeat, RecoveryMethod
from tests import builders as build
from tests.builders import ready_inventory, texts, today
from tests.conftest import make_user, verify_client
from tests.test_inventory import minimal_document, stored, upload

pytestmark = pytest.mark.django_db


def desk_page(client: Client, query: str = ""):
    response = client.get(f"/desk/{query}")
    assert response.status_code == 200
    return response


def tiles(response) -> list[str]:
    """The desk summary as shown: average, one count per level, overdue, bots down (and unscored, if any)."""
    return texts(response.content, "stat-value")


def shown(response) -> dict[str, object]:
    return {row.username: row for row in response.context["table"].shown}


def signed_in(user) -> Client:
    return verify_client(Client(), user)


# --- 1. A delete re-scores the trader at once ------------------------------------------


def test_deleting_an_item_rescores_the_trader_for_the_desk_at_once(alice, lena, alice_client, lena_client):
    ready_inventory(alice)
    assert alice_client.get("/").status_code == 200  # the dashboard stores today's score
    before = CurrentScore.objects.get(user=alice).score
    page = desk_page(lena_client)
    assert shown(page)["alice"].score == before
    tiles_before = tiles(page)

    phone = RecoveryMethod.objects.get(owner=alice, kind="phone")
    response = alice_client.post(f"/recovery/{phone.pk}/delete/")
    assert response.status_code == 302
    assert not RecoveryMethod.objects.filter(pk=phone.pk).exists()

    # Before anything else reads alice's inventory: the delete itself re-scored her.
    after = CurrentScore.objects.get(user=alice).score
    assert after < before
    page = desk_page(lena_client)
    assert shown(page)["alice"].score == after
    assert page.context["table"].average == after  # alice is the desk's one trader
    assert tiles(page) != tiles_before
    # The stored score is the one her dashboard computes from the inventory now.
    assert alice_client.get("/").context["report"].score == after


# --- 2. Due today is not overdue, in the tallies as in the filter ----------------------


def test_an_item_due_today_is_not_counted_overdue_by_the_tallies_or_the_filter(alice, lena, alice_client, lena_client):
    carl = make_user("carl", first_name="Carl", last_name="Berg")
    Desk.objects.get(name="Futures desk").members.add(carl)
    # A second desk, so that the superuser's page shows the firm, not one desk.
    Desk.objects.create(name="Rates desk")
    root_client = signed_in(make_user("root", is_superuser=True, is_staff=True))
    ready_inventory(alice)
    ready_inventory(carl, phone="+44 20 7946 0958", email="carl@example.org")
    # carl's phone was last verified 200 days ago: overdue since day 180.
    RecoveryMethod.objects.filter(owner=carl, kind="phone").update(last_verified_on=today() - timedelta(days=200))
    for trader in (alice, carl):
        assert signed_in(trader).get("/").status_code == 200
    # The first reads build the desk's and the firm's tallies.
    assert desk_page(lena_client).context["table"].overdue_traders == 1
    assert desk_page(root_client).context["table"].overdue_traders == 1
    built = set(ScoreTally.objects.values_list("scope", "built_at"))
    assert {scope for scope, _ in built} == {tallies.desk_scope(Desk.objects.get(name="Futures desk").pk), tallies.ALL}

    # alice records a key that expires today: re-scored, her change added to the tallies.
    response = alice_client.post(
        "/keys/add/",
        {
            "label": "algo-futures",
            "scopes": ["read", "trade"],
            "service_account": "on",
            "ip_restricted": "on",
            "created_on": (today() - timedelta(days=10)).isoformat(),
            "expires_on": today().isoformat(),
            "fingerprint": "7f3a",
        },
    )
    assert response.status_code == 302
    assert CurrentScore.objects.get(user=alice).next_due_on == today()

    for client in (lena_client, root_client):
        page = desk_page(client)
        overdue = desk_page(client, "?due=overdue")
        assert [row.username for row in overdue.context["table"].shown] == ["carl"]
        assert page.context["table"].overdue_traders == overdue.context["table"].matching == 1
        assert "1 with overdue items" in texts(page.content, "stat")  # the tile as shown
        row = shown(page)["alice"]
        assert row.overdue == 0 and row.due_soon >= 1
    # The tiles came from the kept tallies, moved in place, not from a rebuild.
    assert set(ScoreTally.objects.values_list("scope", "built_at")) == built


# --- 3. A trader on no desk leaves the firm-wide tiles alone ----------------------------


def test_rescoring_a_trader_on_no_desk_leaves_the_firm_wide_tiles_unchanged(alice, lena, bob, alice_client, bob_client):
    root_client = signed_in(make_user("root", is_superuser=True, is_staff=True))
    # A second desk, so that the superuser's page shows the firm (the "all" tallies), not one desk.
    Desk.objects.create(name="Rates desk").members.add(make_user("dora"))
    ready_inventory(alice)
    assert alice_client.get("/").status_code == 200
    build.recovery(bob, "phone", "+1 555 010 0199", verified_on=today() - timedelta(days=400))
    page = desk_page(root_client)  # builds the firm-wide tallies
    assert ScoreTally.objects.filter(scope=tallies.ALL).exists()
    before = tiles(page)
    assert page.context["table"].total == 2 and "bob" not in shown(page)

    # bob, on no desk, is scored by his dashboard, then re-scored by an edit of his own.
    assert bob_client.get("/").status_code == 200
    response = bob_client.post("/recovery/add/", {"kind": "email", "label": "bob.home@example.net", "last_verified_on": today().isoformat()})
    assert response.status_code == 302
    assert CurrentScore.objects.filter(user=bob).exists()

    page = desk_page(root_client)
    assert tiles(page) == before
    assert page.context["table"].total == 2 and "bob" not in shown(page)


# --- 4. The importer keeps the heartbeat limits of the form and the database -----------


def automation_document(*, period: int, grace: int) -> dict:
    document = minimal_document()
    document["automations"] = [
        {
            "name": "ES spread bot",
            "api_key": None,
            "token_refresh": True,
            "fallback_contact": "desk lead phone",
            "on_auth_failure": "flatten",
            "status": "active",
            "heartbeat": {"period_minutes": period, "grace_minutes": grace},
        },
    ]
    return document


@pytest.mark.parametrize("field", ["grace_minutes", "period_minutes"])
def test_an_upload_over_the_heartbeat_forms_limit_names_the_path_and_changes_nothing(alice, alice_client, field):
    build.heartbeat(build.automation(alice, "Vol harvester"))
    limits = {name: HeartbeatForm().fields[name].max_value for name in ("period_minutes", "grace_minutes")}
    over = {**limits, field: limits[field] + 1}
    before = stored(alice)
    response = upload(alice_client, automation_document(period=over["period_minutes"], grace=over["grace_minutes"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<code>automations[0].heartbeat.{field}</code>: must be a whole number of minutes from 1 to {limits[field]}" in html
    assert "nothing changed" in html
    assert PENDING_IMPORT not in alice_client.session
    assert stored(alice) == before


def test_an_upload_just_at_the_heartbeat_forms_limits_is_imported(alice, alice_client):
    period, grace = (HeartbeatForm().fields[name].max_value for name in ("period_minutes", "grace_minutes"))
    response = upload(alice_client, automation_document(period=period, grace=grace))
    assert response.status_code == 302 and response.url == "/inventory/import/confirm/"
    preview = alice_client.get("/inventory/import/confirm/")
    response = alice_client.post("/inventory/import/confirm/", {"action": "replace", "digest": preview.context["digest"]})
    assert response.status_code == 302
    beat = Heartbeat.objects.get(owner=alice)
    assert (beat.automation.name, beat.period_minutes, beat.grace_minutes) == ("ES spread bot", period, grace)


# --- 5. A bot that fails again is alarmed about again ----------------------------------


def heartbeat_urls(client: Client, owner) -> tuple[str, str]:
    """A new heartbeat for a bot of ``owner``, set up on its page: its ping and fail paths."""
    bot = build.automation(owner, key=build.api_key(owner))
    response = client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2})
    ok_url, fail_url = client.get(response["Location"]).context["urls"]
    return ok_url.replace("http://testserver", ""), fail_url.replace("http://testserver", "")


def subjects() -> list[str]:
    return [m.subject.removeprefix("[Gatecheck] Automation 'ES spread bot' ") for m in mail.outbox]


def test_a_bot_that_fails_recovers_and_fails_again_is_alarmed_about_twice(alice, lena, alice_client):
    ok, fail = heartbeat_urls(alice_client, alice)
    bot = Client()
    assert bot.get(ok).status_code == 200
    mail.outbox.clear()
    for url in (fail, ok, fail):
        assert bot.get(url).status_code == 200
    # Each change reaches the trader and their lead (one e-mail each: the trader's carries an "I'm on it" link).
    assert subjects() == [s for s in ("reported an authentication failure", "is checking in again", "reported an authentication failure") for _ in (1, 2)]
    assert [m.to for m in mail.outbox] == [[alice.email], [lena.email]] * 3
    assert Heartbeat.objects.get(owner=alice).notified == "failing"


def test_a_bot_that_goes_down_recovers_and_goes_down_again_is_alarmed_about_twice(alice, alice_client):
    ok, _ = heartbeat_urls(alice_client, alice)
    bot = Client()

    def silent_for(minutes: int) -> None:
        # The clock cannot move here: the last check-in moves back instead.
        ago = timezone.now() - timedelta(minutes=minutes)
        Heartbeat.objects.filter(owner=alice).update(last_at=ago, deadline=ago + timedelta(minutes=7))

    assert bot.get(ok).status_code == 200
    mail.outbox.clear()
    silent_for(8)
    call_command("heartbeat_sweep", stdout=StringIO())
    assert bot.get(ok).status_code == 200
    silent_for(8)
    call_command("heartbeat_sweep", stdout=StringIO())
    assert subjects() == ["stopped checking in", "is checking in again", "stopped checking in"]
