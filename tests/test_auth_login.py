"""Signing in: password step, code step, backup codes, limits, redirects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import AuditEvent, AuthFailure, RecoveryCode, RecoveryCodeDevice, User
from tests import builders as build
from tests.conftest import PASSWORD, current_code, make_user

pytestmark = pytest.mark.django_db


def password_step(client: Client, username: str = "alice", password: str = PASSWORD, next_url: str = ""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data)


def sign_in(client: Client, user: User, code: str | None = None, next_url: str = ""):
    password_step(client, user.username, next_url=next_url)
    return client.post("/accounts/login/code/", {"otp_token": code or current_code(user), "next": next_url})


def test_anonymous_user_is_sent_to_login_with_next(client):
    response = client.get("/accounts/security/?tab=sessions")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Faccounts%2Fsecurity%2F%3Ftab%3Dsessions"


def test_health_check_needs_no_login(client):
    from accounts.background import mark_set

    mark_set("sweep")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "database_write": "ok", "sweep": "ok", "queue": "ok"}


def test_health_check_reports_an_unreachable_database(client, monkeypatch):
    from django.db import DatabaseError, connection

    def broken_cursor(*args, **kwargs):
        raise DatabaseError("down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_signed_in_user_visiting_login_goes_on(alice_client):
    assert alice_client.get("/accounts/login/?next=/accounts/security/")["Location"] == "/accounts/security/"


def test_login_with_totp_reaches_dashboard(client, alice):
    response = password_step(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/code/")
    response = client.post("/accounts/login/code/", {"otp_token": current_code(alice), "next": "/"})
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="login.success", subject=alice).exists()


def test_username_is_case_insensitive(client, alice):
    response = password_step(client, username="ALICE")
    assert response["Location"].startswith("/accounts/login/code/")


def test_wrong_password_is_refused_and_audited(client, alice):
    response = password_step(client, password="wrong password")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="login.failure")
    assert event.subject == alice and event.outcome == "failure"


def test_unverified_session_cannot_skip_the_code_step(client, alice):
    password_step(client)
    for url in ("/", "/accounts/security/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/code/"), url
    response = client.post("/accounts/security/sessions/end-others/")
    assert response["Location"].startswith("/accounts/login/code/")


def test_unverified_session_with_a_device_cannot_enrol_a_new_one(client, alice):
    password_step(client)
    response = client.get("/accounts/mfa/setup/")
    assert response["Location"].startswith("/accounts/login/code/")
    assert TOTPDevice.objects.filter(user=alice).count() == 1


def test_wrong_code_is_refused_with_message(client, alice):
    password_step(client)
    response = client.post("/accounts/login/code/", {"otp_token": "000000"})
    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert not client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="mfa.failure", subject=alice, outcome="failure").exists()


def test_replayed_code_is_refused_from_another_session(alice):
    code = current_code(alice)
    first = Client()
    assert sign_in(first, alice, code)["Location"] == "/"
    second = Client()
    response = sign_in(second, alice, code)
    assert response.status_code == 200
    assert "already used" in response.content.decode()


def test_backup_code_signs_in_once_case_insensitively(alice):
    codes = services.backup_codes_generate(user=alice)
    assert len(codes) == 10
    first = Client()
    assert sign_in(first, alice, codes[0].lower())["Location"] == "/"
    assert AuditEvent.objects.filter(action="mfa.backup_code_used", subject=alice).exists()
    second = Client()
    response = sign_in(second, alice, codes[0])
    assert response.status_code == 200
    assert "not valid" in response.content.decode()


def test_backup_codes_are_stored_only_as_salted_hashes(alice):
    codes = services.backup_codes_generate(user=alice)
    rows = list(RecoveryCode.objects.values("salt", "code_hash"))
    assert len(rows) == 10
    assert len({r["salt"] for r in rows}) == 10
    stored = repr(rows)
    for code in codes:
        assert code.replace("-", "") not in stored and code not in stored
    # 16 symbols from a 32-letter alphabet: 80 random bits per code.
    assert len(RecoveryCodeDevice.ALPHABET) == 32 and RecoveryCodeDevice.CODE_LENGTH * 5 >= 64


def test_totp_seed_has_at_least_160_bits(alice):
    device = services.totp_pending_device(make_user("carol", with_totp=False))
    assert len(device.bin_key) * 8 >= 160


def test_device_back_off_refuses_even_a_correct_code_then_success_resets(client, alice):
    password_step(client)
    client.post("/accounts/login/code/", {"otp_token": "000000"})
    response = client.post("/accounts/login/code/", {"otp_token": current_code(alice)})
    assert response.status_code == 200
    assert "Too many wrong codes in a row" in response.content.decode()
    device = TOTPDevice.objects.get(user=alice)
    assert device.throttling_failure_count >= 1
    # Once the back-off has passed, the right code works and resets the counter.
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now() - timedelta(minutes=5))
    response = client.post("/accounts/login/code/", {"otp_token": current_code(alice), "next": "/"})
    assert response["Location"] == "/"
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_wrong_totp_does_not_throttle_backup_codes_and_vice_versa(client, alice):
    codes = services.backup_codes_generate(user=alice)
    password_step(client)
    client.post("/accounts/login/code/", {"otp_token": "000000"})
    backup = RecoveryCodeDevice.objects.get(user=alice)
    assert backup.throttling_failure_count == 0
    response = client.post("/accounts/login/code/", {"otp_token": codes[1], "next": "/"})
    assert response["Location"] == "/"

    other = Client()
    password_step(other)
    TOTPDevice.objects.filter(user=alice).update(throttling_failure_timestamp=None, throttling_failure_count=0)
    other.post("/accounts/login/code/", {"otp_token": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
    assert TOTPDevice.objects.get(user=alice).throttling_failure_count == 0
    assert RecoveryCodeDevice.objects.get(user=alice).throttling_failure_count == 1


def test_another_users_device_never_verifies(alice, bob):
    bob_device = TOTPDevice.objects.get(user=bob)
    import django_otp

    assert django_otp.verify_token(alice, bob_device.persistent_id, current_code(bob)) is None
    assert services.second_factor_verify(user=alice, token=current_code(bob)) in (None, TOTPDevice.objects.get(user=alice))
    assert TOTPDevice.objects.get(user=bob).last_t == -1


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_clock_tolerance_is_one_step_with_a_frozen_clock(monkeypatch, alice, offset, accepted):
    frozen = 1_800_000_000.0
    monkeypatch.setattr("django_otp.plugins.otp_totp.models.time.time", lambda: frozen)
    device = TOTPDevice.objects.get(user=alice)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = frozen + offset * device.step
    assert (services.second_factor_verify(user=alice, token=f"{totp.token():06d}") is not None) is accepted


def test_account_cap_counts_case_variants_and_blocks_correct_password(client, alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    for name in ("alice", "Alice", "ALICE"):
        password_step(client, username=name, password="nope")
    response = password_step(client)
    assert response.status_code == 200
    assert "Too many failed attempts. Try again after" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login.lockout").exists()


def test_account_cap_on_codes(client, alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 2
    password_step(client)
    for _ in range(2):
        TOTPDevice.objects.filter(user=alice).update(throttling_failure_count=0, throttling_failure_timestamp=None)
        client.post("/accounts/login/code/", {"otp_token": "000000"})
    TOTPDevice.objects.filter(user=alice).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    response = client.post("/accounts/login/code/", {"otp_token": current_code(alice)})
    assert "Too many failed attempts" in response.content.decode()
    assert AuditEvent.objects.filter(action="mfa.lockout", subject=alice).exists()


def test_success_does_not_clear_other_buckets(client, alice, bob, settings):
    settings.GATECHECK_IP_FAILURE_LIMIT = 3
    password_step(client, username="bob", password="nope")
    password_step(client, username="bob", password="nope")
    assert sign_in(client, alice)["Location"] == "/"
    assert AuthFailure.objects.filter(bucket="ip:127.0.0.1").count() == 2
    assert AuthFailure.objects.filter(bucket=f"password:user:{services.username_digest('bob')}").count() == 2


def test_per_ip_limit_ignores_a_spoofed_forwarded_for(alice, bob, settings):
    settings.GATECHECK_IP_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(3):
        attacker.post("/accounts/login/", {"username": f"user{i}", "password": "x"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    response = attacker.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert "Too many failed attempts" in response.content.decode()
    assert set(AuthFailure.objects.filter(bucket__startswith="ip:").values_list("bucket", flat=True)) == {"ip:203.0.113.9"}


def test_trusted_proxy_setting_reads_the_forwarded_address(alice, settings):
    settings.GATECHECK_TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.1")
    client.post("/accounts/login/", {"username": "alice", "password": "x"}, HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44")
    assert AuthFailure.objects.filter(bucket="ip:192.0.2.44").exists()
    assert AuditEvent.objects.get(action="login.failure").ip == "192.0.2.44"


@pytest.mark.parametrize("evil", ["//evil.com", "https://evil.com", "/\\evil.com", "javascript:alert(1)", "http:/evil.com"])
def test_next_accepts_only_same_site_paths(client, alice, evil):
    response = sign_in(client, alice, next_url=evil)
    assert response["Location"] == "/"


def test_next_keeps_a_same_site_path(client, alice):
    response = sign_in(client, alice, next_url="/accounts/security/")
    assert response["Location"] == "/accounts/security/"


def test_signup_forces_enrolment_then_shows_backup_codes(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "Dana", "email": "dana@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response["Location"] == "/accounts/mfa/setup/"
    dana = User.objects.get(username="dana")
    assert client.get("/")["Location"].startswith("/accounts/mfa/setup/")
    page = client.get("/accounts/mfa/setup/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    # The QR is drawn inline (no image fetched from elsewhere); the same
    # address opens the phone's authenticator app from its link.
    assert "<svg" in html and "<img" not in html
    assert 'href="otpauth://totp/' in html
    device = TOTPDevice.objects.get(user=dana)
    assert not device.confirmed
    # A wrong code keeps the device unconfirmed.
    response = client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": "000000"})
    assert "did not match" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    response = client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": code})
    assert response["Location"] == "/accounts/security/backup-codes/new/"
    response = client.get(response["Location"])
    assert "no-store" in response["Cache-Control"]
    assert response.content.decode().count("<li><code>") == 10
    # A reload shows them no more and offers no new authenticator.
    again = client.get("/accounts/security/backup-codes/new/")
    assert again.context["codes"] is None and build.texts(again.content, "codes-gone")
    device.refresh_from_db()
    assert device.confirmed and device.name == "Phone"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="mfa.authenticator_added", subject=dana).exists()
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated", subject=dana).exists()


def test_setup_secret_is_shown_only_to_the_enrolling_user(client, alice_client):
    make_user("erin", with_totp=False)
    password_step(client, "erin")
    html = client.get("/accounts/mfa/setup/").content.decode()
    device = TOTPDevice.objects.get(user__username="erin")
    from base64 import b32encode

    secret = b32encode(device.bin_key).decode()
    assert secret[:4] in html
    assert secret[:8] not in alice_client.get("/accounts/security/").content.decode()


def test_signup_can_be_switched_off(client, settings):
    settings.GATECHECK_SIGNUP_OPEN = False
    assert client.get("/accounts/signup/").status_code == 404


def test_failure_buckets_never_store_what_was_typed(client, alice):
    typed = "MyS3cretPassw0rd!"
    password_step(client, username=typed, password="x")
    stored = repr(list(AuthFailure.objects.values())) + repr(list(AuditEvent.objects.values()))
    assert typed not in stored and typed.lower() not in stored
    assert AuditEvent.objects.get(action="login.failure").object_label == "(unknown username)"


def test_ipv6_clients_are_counted_per_64_block(alice, settings):
    settings.GATECHECK_IP_FAILURE_LIMIT = 2
    for host in ("2001:db8::1", "2001:db8::2"):
        Client(REMOTE_ADDR=host).post("/accounts/login/", {"username": "alice", "password": "x"})
    response = Client(REMOTE_ADDR="2001:db8::99").post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert "Too many failed attempts" in response.content.decode()


def test_password_reset_requests_are_capped_per_ip(client, alice, settings):
    from django.core import mail

    settings.GATECHECK_RESET_LIMIT = 2
    for _ in range(3):
        response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 2
    assert "Too many reset requests" in response.content.decode()


def test_a_code_typed_with_a_space_is_taken_as_the_code(client, alice):
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    code = current_code(alice)
    response = client.post("/accounts/login/code/", {"otp_token": f"{code[:3]} {code[3:]}"})
    assert response.status_code == 302


def test_first_enrolment_gives_the_honest_throttle_message(client):
    User.objects.create_user(username="erin", password=PASSWORD)
    client.post("/accounts/login/", {"username": "erin", "password": PASSWORD})
    client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user__username="erin")
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=5, throttling_failure_timestamp=timezone.now())
    response = client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": "123 456"})
    errors = response.context["form"].errors["otp_token"]
    assert errors[0].startswith("Too many wrong codes in a row. Wait until")


def test_a_desk_lead_lands_on_the_desk_after_signing_in(client, lena):
    client.post("/accounts/login/", {"username": "lena", "password": PASSWORD})
    response = client.post("/accounts/login/code/", {"otp_token": current_code(lena)})
    assert response["Location"] == "/desk/"


def test_a_desk_lead_lands_on_the_desk_through_the_login_form_unless_next_names_a_page(client, lena):
    step = client.post("/accounts/login/", {"username": "lena", "password": PASSWORD})
    assert step["Location"] == "/accounts/login/code/?next=%2F"  # the form passes "/" on
    response = client.post(step["Location"], {"otp_token": current_code(lena), "next": "/"})
    assert response["Location"] == "/desk/"
    client.logout()
    step = client.post("/accounts/login/?next=/profile/", {"username": "lena", "password": PASSWORD, "next": "/profile/"})
    response = client.post(step["Location"], {"otp_token": current_code(lena, 1), "next": "/profile/"})
    assert response["Location"] == "/profile/"


def test_a_trader_lands_on_the_dashboard(client, alice):
    step = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert client.post(step["Location"], {"otp_token": current_code(alice), "next": "/"})["Location"] == "/"
