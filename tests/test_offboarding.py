"""Offboarding (issue 22, parts 4 and 5): deactivating a person by the desk
(a lead, behind a fresh code) or the admin ends every way in at once, keeps
their inventory and audit trail, tells the desk's leads, disables their bots'
ping tokens and opens a leaver checklist the lead ticks off."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.test import Client

from accounts import tokens
from accounts.models import AuditEvent, Desk, TrustedBrowser, User
from checklist.models import CalendarFeed
from desk.models import LeaverCheck, LeaverItem
from devices import services as device_services
from devices.models import ApiKey, Heartbeat
from tests import builders as build

from .conftest import make_user, verify_client


@pytest.fixture
def leaver(alice):
    """alice with keys, a bot with a ping token, a device, an API token and a calendar feed."""
    key = build.api_key(alice, label="algo-futures", fingerprint="9f2c")
    build.api_key(alice, label="old-key", status=ApiKey.Status.REVOKED)
    bot = build.automation(alice, name="ES spread bot", key=key)
    beat = Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=5, grace_minutes=2)
    ping = device_services.heartbeat_rotate(request=None, heartbeat=beat)
    build.device(alice, name="Trading laptop")
    _, api_secret = tokens.create(user=alice, name="script", scope="read", days=30, via="test")
    CalendarFeed.objects.create(owner=alice, token=CalendarFeed.digest("feed-token"))
    return {"ping": ping, "api": api_secret}


def test_a_lead_deactivates_a_trader_and_everything_ends_at_once(lena_client, lena, alice, alice_client, leaver):
    assert alice_client.get("/").status_code == 200
    assert Client().get(f"/ping/{leaver['ping']}").status_code == 200
    page = lena_client.get(f"/desk/traders/{alice.pk}/deactivate/")
    assert page.status_code == 200 and "Deactivate now" in page.content.decode()
    response = lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == "/desk/leavers/"
    alice.refresh_from_db()
    assert not alice.is_active
    # Her signed-in browser is refused on its very next request.
    assert alice_client.get("/")["Location"].startswith("/accounts/login/")
    # Her API token, ping token and calendar link no longer work.
    assert Client().get("/api/v1/readiness", HTTP_AUTHORIZATION=f"Bearer {leaver['api']}").status_code == 401
    assert Client().get(f"/ping/{leaver['ping']}").status_code == 404
    assert not CalendarFeed.objects.filter(owner=alice).exists()
    # Her inventory and audit trail stay.
    assert ApiKey.objects.filter(owner=alice).count() == 2
    event = AuditEvent.objects.get(action="user.deactivated", subject=alice)
    assert event.actor == lena and event.details["via"] == "desk"
    # The desk's lead is told.
    assert any("left: revoke their broker access" in m.subject and m.to == ["lena@example.com"] for m in mail.outbox)
    # The leaver checklist lists her live key (with fingerprint), her bot and her device.
    html = lena_client.get("/desk/leavers/").content.decode()
    assert "algo-futures" in html and "…9f2c" in html and "ES spread bot" in html and "Trading laptop" in html
    assert "old-key" not in html
    items = {(i.kind, i.label) for i in LeaverItem.objects.all()}
    assert items == {("key", "algo-futures"), ("bot", "ES spread bot"), ("device", "Trading laptop")}


def test_ticking_an_item_is_recorded_with_time_and_name(lena_client, lena, alice, leaver):
    lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    item = LeaverItem.objects.get(kind="key")
    assert lena_client.post(f"/desk/leavers/items/{item.pk}/done/").status_code == 302
    item.refresh_from_db()
    assert item.done_by == lena and item.done_at is not None
    assert AuditEvent.objects.filter(action="leaver.item_done", subject=alice, actor=lena).count() == 1
    # Twice is once.
    lena_client.post(f"/desk/leavers/items/{item.pk}/done/")
    assert AuditEvent.objects.filter(action="leaver.item_done").count() == 1
    assert "by lena" in lena_client.get("/desk/leavers/").content.decode()


def test_another_lead_sees_and_ticks_nothing(lena_client, alice, leaver, bob):
    lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    other = make_user("olga")
    Desk.objects.create(name="Options desk").leads.add(other)
    olga = verify_client(Client(), other)
    assert "algo-futures" not in olga.get("/desk/leavers/").content.decode()
    item = LeaverItem.objects.first()
    assert olga.post(f"/desk/leavers/items/{item.pk}/done/").status_code == 404
    assert olga.get(f"/desk/traders/{alice.pk}/deactivate/").status_code == 404


def test_deactivating_needs_a_fresh_code_and_a_lead_never_deactivates_a_lead(lena_client, lena, alice):
    session = lena_client.session
    session["mfa_at"] = time.time() - 3600
    session.save()
    response = lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    alice.refresh_from_db()
    assert alice.is_active
    session["mfa_at"] = time.time()
    session.save()
    other_lead = make_user("mark")
    desk = Desk.objects.get(name="Futures desk")
    desk.members.add(other_lead)
    Desk.objects.create(name="Options desk").leads.add(other_lead)
    assert lena_client.post(f"/desk/traders/{other_lead.pk}/deactivate/", {"confirm": "on"}).status_code == 403
    assert lena_client.post(f"/desk/traders/{lena.pk}/deactivate/", {"confirm": "on"}).status_code in (403, 404)
    assert User.objects.get(pk=other_lead.pk).is_active and User.objects.get(pk=lena.pk).is_active


def _admin_untick_active(admin: Client, user: User) -> None:
    """Post the admin's change form of ``user`` as shown, with "active" unticked."""
    form = admin.get(f"/admin/accounts/user/{user.pk}/change/").context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value in (None, False) or name == "is_active":
            continue
        if hasattr(field.widget, "widgets"):  # a split date and time
            data |= {f"{name}_{i}": part for i, part in enumerate(field.widget.decompress(value))}
        else:
            data[name] = [str(getattr(v, "pk", v)) for v in value] if isinstance(value, (list, tuple)) else value
    response = admin.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response


