"""Fixes from the security review: the admin's password form, refused admin
views in the audit log, no-store on every signed-in page, the database-level
append-only audit table, desk deletion, and the reset-mail cap."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, User
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a password root chose 4 alice"


@pytest.fixture
def root(db) -> User:
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(root) -> Client:
    return verify_client(Client(), root)


def admin_set_password(client: Client, user: User):
    return client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set-password": ""},
    )


# --- A password set in the admin is a password change (item 3) ----------------------


def test_a_password_set_in_the_admin_ends_sessions_voids_the_feed_audits_and_emails(root_client, root, alice):
    from checklist.models import CalendarFeed

    alices_browser = verify_client(Client(), alice)
    CalendarFeed.objects.create(owner=alice, token="t" * 64)
    mail.outbox.clear()

    response = admin_set_password(root_client, alice)
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/user/{alice.pk}/change/"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert alices_browser.get("/").get("Location", "").startswith("/accounts/login/?")
    assert not CalendarFeed.objects.filter(owner=alice).exists()
    event = AuditEvent.objects.get(action="password.changed")
    assert (event.actor, event.subject) == (root, alice)
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    # The superuser's own session carries on.
    assert root_client.get("/admin/").status_code == 200


def test_the_admin_password_form_needs_a_fresh_code(root_client, alice):
    session = root_client.session
    session["mfa_at"] = time.time() - 16 * 60
    session.save()
    response = admin_set_password(root_client, alice)
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    alice.refresh_from_db()
    assert not alice.check_password(NEW_PASSWORD)


# --- A lead's refused admin reads are failures in the log (item 10) --------------------


def test_a_leads_refused_admin_record_view_is_audited_as_a_failure(lena_client, alice, bob):
    from devices.models import TrustedDevice

    mine = TrustedDevice.objects.create(owner=alice, name="Office workstation", kind="desktop")
    other = TrustedDevice.objects.create(owner=bob, name="Bob's laptop", kind="laptop")
    assert lena_client.get(f"/admin/devices/trusteddevice/{mine.pk}/change/").status_code == 200
    refused = lena_client.get(f"/admin/devices/trusteddevice/{other.pk}/change/")
    assert refused.status_code == 302
    outcomes = {
        event.object_label: event.outcome for event in AuditEvent.objects.filter(action="desk.admin_record_viewed")
    }
    assert outcomes == {f"trusted device #{mine.pk}": "success", f"trusted device #{other.pk}": "failure"}


# --- Every page behind sign-in is no-store, private (item 11) ---------------------------


def _signed_in_urls() -> list[str]:
    from tests.test_step_up_policy import GATED, url_for

    return [url_for(name, pattern) for name, pattern in GATED if not name.startswith("admin:")] + ["/admin/"]


@pytest.mark.parametrize("url", _signed_in_urls())
def test_every_signed_in_page_is_not_stored_by_any_cache(alice_client, url):
    response = alice_client.get(url)
    directives = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= directives, (url, response.status_code)


def test_a_half_finished_sign_in_is_not_stored_either(client, alice):
    from tests.test_auth_login import password_step

    password_step(client)
    response = client.get("/accounts/login/code/")
    assert {"no-store", "private"} <= {p.strip() for p in response["Cache-Control"].split(",")}


def test_pages_with_real_objects_are_no_store_too(alice_client, alice):
    from devices.models import RecoveryMethod

    method = RecoveryMethod.objects.create(owner=alice, kind="phone", label="+1 212 555 0142")
    for url in ("/recovery/", f"/recovery/{method.pk}/edit/"):
        response = alice_client.get(url)
        assert response.status_code == 200
        assert {"no-store", "private"} <= {p.strip() for p in response["Cache-Control"].split(",")}, url


# --- The audit table refuses UPDATE and DELETE in the database (item 12) ----------------


@pytest.mark.postgres
def test_the_database_refuses_to_update_or_delete_audit_rows(alice):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("The trigger exists on PostgreSQL only (DATABASE_URL=postgres://...).")
    from accounts.audit import record_event

    event = record_event(action="login.success", actor=alice, object_label="Phone")
    for sql in (
        "UPDATE accounts_auditevent SET outcome = 'failure' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    with connection.cursor() as cursor:
        cursor.execute("SELECT outcome FROM accounts_auditevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == ("success",)
    # Appending still works.
    record_event(action="logout", actor=alice)
    assert AuditEvent.objects.count() == 2


# --- Deleting a desk takes the lead's admin access away (item 13) -----------------------


def test_deleting_a_desk_in_the_admin_removes_its_leads_staff_rights_and_group(root_client, lena):
    from accounts.models import Desk

    desk = Desk.objects.get(name="Futures desk")
    lena.refresh_from_db()
    assert lena.is_staff and lena.groups.filter(name="Desk leads").exists()
    response = root_client.post(f"/admin/accounts/desk/{desk.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Desk.objects.filter(pk=desk.pk).exists()
    lena.refresh_from_db()
    assert not lena.is_staff
    assert not lena.groups.filter(name="Desk leads").exists()
    lena_browser = verify_client(Client(), lena)
    assert lena_browser.get("/admin/").status_code != 200


def test_a_lead_of_two_desks_keeps_access_when_one_is_deleted(lena):
    from accounts.models import Desk

    second = Desk.objects.create(name="Options desk")
    second.leads.add(lena)
    Desk.objects.get(name="Futures desk").delete()
    lena.refresh_from_db()
    assert lena.is_staff and lena.groups.filter(name="Desk leads").exists()


# --- Reset e-mails are capped per recipient too (item 14) -------------------------------


def test_reset_mails_to_one_address_are_capped_whatever_the_ip(alice, settings):
    for i in range(6):
        response = Client(REMOTE_ADDR=f"198.51.100.{i + 1}").post("/accounts/password/reset/", {"email": "ALICE@example.com"})
        assert response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == settings.GATECHECK_RESET_RECIPIENT_LIMIT == 3
    # Another address is not held back by alice's cap.
    bob = make_user("bob")
    Client(REMOTE_ADDR="198.51.100.99").post("/accounts/password/reset/", {"email": bob.email})
    assert mail.outbox[-1].to == ["bob@example.com"]
