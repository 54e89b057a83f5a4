"""Passkeys in a real Chromium with its virtual authenticator (CDP WebAuthn
domain): register one from a verified session, then use it at the code step,
for the admin and at step-up. WebAuthn refuses 127.0.0.1, so the live server
is reached as localhost, the relying party of the test settings."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, UserSession
from tests.conftest import PASSWORD, make_user, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webauthn_site(live_server, settings):
    assert live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    return live_server


def virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})


def register_passkey(page, site, name: str) -> WebAuthnCredential:
    seen = []
    page.on("console", lambda message: seen.append(f"console {message.type}: {message.text}"))
    page.on("response", lambda response: seen.append(f"{response.status} {response.url}"))
    page.goto(f"{site.url}/accounts/security/")
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_role("button", name="Create a passkey").click()
    named = page.get_by_role("heading", name="Passkey added: give it a name")
    status = page.locator("#passkey-register-status-message:not([data-status-enum=success])").filter(has_text=re.compile(r"\S"))
    try:
        named.or_(status).wait_for()
    except Exception as error:
        raise AssertionError(seen) from error
    assert named.is_visible(), (status.inner_text(), seen)
    page.get_by_label("New name").fill(name)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{site.url}/accounts/security/")
    assert page.locator(".row strong", has_text=name).is_visible()
    return WebAuthnCredential.objects.get(name=name)


def password_step(page, site, username: str, next_path: str) -> None:
    page.goto(f"{site.url}{next_path}")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))


def test_register_a_passkey_then_sign_in_with_password_and_passkey(webauthn_site, page, allow_async_unsafe):
    alice = make_user("alice", is_staff=True, is_superuser=True)
    virtual_authenticator(page)
    sign_in_browser(page, webauthn_site, alice, "/accounts/security/")
    passkey = register_passkey(page, webauthn_site, "Work laptop")
    assert passkey.user == alice
    assert AuditEvent.objects.filter(action="mfa.passkey_added", subject=alice).exists()
    assert AuditEvent.objects.filter(action="mfa.passkey_renamed", object_label="Work laptop").exists()
    assert [m.subject for m in mail.outbox if "passkey" in m.subject] == ["[Gatecheck] A new passkey was added"]
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/accounts/login/"))

    # Password, then the passkey instead of a code.
    password_step(page, webauthn_site, "alice", "/accounts/security/")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(f"{webauthn_site.url}/accounts/security/")
    assert page.get_by_role("heading", name="Account security").is_visible()
    event = AuditEvent.objects.filter(action="login.success", subject=alice).latest("at")
    assert event.object_label == "Work laptop"
    # The session is tracked under its new key, as after a typed code.
    row = UserSession.objects.get(user=alice)
    session = SessionStore(session_key=row.session_key).load()
    assert session["otp_device_id"] == passkey.persistent_id
    assert time.time() - session["mfa_at"] < 60

    # The admin takes the passkey-verified session too.
    page.goto(f"{webauthn_site.url}/admin/")
    assert page.get_by_role("heading", name="Site administration").is_visible()


def test_step_up_with_a_passkey_then_remove_it(webauthn_site, page, allow_async_unsafe):
    alice = make_user("alice")
    virtual_authenticator(page)
    sign_in_browser(page, webauthn_site, alice, "/accounts/security/")
    passkey = register_passkey(page, webauthn_site, "Blue key")

    # The code is older than 15 minutes: removing asks for a fresh one.
    row = UserSession.objects.get(user=alice)
    store = SessionStore(session_key=row.session_key)
    store.load()
    store["mfa_at"] = time.time() - 16 * 60
    store.save()
    page.goto(f"{webauthn_site.url}/accounts/security/")
    page.locator(".row", has_text="Blue key").get_by_role("link", name="Remove").click()
    page.wait_for_url(re.compile(r"/accounts/mfa/confirm/"))
    page.get_by_role("button", name="Use a passkey").click()
    page.get_by_role("heading", name="Remove passkey 'Blue key'").wait_for()
    assert AuditEvent.objects.filter(action="mfa.step_up", object_label="Blue key").exists()

    page.get_by_role("button", name="Remove passkey").click()
    page.get_by_text("Passkey 'Blue key' removed.").wait_for()
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    assert AuditEvent.objects.filter(action="mfa.passkey_removed", object_label="Blue key").exists()
    assert "[Gatecheck] A passkey was removed" in [m.subject for m in mail.outbox]
