"""E-mail addresses are confirmed by a link (at sign-up and after a change);
security notices, alerts, reminders and reset links go only to a confirmed
address; an unconfirmed account is told so on its dashboard (issue 14)."""

from __future__ import annotations

import re
import time

import pytest
from django.core import signing
from django.test import Client

from accounts import signin
from accounts.models import AuditEvent, Desk, User
from devices.services import heartbeat_sweep
from tests import builders as build
from tests.builders import page_texts, unverified_user
from tests.conftest import PASSWORD, current_code, verify_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 7781"


def verify_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/email/verify/[^\s]+/)", message.body).group(1)


def confirmations(mailoutbox, to: str) -> list:
    return [m for m in mailoutbox if "Confirm your e-mail" in m.subject and m.to == [to]]


@pytest.fixture
def una(db) -> User:
    return unverified_user("una")


def test_sign_up_mails_a_link_that_confirms_the_address(client, mailoutbox):
    client.post("/accounts/signup/", {"username": "carol", "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD})
    carol = User.objects.get(username="carol")
    assert not carol.email_verified
    [message] = confirmations(mailoutbox, "carol@example.com")
    response = Client().get(verify_path(message))
    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.email_verified
    assert AuditEvent.objects.filter(action="email.verified", subject=carol).exists()


def test_the_dashboard_tells_an_unconfirmed_account(una, alice):
    page = verify_client(Client(), una).get("/")
    assert page.status_code == 200 and page_texts(page, "email-unverified")
    assert page_texts(verify_client(Client(), alice).get("/"), "email-unverified") == []


def test_no_security_notice_goes_to_an_unconfirmed_address(una, mailoutbox):
    client = verify_client(Client(), una)
    client.post("/accounts/password/change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert AuditEvent.objects.filter(action="password.changed", subject=una).exists()
    assert mailoutbox == []


def test_no_new_browser_alert_goes_to_an_unconfirmed_address(una, mailoutbox):
    client = Client()
    client.post("/accounts/login/", {"username": "una", "password": PASSWORD})
    assert client.post("/accounts/login/code/", {"otp_token": current_code(una)}).status_code == 302
    assert AuditEvent.objects.filter(action="browser.new_alert", actor=una).exists()
    assert mailoutbox == []


def test_no_reset_link_goes_to_an_unconfirmed_address(una, alice, mailoutbox):
    Client().post("/accounts/password/reset/", {"email": "una@example.com"})
    assert mailoutbox == []
    Client().post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]


def test_a_lead_cannot_remind_an_unconfirmed_address(lena_client, una, mailoutbox):
    Desk.objects.get(name="Futures desk").members.add(una)
    response = lena_client.post(f"/desk/traders/{una.pk}/remind/", follow=True)
    assert "no verified e-mail address" in response.content.decode()
    assert mailoutbox == []


def test_heartbeat_alerts_skip_unconfirmed_addresses(una, lena, mailoutbox):
    desk = Desk.objects.get(name="Futures desk")
    desk.members.add(una)
    desk.leads.add(unverified_user("ulla"))
    build.heartbeat(build.automation(una), minutes_ago=60)
    assert heartbeat_sweep() == 1
    assert [m.to for m in mailoutbox] == [["lena@example.com"]]


def test_changing_the_address_needs_a_fresh_code_and_a_new_confirmation(stale_mfa, alice, mailoutbox):
    response = stale_mfa.post("/accounts/email/change/", {"email": "alice.new@example.com"})
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    session = stale_mfa.session
    session["mfa_at"] = time.time()
    session.save()
    assert stale_mfa.post("/accounts/email/change/", {"email": "alice.new@example.com"}).status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice.new@example.com" and not alice.email_verified
    # The old, confirmed address is told; the new one gets the link.
    assert [m for m in mailoutbox if m.to == ["alice@example.com"] and "changed" in m.subject]
    [message] = confirmations(mailoutbox, "alice.new@example.com")
    assert AuditEvent.objects.filter(action="email.changed", subject=alice).exists()
    # Until confirmed, no notice goes to the new address.
    before = len(mailoutbox)
    stale_mfa.post("/accounts/security/backup-codes/")
    assert len(mailoutbox) == before
    assert Client().get(verify_path(message)).status_code == 302
    alice.refresh_from_db()
    assert alice.email_verified


def test_the_same_address_is_refused_next_to_the_field(alice_client, alice):
    response = alice_client.post("/accounts/email/change/", {"email": "alice@example.com"})
    assert response.status_code == 200 and "already your address" in " ".join(page_texts(response, "errorlist"))


def test_an_old_link_does_not_confirm_a_newer_address(una, mailoutbox):
    stale = signing.dumps({"u": una.pk, "e": "una@example.com"}, salt=signin.EMAIL_SALT)
    una.email = "una.new@example.com"
    una.save()
    assert Client().get(f"/accounts/email/verify/{stale}/").status_code == 400
    una.refresh_from_db()
    assert not una.email_verified


def test_a_tampered_or_expired_link_is_refused(una, monkeypatch):
    token = signing.dumps({"u": una.pk, "e": una.email}, salt=signin.EMAIL_SALT)
    assert Client().get(f"/accounts/email/verify/{token[:-2]}xx/").status_code == 400
    forged = signing.dumps({"u": una.pk, "e": una.email}, salt="another salt")
    assert Client().get(f"/accounts/email/verify/{forged}/").status_code == 400
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + 4 * 24 * 3600)
    assert Client().get(f"/accounts/email/verify/{token}/").status_code == 400
    monkeypatch.undo()
    una.refresh_from_db()
    assert not una.email_verified
    assert Client().get(f"/accounts/email/verify/{token}/").status_code == 302


def test_asking_for_the_link_again_is_limited(una, mailoutbox, settings):
    settings.GATECHECK_VERIFY_MAIL_LIMIT = 2
    client = verify_client(Client(), una)
    for _ in range(3):
        client.post("/accounts/email/verify/send/")
    assert len(confirmations(mailoutbox, "una@example.com")) == 2


def test_after_an_upgrade_one_command_mails_every_unconfirmed_account_a_link(una, alice, settings, mailoutbox):
    from django.core.management import CommandError, call_command

    settings.GATECHECK_SITE_URL = ""
    with pytest.raises(CommandError, match="GATECHECK_SITE_URL"):
        call_command("email_verification_send")
    settings.GATECHECK_SITE_URL = "https://gatecheck.example.com"
    call_command("email_verification_send")
    [message] = confirmations(mailoutbox, "una@example.com")
    assert "https://gatecheck.example.com/accounts/email/verify/" in message.body
    assert not confirmations(mailoutbox, "alice@example.com")  # already confirmed
    client = Client()
    assert client.get(verify_path(message)).status_code in (200, 302)
    una.refresh_from_db()
    assert una.email_verified
