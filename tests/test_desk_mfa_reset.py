"""MFA reset of a locked-out trader by their desk lead (SECURITY.md 10, 11).

The lead needs a fresh second factor, gives a reason and confirms the
trader's identity out of band; the trader loses every factor and session, is
told by e-mail, and enrols again at the next sign-in.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import AuditEvent, Desk, RecoveryCodeDevice, User, UserSession
from tests.conftest import PASSWORD, make_user, verify_client

pytestmark = pytest.mark.django_db

REASON = {"reason": "Lost phone and backup card on the train; called back on the desk line", "identity_confirmed": "on"}


def reset_url(user: User) -> str:
    return f"/desk/traders/{user.pk}/mfa-reset/"


def test_reset_end_to_end_trader_enrols_again(lena_client, lena, alice, mailoutbox):
    services.backup_codes_generate(user=alice)
    alices_browser = verify_client(Client(), alice)
    assert alices_browser.get("/").status_code == 200

    form = lena_client.get(reset_url(alice))
    assert form.status_code == 200 and "identity" in form.content.decode()
    response = lena_client.post(reset_url(alice), REASON)
    assert response.status_code == 302
    assert response["Location"] == f"/desk/traders/{alice.pk}/"

    # Every factor and every session is gone, the trader is told, and it is audited.
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert not RecoveryCodeDevice.objects.filter(user=alice).exists()
    assert not UserSession.objects.filter(user=alice).exists()
    assert alices_browser.get("/").status_code == 302
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert "reset" in mailoutbox[0].subject.lower()
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.actor == lena and event.subject == alice
    assert event.details["reason"] == REASON["reason"]

    # The next sign-in goes from the password straight to a new enrolment.
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"].startswith("/accounts/mfa/setup/")
    assert client.get("/")["Location"].startswith("/accounts/mfa/setup/")
    assert client.get("/accounts/mfa/setup/").status_code == 200
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    enrolled = client.post("/accounts/mfa/setup/", {"name": "New phone", "otp_token": code})
    assert enrolled["Location"] == "/accounts/security/backup-codes/new/"
    assert TOTPDevice.objects.get(user=alice, confirmed=True).name == "New phone"
    assert client.get("/").status_code == 200


def test_reset_needs_the_leads_recent_second_factor(lena_client, alice):
    session = lena_client.session
    session["mfa_at"] = time.time() - 16 * 60
    session.save()
    response = lena_client.post(reset_url(alice), REASON)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    # After the step-up the lead comes back with a GET, which shows the form.
    assert f"next={reset_url(alice).replace('/', '%2F')}" in response["Location"]
    assert TOTPDevice.objects.filter(user=alice).exists()
    assert not AuditEvent.objects.filter(action="mfa.reset").exists()


def test_reset_needs_a_reason_and_the_identity_check(lena_client, alice):
    response = lena_client.post(reset_url(alice), {"reason": "", "identity_confirmed": "on"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    response = lena_client.post(reset_url(alice), {"reason": REASON["reason"]})
    assert response.status_code == 200
    assert TOTPDevice.objects.filter(user=alice).exists()


def test_a_lead_never_resets_another_lead_or_themselves(lena_client, lena, alice):
    desk = Desk.objects.get(name="Futures desk")
    other_lead = make_user("otto")
    Desk.objects.create(name="Rates desk").leads.add(other_lead)
    desk.members.add(other_lead, lena)
    for target in (other_lead, lena):
        assert lena_client.get(reset_url(target)).status_code == 403
        assert lena_client.post(reset_url(target), REASON).status_code == 403
        assert TOTPDevice.objects.filter(user=target).exists()
    assert not AuditEvent.objects.filter(action="mfa.reset").exists()


def test_a_trader_cannot_reset_anyone(alice_client, bob):
    assert alice_client.post(reset_url(bob), REASON).status_code == 403
    assert TOTPDevice.objects.filter(user=bob).exists()


def test_a_superuser_may_reset_a_lead_but_not_themselves(lena):
    root = make_user("root", is_staff=True, is_superuser=True)
    client = verify_client(Client(), root)
    assert client.post(reset_url(lena), REASON).status_code == 302
    assert not TOTPDevice.objects.filter(user=lena).exists()
    assert client.post(reset_url(root), REASON).status_code == 403


def test_reset_form_is_csrf_protected(lena, alice):
    client = verify_client(Client(enforce_csrf_checks=True), lena)
    assert client.post(reset_url(alice), REASON).status_code == 403
    assert TOTPDevice.objects.filter(user=alice).exists()
