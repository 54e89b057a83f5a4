"""Deployment settings, headers, CSP, the admin gate, CSRF and the audit log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import resolve
from django_otp.admin import OTPAdminSite
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.audit import record_event
from accounts.models import AuditEvent, RecoveryCodeDevice
from tests.conftest import current_code, make_user, verify_client
from tests.test_auth_login import password_step, sign_in

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "prod-" + "k9" * 30,
    "DJANGO_ALLOWED_HOSTS": "gatecheck.example.com",
    "DJANGO_EMAIL_HOST": "smtp.example.com",
    "DATABASE_URL": "sqlite:////tmp/gatecheck-deploy-check.sqlite3",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_cookie_and_transport_settings():
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.DEBUG, s.SECRET_KEY_FALLBACKS)"
    )
    result = run_manage("shell", "--no-imports", "-c", code, env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY_FALLBACKS": "old-key-1"})
    assert result.stdout.strip() == "True True True Lax 31536000 True False ['old-key-1']", result.stderr


@pytest.mark.django_db
def test_security_headers_and_strict_csp(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_templates_hold_no_inline_script_or_style():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\sstyle=", text) or "<style" in text:
            offenders.append(str(path.relative_to(ROOT)))
        if re.search(r"\son[a-z]+=", text):
            offenders.append(f"{path.relative_to(ROOT)} (event handler attribute)")
    assert offenders == []


@pytest.mark.django_db
def test_unknown_page_is_generic_404(alice_client):
    response = alice_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and "Traceback" not in html


@pytest.mark.django_db
def test_forbidden_page_is_generic(alice_client):
    response = alice_client.get("/desk/")
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()


@pytest.mark.django_db
def test_admin_is_the_otp_admin_site_only(client):
    match = resolve("/admin/")
    assert isinstance(match.func.admin_site, OTPAdminSite)
    assert settings.OTP_ADMIN_HIDE_SENSITIVE_DATA is True


@pytest.mark.django_db
def test_admin_refuses_a_password_only_staff_session(client):
    make_user("root", is_staff=True, is_superuser=True)
    password_step(client, "root")
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/code/")
    admin_client = verify_client(Client(), make_user("boss", is_staff=True, is_superuser=True))
    assert admin_client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_csrf_is_enforced_on_state_changes(alice):
    strict = verify_client(Client(enforce_csrf_checks=True), alice)
    assert strict.post("/accounts/security/sessions/end-others/").status_code == 403
    assert strict.post("/accounts/logout/").status_code == 403
    assert Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "alice", "password": "x"}).status_code == 403
    page = strict.get("/accounts/security/")
    token = page.context["csrf_token"]
    assert strict.post("/accounts/security/sessions/end-others/", {"csrfmiddlewaretoken": str(token)}).status_code == 302


@pytest.mark.django_db
def test_audit_log_is_append_only(alice):
    event = record_event(action="test.event", actor=alice)
    event.object_label = "changed"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).object_label == ""


@pytest.mark.django_db
def test_admin_cannot_edit_or_delete_audit_events(alice):
    event = record_event(action="test.event", actor=alice)
    admin_client = verify_client(Client(), make_user("boss", is_staff=True, is_superuser=True))
    response = admin_client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "forged"})
    assert response.status_code == 403
    assert admin_client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.django_db
def test_audit_event_fields_and_neutralised_line_breaks(client, alice):
    sign_in(client, alice)
    event = AuditEvent.objects.get(action="login.success")
    assert event.actor == alice and event.subject == alice
    assert event.ip == "127.0.0.1" and event.outcome == "success" and event.at.tzinfo is not None
    forged = record_event(action="x", actor=alice, object_label="line\nINFO audit action=forged")
    assert "\n" not in forged.object_label


@pytest.mark.django_db
def test_audit_never_holds_codes(client, alice):
    code = current_code(alice)
    backup = services.backup_codes_generate(user=alice)
    sign_in(client, alice, code)
    sign_in(Client(), alice, backup[0])
    dump = repr(list(AuditEvent.objects.values()))
    assert code not in dump and backup[0] not in dump and backup[0].replace("-", "") not in dump


@pytest.mark.django_db
def test_issue_backup_code_command_lets_the_first_admin_in(capsys):
    make_user("root", with_totp=False, is_staff=True, is_superuser=True)
    call_command("issue_backup_code", "ROOT")
    code = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code)
    client = Client()
    response = password_step(client, "root")
    assert response["Location"].startswith("/accounts/login/code/")
    assert client.post("/accounts/login/code/", {"otp_token": code, "next": "/admin/"})["Location"] == "/admin/"
    assert RecoveryCodeDevice.objects.get(user__username="root").remaining() == 0
    # A backup code gets you in, but only as far as setting up an authenticator app.
    for url in ("/admin/", "/", "/accounts/security/"):
        assert client.get(url)["Location"].startswith("/accounts/mfa/setup/"), url
    assert client.get("/accounts/mfa/setup/").status_code == 200
    device = TOTPDevice.objects.get(user__username="root", confirmed=False)
    token = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": token})["Location"] == "/accounts/security/backup-codes/new/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_of_one_code_succeed_exactly_once():
    if connection.vendor != "postgresql":
        pytest.skip("Row locks are proved on PostgreSQL (DATABASE_URL=postgres://...).")
    alice = make_user("alice")
    code = current_code(alice)
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def submit():
        try:
            barrier.wait()
            results.append(services.second_factor_verify(user=alice, token=code) is not None)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


@pytest.mark.django_db
def test_audit_trail_cannot_be_rewritten_through_user_deletion_or_the_base_manager(alice):
    from django.db.models import ProtectedError

    event = record_event(action="test.event", actor=alice)
    with pytest.raises(ProtectedError):
        alice.delete()
    with pytest.raises(PermissionError):
        AuditEvent._base_manager.filter(pk=event.pk).update(action="tampered")
    assert AuditEvent.objects.get(pk=event.pk).actor == alice


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_cannot_overshoot_the_account_cap(settings):
    if connection.vendor != "postgresql":
        pytest.skip("Concurrency is proved on PostgreSQL (DATABASE_URL=postgres://...).")
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    settings.GATECHECK_IP_FAILURE_LIMIT = 1000
    make_user("alice")
    barrier = threading.Barrier(8)

    def attempt():
        try:
            barrier.wait()
            Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every attempt was counted, and no more than the cap got as far as the password check.
    assert AuditEvent.objects.filter(action="login.failure").count() <= 3
    assert AuditEvent.objects.filter(action__in=["login.failure", "login.lockout"]).count() == 8


def test_postgres_connections_are_pooled_or_kept_from_the_environment():
    code = (
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], d.get('OPTIONS', {}).get('pool'), s.GATECHECK_OFFICE_NETWORKS)"
    )
    pg = {"DATABASE_URL": "postgres://gc@db.internal:5432/gatecheck", "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    kept = run_manage("shell", "--no-imports", "-c", code, env={**pg, "DJANGO_CONN_MAX_AGE": "60"})
    assert kept.stdout.split()[:3] == ["60", "True", "None"], kept.stderr
    pooled_env = {**pg, "DJANGO_DB_POOL": "1", "DJANGO_DB_POOL_MAX": "20", "GATECHECK_OFFICE_NETWORKS": "198.51.100.0/24"}
    pooled = run_manage("shell", "--no-imports", "-c", code, env=pooled_env)
    assert pooled.stdout.split()[:2] == ["0", "True"], pooled.stderr
    assert "'max_size': 20" in pooled.stdout and "['198.51.100.0/24']" in pooled.stdout
