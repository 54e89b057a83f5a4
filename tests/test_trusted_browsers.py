"""'Trust this browser' at the code step (SECURITY.md 18, issue 14).

A trusted browser skips only the code: the password is always asked, the
step-up and the admin still want a fresh code, and the trust dies with a
password change, a factor change, an MFA reset, or a click on "Forget".
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services, signin
from accounts.models import AuditEvent, Desk, TrustedBrowser, User
from tests import builders as build
from tests.builders import page_texts
from tests.conftest import PASSWORD, current_code, make_user, verify_client

pytestmark = pytest.mark.django_db

COOKIE = signin.TRUST_COOKIE
NEW_PASSWORD = "a brand new passphrase 7781"


def fresh_codes(user: User) -> None:
    """Tests sign in several times within one 30-second step; a code accepted
    once is refused again, so forget which one was last used."""
    TOTPDevice.objects.filter(user=user).update(last_t=-1)


def sign_in(client: Client, user: User, *, trust: bool = False, password: str = PASSWORD):
    fresh_codes(user)
    client.post("/accounts/login/", {"username": user.username, "password": password})
    data = {"otp_token": current_code(user)}
    if trust:
        data["trust_browser"] = "on"
    return client.post("/accounts/login/code/", data)


def password_only(client: Client, user: User, password: str = PASSWORD):
    """The password step, then the code step as the browser follows it."""
    response = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert response["Location"].startswith("/accounts/login/code/")
    return client.get(response["Location"])


def trusted_client(user: User) -> Client:
    """A browser that signed in with "Trust this browser", then signed out."""
    client = Client()
    assert sign_in(client, user, trust=True).status_code == 302
    assert client.cookies[COOKIE].value
    client.post("/accounts/logout/")
    return client


def test_the_box_sets_a_signed_cookie_and_a_row(alice):
    client = Client()
    response = sign_in(client, alice, trust=True)
    assert response.status_code == 302
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == 30 * 24 * 3600
    row = TrustedBrowser.objects.get(user=alice)
    assert row.expires_at - row.created_at == timedelta(days=30)
    data = signing.loads(cookie.value, salt=signin.TRUST_SALT)
    assert data["id"] == row.pk and data["s"] not in row.secret_hash
    assert AuditEvent.objects.filter(action="browser.trusted", actor=alice).exists()


def test_without_the_box_nothing_is_remembered(alice):
    response = sign_in(Client(), alice)
    assert COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


def test_a_trusted_browser_skips_the_code_but_not_the_password(alice):
    client = trusted_client(alice)
    # Signed out: the cookie alone opens nothing.
    assert client.get("/")["Location"].startswith("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong password"})
    assert response.status_code == 200
    # The password, and no code.
    response = password_only(client, alice)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="browser.trust_used", actor=alice).count() == 1
    assert TrustedBrowser.objects.get(user=alice).last_used_at is not None


def test_the_code_step_offers_the_box_with_its_duration(alice):
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    page = client.get("/accounts/login/code/")
    assert "Trust this browser for 30 days" in page.content.decode()


def test_a_trusted_session_still_needs_a_fresh_code_for_sensitive_changes(alice):
    client = trusted_client(alice)
    password_only(client, alice)
    response = client.get("/accounts/password/change/")
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    fresh_codes(alice)
    client.post("/accounts/mfa/confirm/", {"otp_token": current_code(alice), "next": "/accounts/password/change/"})
    assert client.get("/accounts/password/change/").status_code == 200


def test_another_users_or_a_tampered_cookie_is_not_honoured(alice, bob):
    bobs = trusted_client(bob).cookies[COOKIE].value
    client = Client()
    client.cookies[COOKIE] = bobs
    assert password_only(client, alice).status_code == 200  # the code form
    data = signing.loads(bobs, salt=signin.TRUST_SALT)
    client = Client()
    client.cookies[COOKIE] = signing.dumps({"id": data["id"], "s": "guessed"}, salt=signin.TRUST_SALT)
    assert password_only(client, bob).status_code == 200
    client.cookies[COOKIE] = bobs[:-2] + "xx"
    assert password_only(client, bob).status_code == 200
    assert not AuditEvent.objects.filter(action="browser.trust_used").exists()


def test_an_expired_trust_is_not_honoured(alice):
    client = trusted_client(alice)
    TrustedBrowser.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert password_only(client, alice).status_code == 200


def test_the_security_page_lists_and_forgets_trusted_browsers(alice):
    client = trusted_client(alice)
    password_only(client, alice)
    page = client.get("/accounts/security/")
    assert len(page_texts(page, "trusted-browser")) == 1 and "This browser" in page_texts(page, "trusted-browser")[0]
    row = TrustedBrowser.objects.get(user=alice)
    assert client.post(f"/accounts/security/trusted-browsers/{row.pk}/forget/").status_code == 302
    assert not TrustedBrowser.objects.exists()
    assert AuditEvent.objects.filter(action="browser.forgotten", actor=alice).exists()
    client.post("/accounts/logout/")
    assert password_only(client, alice).status_code == 200


# --- What voids a trust --------------------------------------------------------


def _change_password(alice, client):
    client.post("/accounts/password/change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    return NEW_PASSWORD


def _add_authenticator(alice, client):
    client.get("/accounts/security/authenticators/add/")
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    token = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert client.post("/accounts/security/authenticators/add/", {"name": "Tablet", "otp_token": token}).status_code == 302


def _remove_authenticator(alice, client):
    spare = TOTPDevice.objects.create(user=alice, name="Spare", confirmed=True)
    TrustedBrowser.objects.update(fingerprint=signin.factor_fingerprint(alice))  # the spare came before the trust
    assert client.post(f"/accounts/security/authenticators/{spare.pk}/remove/").status_code == 302


def _remove_passkey(alice, client):
    key = build.SoftPasskey(alice)
    TrustedBrowser.objects.update(fingerprint=signin.factor_fingerprint(alice))  # the passkey came before the trust
    assert client.post(f"/accounts/security/passkeys/{key.device.pk}/remove/").status_code == 302
    assert AuditEvent.objects.get(action="browser.trust_voided").details["reason"] == "passkey removed"


def _regenerate_backup_codes(alice, client):
    assert client.post("/accounts/security/backup-codes/").status_code == 302


def _mfa_reset(alice, client):
    lead = make_user("lena")
    Desk.objects.create(name="Futures desk").leads.add(lead)
    Desk.objects.get(name="Futures desk").members.add(alice)
    reset = {"reason": "Lost phone, video call", "identity_confirmed": "on"}
    assert verify_client(Client(), lead).post(f"/desk/traders/{alice.pk}/mfa-reset/", reset).status_code == 302


def _password_set_elsewhere(alice, client):
    """A path that deletes no row (a shell, a future admin form): the stored
    fingerprint no longer matches."""
    alice.set_password(NEW_PASSWORD)
    alice.save()
    return NEW_PASSWORD


@pytest.mark.parametrize(
    "change",
    [_change_password, _add_authenticator, _remove_authenticator, _remove_passkey, _regenerate_backup_codes, _mfa_reset, _password_set_elsewhere],
)
def test_a_security_change_voids_the_trust(alice, change):
    browser = trusted_client(alice)
    assert TrustedBrowser.objects.filter(user=alice).count() == 1
    new_password = change(alice, verify_client(Client(), alice)) or PASSWORD
    assert not TrustedBrowser.objects.filter(user=alice).exists() or change is _password_set_elsewhere
    if change is _mfa_reset:
        # No factor left: the password leads to the enrolment code, not in.
        response = browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        assert response["Location"].startswith("/accounts/mfa/setup/")
        return
    response = password_only(browser, alice, new_password)
    assert response.status_code == 200 and page_texts(response, "auth-card")  # the code step is asked again
    assert browser.get("/")["Location"].startswith("/accounts/login/code/")


def test_a_change_made_elsewhere_voids_every_trust_at_the_next_sign_in_and_is_audited(alice):
    first, second = trusted_client(alice), trusted_client(alice)
    _password_set_elsewhere(alice, None)
    assert password_only(first, alice, NEW_PASSWORD).status_code == 200
    assert not TrustedBrowser.objects.exists()
    assert password_only(second, alice, NEW_PASSWORD).status_code == 200
    assert AuditEvent.objects.get(action="browser.trust_voided").details["count"] == 2


def test_a_void_is_audited(alice):
    trusted_client(alice)
    services.access_revoke(user=alice)
    event = AuditEvent.objects.get(action="browser.trust_voided")
    assert event.subject == alice and event.details["count"] == 1


# --- Who is offered it, and for how long -----------------------------------------


def test_administrators_are_never_offered_it(db):
    root = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    page = client.get("/accounts/login/code/")
    assert "Trust this browser" not in page.content.decode()
    response = client.post("/accounts/login/code/", {"otp_token": current_code(root), "trust_browser": "on"})
    assert response.status_code == 302 and COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


def test_staff_who_lead_no_desk_are_never_offered_it(db):
    make_user("sam", is_staff=True)
    client = Client()
    response = sign_in(client, User.objects.get(username="sam"), trust=True)
    assert COOKIE not in response.cookies and not TrustedBrowser.objects.exists()


def test_a_desk_leads_trust_lasts_twelve_hours(lena):
    client = Client()
    client.post("/accounts/login/", {"username": "lena", "password": PASSWORD})
    assert "Trust this browser for 12 hours" in client.get("/accounts/login/code/").content.decode()
    fresh_codes(lena)
    response = client.post("/accounts/login/code/", {"otp_token": current_code(lena), "trust_browser": "on"})
    assert int(response.cookies[COOKIE]["max-age"]) == 12 * 3600
    row = TrustedBrowser.objects.get(user=lena)
    assert row.expires_at - row.created_at == timedelta(hours=12)


def test_a_trader_who_becomes_a_lead_keeps_the_trust_twelve_hours_at_most(alice):
    browser = trusted_client(alice)
    TrustedBrowser.objects.update(created_at=timezone.now() - timedelta(hours=13))
    Desk.objects.create(name="Rates desk").leads.add(alice)
    assert password_only(browser, alice).status_code == 200


def test_the_admin_wants_a_fresh_code_from_a_trusted_session(lena):
    browser = trusted_client(lena)
    password_only(browser, lena)
    assert browser.get("/desk/").status_code == 200
    response = browser.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/mfa/confirm/")
    fresh_codes(lena)
    browser.post("/accounts/mfa/confirm/", {"otp_token": current_code(lena), "next": "/admin/"})
    assert browser.get("/admin/").status_code == 200
    session = browser.session
    session["mfa_at"] = time.time() - 16 * 60
    session.save()
    assert browser.get("/admin/").status_code == 302


def test_the_browser_that_ticked_the_box_is_marked_on_the_security_page(alice):
    client = Client()
    sign_in(client, alice, trust=True)
    [row] = page_texts(client.get("/accounts/security/"), "trusted-browser")
    assert "This browser" in row
    other = verify_client(Client(), alice)
    [row] = page_texts(other.get("/accounts/security/"), "trusted-browser")
    assert "This browser" not in row


def test_the_cookie_is_secure_where_session_cookies_are(alice, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = sign_in(Client(), alice, trust=True)
    assert response.cookies[COOKIE]["secure"]
    assert response.cookies[signin.BROWSER_COOKIE]["secure"]
