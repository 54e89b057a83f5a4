"""MFA reset of a locked-out trader by their desk lead (SECURITY.md 10, 11).

The lead needs a fresh second factor, gives a reason and confirms the
trader's identity out of band; the trader loses every factor and session, is
told by e-mail, and enrols again at the next sign-in.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import AuditEvent, AuthFailure, Desk, EnrolmentCode, RecoveryCodeDevice, User, UserSession
from tests.builders import body, page_texts
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
    assert response["Location"] == f"/desk/traders/{alice.pk}/mfa-reset/code/"
    code = page_texts(lena_client.get(response["Location"]), "enrolment-code")[0]

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

    # The next sign-in goes from the password to the enrolment code, then to a new enrolment.
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"].startswith("/accounts/mfa/setup/")
    assert client.get("/")["Location"].startswith("/accounts/mfa/setup/")
    assert client.post("/accounts/mfa/setup/", {"code": code.lower()}).status_code == 302
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


# --- The enrolment code (issue 14) ---------------------------------------------


def _reset(lena_client, alice) -> str:
    location = lena_client.post(reset_url(alice), REASON)["Location"]
    return page_texts(lena_client.get(location), "enrolment-code")[0]


def _password_step(username: str = "alice") -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def test_the_code_is_shown_once_and_stored_hashed(lena_client, alice):
    code = _reset(lena_client, alice)
    assert len(code.replace("-", "")) == 16
    row = EnrolmentCode.objects.get(user=alice)
    assert code not in row.code_hash and code.replace("-", "") not in row.code_hash
    assert row.expires_at - row.created_at == timedelta(hours=24)
    again = lena_client.get(f"/desk/traders/{alice.pk}/mfa-reset/code/")
    assert again.status_code == 200 and "no-store" in again["Cache-Control"]
    assert page_texts(again, "enrolment-code") == []
    assert not AuditEvent.objects.filter(details__icontains=code.replace("-", "")).exists()


def test_the_password_alone_no_longer_enrols(lena_client, alice):
    _reset(lena_client, alice)
    client = _password_step()
    page = client.get("/accounts/mfa/setup/")
    assert page.status_code == 200 and page_texts(page, "secret") == []
    # An enrolment POST without the code is read as a wrong code, and no device appears.
    response = client.post("/accounts/mfa/setup/", {"name": "Attacker", "otp_token": "123456"})
    assert response.status_code == 200 and "errorlist" in body(response)
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert client.get("/")["Location"].startswith("/accounts/mfa/setup/")


def test_a_wrong_code_is_refused_counted_and_audited(lena_client, alice):
    _reset(lena_client, alice)
    client = _password_step()
    response = client.post("/accounts/mfa/setup/", {"code": "AAAA-BBBB-CCCC-DDDD"})
    assert response.status_code == 200
    assert "not right" in " ".join(page_texts(response, "errorlist"))
    assert AuditEvent.objects.filter(action="mfa.enrolment_code_failure", subject=alice).exists()
    assert AuthFailure.objects.filter(bucket__startswith="enrol:user:").count() == 1


def test_the_code_is_limited_like_a_sign_in_code(lena_client, alice, settings):
    code = _reset(lena_client, alice)
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 2
    client = _password_step()
    for _ in range(2):
        client.post("/accounts/mfa/setup/", {"code": "AAAA-BBBB-CCCC-DDDD"})
    response = client.post("/accounts/mfa/setup/", {"code": code})
    assert "Too many failed attempts" in " ".join(page_texts(response, "errorlist"))
    assert page_texts(client.get("/accounts/mfa/setup/"), "secret") == []


def test_an_expired_code_is_refused_and_the_lead_may_reset_again(lena_client, alice):
    code = _reset(lena_client, alice)
    EnrolmentCode.objects.filter(user=alice).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = _password_step()
    response = client.post("/accounts/mfa/setup/", {"code": code})
    assert "expired" in " ".join(page_texts(response, "errorlist"))
    assert page_texts(client.get("/accounts/mfa/setup/"), "secret") == []
    # A second reset replaces the expired code.
    new_code = _reset(lena_client, alice)
    assert new_code != code and EnrolmentCode.objects.filter(user=alice).count() == 1


def test_no_second_reset_while_a_code_is_pending(lena_client, alice):
    _reset(lena_client, alice)
    detail = lena_client.get(f"/desk/traders/{alice.pk}/")
    assert page_texts(detail, "enrolment-pending")
    assert f'href="{reset_url(alice)}"' not in body(detail)
    assert lena_client.get(reset_url(alice)).status_code == 403
    assert lena_client.post(reset_url(alice), REASON).status_code == 403
    assert AuditEvent.objects.filter(action="mfa.reset").count() == 1


def test_the_code_works_once_and_only_in_the_session_that_gave_it(lena_client, alice):
    code = _reset(lena_client, alice)
    first = _password_step()
    first.post("/accounts/mfa/setup/", {"code": code})
    # Another pending sign-in does not inherit the first one's code.
    other = _password_step()
    assert page_texts(other.get("/accounts/mfa/setup/"), "secret") == []
    assert first.get("/accounts/mfa/setup/").status_code == 200
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    token = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert first.post("/accounts/mfa/setup/", {"name": "New phone", "otp_token": token}).status_code == 302
    assert EnrolmentCode.objects.get(user=alice).used_at is not None
    assert AuditEvent.objects.filter(action="mfa.enrolment_code_accepted", subject=alice).exists()
    # Spent: the lead may reset again, and a new sign-in uses the new authenticator.
    assert lena_client.get(reset_url(alice)).status_code == 200