def test_the_admin_checkbox_offboards_too(alice, leaver, lena):
    """A superuser unticks "active" in the admin: the same offboarding."""
    root = make_user("root", is_superuser=True, is_staff=True)
    admin = verify_client(Client(), root)
    alice_browser = verify_client(Client(), alice)
    TrustedBrowser.objects.create(user=alice, secret_hash="x" * 64, device_id="d", fingerprint="f", expires_at="2099-01-01T00:00Z")
    _admin_untick_active(admin, alice)
    alice.refresh_from_db()
    assert not alice.is_active
    assert alice_browser.get("/")["Location"].startswith("/accounts/login/")
    assert not TrustedBrowser.objects.filter(user=alice).exists()
    assert LeaverCheck.objects.filter(leaver=alice, desk__name="Futures desk").exists()
    event = AuditEvent.objects.get(action="user.deactivated", subject=alice)
    assert event.details["via"] == "admin" and event.actor == root


def test_a_lead_who_leaves_loses_lead_rights(lena, alice):
    from accounts import offboarding

    root = make_user("root", is_superuser=True, is_staff=True)
    assert User.objects.get(pk=lena.pk).is_staff
    offboarding.deactivate(user=lena, by=root, via="desk")
    lena.refresh_from_db()
    assert not lena.is_staff and not lena.led_desks.exists()


def test_remove_from_desk_keeps_the_account(lena_client, alice, alice_client):
    response = lena_client.post(f"/desk/traders/{alice.pk}/remove/", {"confirm": "on"})
    assert response.status_code == 302
    assert not Desk.objects.get(name="Futures desk").members.filter(pk=alice.pk).exists()
    assert alice_client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="desk.member_removed", subject=alice).exists()
    # She is no longer the lead's to see.
    assert lena_client.get(f"/desk/traders/{alice.pk}/").status_code == 404


def test_the_leads_admin_invites_removes_and_deactivates_through_the_desk(lena_client, alice, bob):
    """The lead's admin (view-only models) offers the three people actions;
    each goes through the desk's page (a fresh code, the same rule of whom:
    test_deactivating_needs_a_fresh_code_and_a_lead_never_deactivates_a_lead)."""

    def action(name, *users):
        return lena_client.post("/admin/accounts/user/", {"action": name, "_selected_action": [u.pk for u in users], "index": 0})

    changelist = lena_client.get("/admin/accounts/user/").content.decode()
    assert "/desk/invitations/" in changelist and "Deactivate (one trader)" in changelist
    assert action("deactivate", alice)["Location"] == f"/desk/traders/{alice.pk}/deactivate/"
    assert action("remove_from_desk", alice)["Location"] == f"/desk/traders/{alice.pk}/remove/"
    # bob is on no desk of lena's: the changelist does not even list him.
    assert action("deactivate", bob)["Location"] == "/admin/accounts/user/"


def test_a_leaver_leaves_the_desks_table_and_totals(lena_client, alice, bob):
    Desk.objects.get(name="Futures desk").members.add(bob)
    assert "alice" in lena_client.get("/desk/").content.decode()
    lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    page = lena_client.get("/desk/").content.decode()
    assert "1 trader ·" in page and f"/desk/traders/{alice.pk}/" not in page
    # The checklist stays with the desk.
    assert "Leaver checklists" in lena_client.get("/desk/leavers/").content.decode()
    assert LeaverCheck.objects.filter(leaver=alice, desk__name="Futures desk").exists()


def test_a_trader_shared_with_another_desk_is_a_superusers_call(lena_client, alice):
    other = make_user("olga")
    options = Desk.objects.create(name="Options desk")
    options.leads.add(other)
    options.members.add(alice)
    assert lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"}).status_code == 403
    assert User.objects.get(pk=alice.pk).is_active


def test_a_leaving_lead_s_open_invitations_die(lena, alice):
    from accounts import invitations, offboarding
    from accounts.models import Invitation

    invitations.invite(desk=Desk.objects.get(name="Futures desk"), addresses=["new@example.com"], by=lena)
    offboarding.deactivate(user=lena, by=None, via="admin")
    assert Invitation.objects.get().status == "revoked"


def test_a_save_that_does_not_write_active_offboards_no_one(alice, alice_client):
    stale = User.objects.get(pk=alice.pk)
    stale.is_active = False
    stale.save(update_fields=["first_name"])
    assert User.objects.get(pk=alice.pk).is_active
    assert alice_client.get("/").status_code == 200
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()
