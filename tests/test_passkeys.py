"""Passkeys through real requests: registration only from a verified session
with a recent code, the package's API at the code step and step-up with our
session bookkeeping, limits and audit, and the add/rename/remove pages.

Assertions are signed by a software authenticator (builders.SoftPasskey);
the real browser flow is in test_browser_passkeys."""

from __future__ import annotations

import json
import re
import time

import django_otp
import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import mail
from django.test import Client, RequestFactory
from django_otp_webauthn.models import WebAuthnCredential

from accounts import passkey_views, services, signin
from accounts.models import AuditEvent, AuthFailure, RecoveryCodeDevice, UserSession
from accounts.services import SESSION_ROW
from tests import builders as build
from tests.conftest import PASSWORD, make_user
from tests.test_desk_mfa_reset import REASON, reset_url

pytestmark = pytest.mark.django_db

API = "/accounts/passkeys"


def password_only(user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def post_json(client: Client, path: str, data: dict | None = None):
    return client.post(f"{API}{path}", data=json.dumps(data or {}), content_type="application/json")


def begin(client: Client) -> dict:
    response = post_json(client, "/authentication/begin/")
    assert response.status_code == 200, response.content
    return response.json()


def passkey_sign_in(client: Client, key: build.SoftPasskey, next_url: str = ""):
    options = begin(client)
    query = f"?next={next_url}" if next_url else ""
    return post_json(client, f"/authentication/complete/{query}", key.assertion(options["challenge"]))


# --- Registration -------------------------------------------------------------


@pytest.mark.parametrize("with_totp", [False, True], ids=["no factor yet", "totp not yet entered"])
def test_a_password_only_session_cannot_register_a_passkey(with_totp):
    carol = make_user("carol", with_totp=with_totp)
    client = password_only(carol)
    for step in ("begin", "complete"):
        response = post_json(client, f"/registration/{step}/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/code/" if with_totp else "/accounts/mfa/setup/")
    assert "otp_webauthn_register_state" not in client.session
    assert not WebAuthnCredential.objects.exists()


def test_check_can_register_refuses_an_unverified_session_behind_the_middleware():
    # The package's own check lets a user with no device through; ours must not.
    carol = make_user("carol", with_totp=False)
    assert not django_otp.user_has_device(carol)
    request = RequestFactory().post(f"{API}/registration/begin/", data="{}", content_type="application/json")
    SessionMiddleware(lambda r: None).process_request(request)
    carol.is_verified = lambda: False
    request.user = carol
    response = passkey_views.registration_begin(request)
    assert response.status_code == 403
    assert json.loads(response.content)["code"] == "user_not_verified"
    assert "otp_webauthn_register_state" not in request.session


def test_registration_needs_a_code_from_the_last_15_minutes(stale_mfa):
    response = post_json(stale_mfa, "/registration/begin/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Confirm with a fresh code first: reload this page to get one.", "code": "step_up_needed"}
    assert "otp_webauthn_register_state" not in stale_mfa.session
    assert post_json(stale_mfa, "/registration/complete/").json()["code"] == "step_up_needed"
    # The add page itself asks for the code.
    response = stale_mfa.get("/accounts/security/passkeys/add/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/confirm/")


def test_a_recently_verified_session_gets_registration_options(alice_client):
    response = post_json(alice_client, "/registration/begin/")
    assert response.status_code == 200
    options = response.json()
    assert options["rp"] == {"name": "Gatecheck", "id": "localhost"}
    assert options["user"]["name"] == "alice"
    assert alice_client.session["otp_webauthn_register_state"]["challenge"] == options["challenge"]
    page = alice_client.get("/accounts/security/passkeys/add/")
    assert page.status_code == 200
    assert 'id="passkey-register-button"' in page.content.decode()


# --- Authentication at the code step ----------------------------------------


def test_sign_in_with_password_then_passkey(alice):
    key = build.SoftPasskey(alice)
    client = password_only(alice)
    row = UserSession.objects.get(user=alice)
    key_before = client.session.session_key
    options = begin(client)
    assert [c["id"] for c in options["allowCredentials"]] == [build._b64url(key.credential_id)]
    response = post_json(client, "/authentication/complete/?next=/devices/", key.assertion(options["challenge"]))
    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == "/devices/"
    assert client.get("/devices/").status_code == 200

    session = client.session
    assert session["otp_device_id"] == key.device.persistent_id
    assert time.time() - session["mfa_at"] < 5
    assert session.session_key != key_before
    row.refresh_from_db()
    assert (row.session_key, session[SESSION_ROW]) == (session.session_key, row.pk)
    event = AuditEvent.objects.filter(action="login.success").get()
    assert (event.subject, event.object_label) == (alice, "Work laptop")
    key.device.refresh_from_db()
    assert key.device.last_used_at is not None and key.device.sign_count == 1
    # A success takes back the attempt it counted.
    assert not AuthFailure.objects.exists()


def test_an_unsafe_next_falls_back_to_the_home_page(alice):
    key = build.SoftPasskey(alice)
    response = passkey_sign_in(password_only(alice), key, next_url="https://evil.example/")
    assert response.json()["redirect_url"] == "/"


def test_a_failed_passkey_counts_as_a_wrong_code_and_leaves_the_session_unverified(alice):
    key = build.SoftPasskey(alice)
    client = password_only(alice)
    options = begin(client)
    response = post_json(client, "/authentication/complete/", key.assertion(options["challenge"], origin="https://evil.example"))
    assert response.status_code == 422
    assert AuditEvent.objects.filter(action="mfa.failure", subject=alice).count() == 1
    # The challenge was spent: replaying a good answer to it is refused.
    response = post_json(client, "/authentication/complete/", key.assertion(options["challenge"]))
    assert response.status_code == 400 and response.json()["code"] == "invalid_state"
    assert client.get("/")["Location"].startswith("/accounts/login/code/")


def test_passkey_failures_lock_the_code_step_like_wrong_codes(alice, settings):
    settings.GATECHECK_USER_IP_FAILURE_LIMIT = 2
    key = build.SoftPasskey(alice)
    client = password_only(alice)
    for _ in range(2):
        options = begin(client)
        assert post_json(client, "/authentication/complete/", key.assertion(options["challenge"], origin="https://x.example")).status_code == 422
    options = begin(client)
    response = post_json(client, "/authentication/complete/", key.assertion(options["challenge"]))
    assert response.status_code == 429
    assert re.match(r"Too many failed attempts\. Try again after \d\d:\d\d UTC\.", response.json()["detail"])
    assert AuditEvent.objects.filter(action="mfa.lockout", subject=alice).exists()
    assert "otp_device_id" not in client.session


def test_another_users_passkey_does_not_verify_the_session(alice, bob):
    bobs = build.SoftPasskey(bob)
    client = password_only(alice)
    response = passkey_sign_in(client, bobs)
    assert response.status_code == 403 and response.json()["code"] == "credential_user_mismatch"
    assert "otp_device_id" not in client.session


def test_no_passkey_ceremony_without_the_password_step(client, alice):
    build.SoftPasskey(alice)
    response = post_json(client, "/authentication/begin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_api_checks_csrf(alice):
    key = build.SoftPasskey(alice)
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert post_json(client, "/authentication/begin/").status_code == 403
    assert post_json(client, "/authentication/complete/", key.assertion("x")).status_code == 403
    assert "otp_device_id" not in client.session


def test_the_code_step_offers_a_passkey_only_to_users_who_have_one(alice, bob):
    build.SoftPasskey(alice)
    with_key = password_only(alice).get("/accounts/login/code/").content.decode()
    without = password_only(bob).get("/accounts/login/code/").content.decode()
    assert 'id="passkey-verification-button"' in with_key
    assert 'id="passkey-verification-button"' not in without
    # Strict CSP: every script is a file from this site, or inert JSON.
    scripts = re.findall(r"<script([^>]*)>", with_key)
    assert scripts and all('src="/' in attrs or 'type="application/json"' in attrs for attrs in scripts)
    # gettext must exist before the button's handler can run: the catalog is
    # deferred (not async), ahead of the module.
    catalog, module = (i for i, attrs in enumerate(scripts) if "jsi18n" in attrs or "otp_webauthn_auth.js" in attrs)
    assert catalog < module and " defer" in scripts[catalog] and "async" not in scripts[catalog]


def test_the_admin_takes_a_passkey_verified_session():
    root = make_user("root", is_staff=True, is_superuser=True)
    key = build.SoftPasskey(root)
    client = password_only(root)
    assert client.get("/admin/").status_code == 302
    assert passkey_sign_in(client, key).status_code == 200
    assert client.get("/admin/").status_code == 200
    assert build.texts(client.get("/admin/django_otp_webauthn/webauthncredential/").content, "field-name") == ["Work laptop"]


def test_a_passkey_spares_a_backup_code_session_the_forced_enrolment():
    carol = make_user("carol", with_totp=False)
    services.backup_codes_generate(user=carol)
    build.SoftPasskey(carol)
    client = Client()
    client.force_login(carol)
    session = client.session
    now = time.time()
    device = RecoveryCodeDevice.objects.get(user=carol)
    session.update({"otp_device_id": device.persistent_id, "auth_at": now, "seen_at": now, "mfa_at": now})
    session[SESSION_ROW] = UserSession.objects.create(user=carol, session_key=session.session_key).pk
    session.save()
    assert client.get("/accounts/security/").status_code == 200
    WebAuthnCredential.objects.filter(user=carol).delete()
    assert client.get("/accounts/security/")["Location"].startswith("/accounts/mfa/setup/")


# --- Step-up ----------------------------------------------------------------


def test_step_up_with_a_passkey_renews_the_code_time_only(stale_mfa, alice):
    key = build.SoftPasskey(alice)
    remove = f"/accounts/security/passkeys/{key.device.pk}/remove/"
    assert stale_mfa.get(remove)["Location"].startswith("/accounts/mfa/confirm/")
    device_before = stale_mfa.session["otp_device_id"]
    response = passkey_sign_in(stale_mfa, key, next_url=remove)
    assert response.json()["redirect_url"] == remove
    assert stale_mfa.get(remove).status_code == 200
    assert stale_mfa.session["otp_device_id"] == device_before
    assert AuditEvent.objects.filter(action="mfa.step_up", object_label="Work laptop").exists()
    assert 'id="passkey-verification-button"' in stale_mfa.get("/accounts/mfa/confirm/?next=/").content.decode()


# --- The security page --------------------------------------------------------


def test_the_security_page_lists_only_your_own_passkeys(alice_client, alice, bob):
    build.SoftPasskey(alice, "Work laptop")
    build.SoftPasskey(bob, "Bob's key")
    names = build.page_texts(alice_client.get("/accounts/security/"), "row")
    assert any(name.startswith("Work laptop") for name in names)
    assert not any("Bob's key" in name for name in names)


def test_rename_a_passkey(alice_client, alice):
    key = build.SoftPasskey(alice, "Passkey")
    url = f"/accounts/security/passkeys/{key.device.pk}/rename/"
    response = alice_client.post(url, {"name": ""})
    assert build.page_texts(response, "errorlist") == ["This field is required."]
    response = alice_client.post(url, {"name": "Blue YubiKey"})
    assert response["Location"] == "/accounts/security/"
    key.device.refresh_from_db()
    assert key.device.name == "Blue YubiKey"
    event = AuditEvent.objects.get(action="mfa.passkey_renamed")
    assert event.details == {"name": ["Passkey", "Blue YubiKey"]}


def test_remove_a_passkey_confirms_audits_and_emails(alice_client, alice):
    key = build.SoftPasskey(alice, "Blue key")
    url = f"/accounts/security/passkeys/{key.device.pk}/remove/"
    assert alice_client.get(url).status_code == 200
    assert WebAuthnCredential.objects.filter(pk=key.device.pk).exists()
    assert alice_client.post(url)["Location"] == "/accounts/security/"
    assert not WebAuthnCredential.objects.filter(pk=key.device.pk).exists()
    assert AuditEvent.objects.filter(action="mfa.passkey_removed", object_label="Blue key").exists()
    assert [m.subject for m in mail.outbox] == ["[Gatecheck] A passkey was removed"]
    assert "'Blue key'" in mail.outbox[0].body


@pytest.mark.parametrize("action", ["rename", "remove"])
def test_another_users_passkey_is_a_404(alice_client, bob, action):
    bobs = build.SoftPasskey(bob)
    assert alice_client.get(f"/accounts/security/passkeys/{bobs.device.pk}/{action}/").status_code == 404
    assert alice_client.post(f"/accounts/security/passkeys/{bobs.device.pk}/{action}/", {"name": "x"}).status_code == 404
    assert WebAuthnCredential.objects.get(pk=bobs.device.pk).name == "Work laptop"


def test_a_desk_leads_mfa_reset_removes_passkeys_too(lena_client, alice):
    build.SoftPasskey(alice)
    assert lena_client.post(reset_url(alice), REASON).status_code == 302
    assert not WebAuthnCredential.objects.filter(user=alice).exists()


def test_a_passkey_sign_in_from_a_new_browser_is_e_mailed_and_a_known_one_is_not(alice, mailoutbox):
    key = build.SoftPasskey(alice)
    client = password_only(alice)
    assert passkey_sign_in(client, key).status_code == 200
    assert [m.subject for m in mailoutbox if "new browser" in m.subject] == ["[Gatecheck] Sign-in from a new browser"]
    cookie = client.cookies[signin.BROWSER_COOKIE].value

    again = Client()
    again.cookies[signin.BROWSER_COOKIE] = cookie
    again.post("/accounts/login/", {"username": alice.username, "password": PASSWORD})
    assert passkey_sign_in(again, key).status_code == 200
    assert len([m for m in mailoutbox if "new browser" in m.subject]) == 1
