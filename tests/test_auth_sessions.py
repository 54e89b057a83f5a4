"""Sessions, step-up, the security page, password change and reset."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEvent, RecoveryCodeDevice, UserSession
from tests.conftest import PASSWORD, current_code, verify_client
from tests.test_auth_login import password_step, sign_in

pytestmark = pytest.mark.django_db


def set_session(client: Client, **values) -> None:
    session = client.session
    session.update(values)
    session.save()


def test_session_key_changes_after_password_and_after_code(client, alice):
    client.get("/accounts/login/")
    client.cookies["sessionid"] = "x" * 32
    password_step(client)
    after_password = client.cookies["sessionid"].value
    assert after_password != "x" * 32
    client.post("/accounts/login/code/", {"otp_token": current_code(alice)})
    after_code = client.cookies["sessionid"].value
    assert after_code != after_password
    assert not Session.objects.filter(session_key=after_password).exists()
    assert UserSession.objects.filter(user=alice, session_key=after_code).exists()


def test_pending_login_never_holds_the_password_and_expires_after_ten_minutes(client, alice):
    password_step(client)
    stored = Session.objects.get(session_key=client.cookies["sessionid"].value).get_decoded()
    assert PASSWORD not in repr(stored)
    set_session(client, auth_at=time.time() - 11 * 60)
    response = client.post("/accounts/login/code/", {"otp_token": current_code(alice)})
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"].startswith("/accounts/login/?")


def test_idle_timeout_is_enforced_on_the_server(alice_client):
    set_session(alice_client, seen_at=time.time() - 61 * 60)
    response = alice_client.get("/")
    assert response["Location"].startswith("/accounts/login/")
    assert alice_client.get("/")["Location"].startswith("/accounts/login/")


def test_absolute_lifetime_is_enforced_on_the_server(alice_client):
    set_session(alice_client, auth_at=time.time() - 25 * 3600, seen_at=time.time())
    assert alice_client.get("/")["Location"].startswith("/accounts/login/")


def test_logout_is_post_only_and_deletes_the_server_session(alice_client):
    key = alice_client.cookies["sessionid"].value
    assert alice_client.get("/accounts/logout/").status_code == 405
    response = alice_client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"
    assert not Session.objects.filter(session_key=key).exists()
    assert AuditEvent.objects.filter(action="logout").exists()


def test_stale_second_factor_asks_for_a_fresh_code_then_returns(stale_mfa, alice):
    response = stale_mfa.get("/accounts/security/backup-codes/")
    assert response["Location"] == "/accounts/mfa/confirm/?next=%2Faccounts%2Fsecurity%2Fbackup-codes%2F"
    response = stale_mfa.post("/accounts/mfa/confirm/?next=/accounts/security/backup-codes/", {"otp_token": current_code(alice)})
    assert response["Location"] == "/accounts/security/backup-codes/"
    assert stale_mfa.get("/accounts/security/backup-codes/").status_code == 200


def test_step_up_with_a_backup_code_is_audited_as_its_use(stale_mfa, alice):
    from accounts import services

    code = services.backup_codes_generate(user=alice)[0]
    response = stale_mfa.post("/accounts/mfa/confirm/?next=/accounts/security/", {"otp_token": code})
    assert response["Location"] == "/accounts/security/"
    assert AuditEvent.objects.filter(action="mfa.backup_code_used", subject=alice).exists()


def test_password_change_and_reset_void_the_calendar_feed(alice_client, alice):
    from checklist.models import CalendarFeed

    CalendarFeed.objects.create(owner=alice, token="t" * 64)
    new = "an even better passphrase 78"
    alice_client.post("/accounts/password/change/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert not CalendarFeed.objects.filter(owner=alice).exists()


def test_stale_second_factor_blocks_a_sensitive_post(stale_mfa, alice):
    response = stale_mfa.post("/accounts/security/backup-codes/")
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    assert not RecoveryCodeDevice.objects.filter(user=alice).exists()


def test_regenerating_backup_codes_kills_old_ones_notifies_and_audits(alice_client, alice):
    first = alice_client.post("/accounts/security/backup-codes/", follow=True).content.decode()
    old_codes = re.findall(r"<li><code>([A-Z0-9-]+)</code></li>", first)
    assert len(old_codes) == 10
    second = alice_client.post("/accounts/security/backup-codes/", follow=True).content.decode()
    new_codes = re.findall(r"<li><code>([A-Z0-9-]+)</code></li>", second)
    assert set(old_codes).isdisjoint(new_codes)
    response = sign_in(Client(), alice, old_codes[0])
    assert response.status_code == 200
    assert any("backup codes" in m.subject.lower() for m in mail.outbox)
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated", subject=alice).count() == 2


def test_security_page_lists_factors_sessions_and_activity(alice_client, alice):
    Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    html = alice_client.get("/accounts/security/").content.decode()
    assert "Phone" in html
    assert "This browser" in html
    assert "Wrong password" in html


def test_adding_an_authenticator_needs_recent_mfa_and_a_valid_code(stale_mfa, alice):
    response = stale_mfa.get("/accounts/security/authenticators/add/")
    assert response["Location"].startswith("/accounts/mfa/confirm/")
    set_session(stale_mfa, mfa_at=time.time())
    page = stale_mfa.get("/accounts/security/authenticators/add/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    pending = TOTPDevice.objects.get(user=alice, confirmed=False)
    from django_otp.oath import TOTP

    code = f"{TOTP(pending.bin_key, pending.step, pending.t0, pending.digits).token():06d}"
    response = stale_mfa.post("/accounts/security/authenticators/add/", {"name": "YubiKey", "otp_token": code})
    assert response["Location"] == "/accounts/security/"
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).count() == 2
    assert any("authenticator was added" in m.subject for m in mail.outbox)


def test_removing_a_device_unverifies_the_sessions_it_verified(alice):
    first = verify_client(Client(), alice)
    other_device = TOTPDevice.objects.create(user=alice, name="Tablet", confirmed=True)
    second = Client()
    second.force_login(alice)
    set_session(second, otp_device_id=other_device.persistent_id, auth_at=time.time(), seen_at=time.time(), mfa_at=time.time())
    UserSession.objects.create(user=alice, session_key=second.session.session_key)
    phone = TOTPDevice.objects.get(user=alice, name="Phone")
    assert second.get(f"/accounts/security/authenticators/{phone.pk}/remove/").status_code == 200
    response = second.post(f"/accounts/security/authenticators/{phone.pk}/remove/")
    assert response["Location"] == "/accounts/security/"
    assert not TOTPDevice.objects.filter(pk=phone.pk).exists()
    assert first.get("/")["Location"].startswith("/accounts/login/code/")
    assert second.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="mfa.authenticator_removed", object_label="Phone").exists()
    assert any("authenticator was removed" in m.subject for m in mail.outbox)


def test_the_only_authenticator_cannot_be_removed(alice_client, alice):
    phone = TOTPDevice.objects.get(user=alice)
    response = alice_client.post(f"/accounts/security/authenticators/{phone.pk}/remove/")
    assert response["Location"] == "/accounts/security/"
    assert TOTPDevice.objects.filter(pk=phone.pk).exists()


def test_rename_authenticator(alice_client, alice):
    phone = TOTPDevice.objects.get(user=alice)
    alice_client.post(f"/accounts/security/authenticators/{phone.pk}/rename/", {"name": "Work phone"})
    phone.refresh_from_db()
    assert phone.name == "Work phone"


def test_users_can_end_another_session_or_all_others(alice):
    mine = verify_client(Client(), alice)
    laptop = verify_client(Client(), alice)
    tablet = verify_client(Client(), alice)
    laptop_row = UserSession.objects.get(session_key=laptop.cookies["sessionid"].value)
    mine.post(f"/accounts/security/sessions/{laptop_row.pk}/end/")
    assert laptop.get("/")["Location"].startswith("/accounts/login/")
    assert tablet.get("/").status_code == 200
    mine.post("/accounts/security/sessions/end-others/")
    assert tablet.get("/")["Location"].startswith("/accounts/login/")
    assert mine.get("/").status_code == 200
    assert UserSession.objects.filter(user=alice).count() == 1


def test_password_change_needs_recent_mfa_and_signs_out_other_sessions(stale_mfa, alice):
    other = verify_client(Client(), alice)
    assert stale_mfa.get("/accounts/password/change/")["Location"].startswith("/accounts/mfa/confirm/")
    set_session(stale_mfa, mfa_at=time.time())
    new = "an even better passphrase 77"
    response = stale_mfa.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response["Location"] == "/accounts/security/"
    assert stale_mfa.get("/").status_code == 200
    assert other.get("/")["Location"].startswith("/accounts/login/")
    assert AuditEvent.objects.filter(action="password.changed", subject=alice).exists()


def test_password_reset_never_bypasses_mfa(client, alice):
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    new = "a fresh passphrase for alice 9"
    response = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert response["Location"] == "/accounts/password/reset/done/"
    assert client.get("/")["Location"].startswith("/accounts/login/")
    response = password_step(client, password=new)
    assert response["Location"].startswith("/accounts/login/code/")
    assert client.get("/")["Location"].startswith("/accounts/login/code/")
    assert AuditEvent.objects.filter(action="password.reset", subject=alice).exists()


def test_session_cookie_flags_in_tests_are_http_only_and_lax(client, alice):
    password_step(client)
    cookie = client.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
