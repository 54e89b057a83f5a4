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
