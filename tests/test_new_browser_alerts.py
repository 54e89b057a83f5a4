"""A sign-in from a browser the account has not seen is e-mailed, with a
signed, single-use "this wasn't me" link (issue 14)."""

from __future__ import annotations

import re
import time

import pytest
from django.core import signing
from django.test import Client, RequestFactory
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

from accounts import signin
from accounts.background import Worker
from accounts.models import AuditEvent, KnownBrowser, SignInAlert, UserSession
from tests.builders import page_texts, unverified_user
from tests.conftest import PASSWORD, current_code

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def sign_in(client: Client, user, **extra):
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **extra)
    response = client.post("/accounts/login/code/", {"otp_token": current_code(user)}, **extra)
    assert response.status_code == 302
    return response


def alerts(mailoutbox) -> list:
    return [m for m in mailoutbox if "new browser" in m.subject]


def link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/login/not-me/[^\s]+/)", message.body).group(1)


def test_a_new_browser_is_e_mailed_with_browser_time_and_ip(alice, mailoutbox):
    sign_in(Client(HTTP_USER_AGENT=FIREFOX), alice, REMOTE_ADDR="203.0.113.9")
    [message] = alerts(mailoutbox)
    assert message.to == ["alice@example.com"]
    assert "Firefox on Linux" in message.body and "203.0.113.9" in message.body and " UTC" in message.body
    assert link_path(message)
    assert KnownBrowser.objects.filter(user=alice).count() == 1
    assert AuditEvent.objects.filter(action="browser.new_alert", actor=alice).exists()


def test_the_same_browser_again_is_not_e_mailed(alice, mailoutbox):
    client = Client()
    sign_in(client, alice)
    client.post("/accounts/logout/")
    sign_in(client, alice)
    assert len(alerts(mailoutbox)) == 1
    # The user agent alone does not make a browser known: a fresh cookie jar is new.
    sign_in(Client(), alice)
    assert len(alerts(mailoutbox)) == 2


def test_the_browser_cookie_is_random_and_only_its_digest_is_stored(alice):
    response = sign_in(Client(), alice)
    cookie = response.cookies[signin.BROWSER_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and len(cookie.value) >= 32
    row = KnownBrowser.objects.get(user=alice)
    assert row.digest != cookie.value and cookie.value not in row.digest


def test_the_browser_an_account_was_created_in_is_not_e_mailed(client, mailoutbox):
    client.post("/accounts/signup/", {"username": "carol", "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD})
    client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user__username="carol")
    token = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": token}).status_code == 302
    assert alerts(mailoutbox) == []
    assert KnownBrowser.objects.filter(user__username="carol").count() == 1


def test_the_link_asks_first_then_ends_the_session_and_locks_the_password(alice, mailoutbox):
    intruder = Client()
    sign_in(intruder, alice)
    assert intruder.get("/").status_code == 200
    path = link_path(alerts(mailoutbox)[0])

    # A GET (a mail scanner, a preview) changes nothing.
    page = Client().get(path)
    assert page.status_code == 200 and page_texts(page, "btn-danger")
    assert intruder.get("/").status_code == 200

    response = Client().post(path)
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/"
    assert intruder.get("/")["Location"].startswith("/accounts/login/")
    assert not UserSession.objects.filter(user=alice).exists()
    alice.refresh_from_db()
    assert not alice.check_password(PASSWORD) and alice.has_usable_password()
    assert Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 200
    assert not KnownBrowser.objects.filter(user=alice).exists()
    event = AuditEvent.objects.get(action="login.reported")
    assert event.subject == alice

    # Single use.
    assert Client().post(path).status_code == 400
    assert Client().get(path).status_code == 400
    assert AuditEvent.objects.filter(action="login.reported").count() == 1


def test_a_tampered_or_old_link_does_nothing(alice, mailoutbox, monkeypatch):
    intruder = Client()
    sign_in(intruder, alice)
    path = link_path(alerts(mailoutbox)[0])
    token = path.rstrip("/").rsplit("/", 1)[1]
    alert = SignInAlert.objects.get()
    forged = signing.dumps({"a": alert.pk, "u": alert.user_id}, salt="another salt")
    for bad in (token[:-3] + "abc", forged):
        assert Client().post(f"/accounts/login/not-me/{bad}/").status_code == 400
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + 8 * 24 * 3600)
    assert Client().post(path).status_code == 400
    monkeypatch.undo()
    assert intruder.get("/").status_code == 200
    assert SignInAlert.objects.get().used_at is None


def test_the_link_post_is_csrf_protected(alice, mailoutbox):
    sign_in(Client(), alice)
    path = link_path(alerts(mailoutbox)[0])
    assert Client(enforce_csrf_checks=True).post(path).status_code == 403
    assert SignInAlert.objects.get().used_at is None



DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def test_the_task_table_never_holds_a_working_link(alice, settings, mailoutbox):
    """The not-me and confirmation links are signed by the worker, as reset
    links are: a reader of the task table (a backup, a replica) finds none."""
    settings.TASKS = DB_TASKS
    sign_in(Client(), alice)
    signin.email_verification_send(request=RequestFactory().get("/"), user=unverified_user("una"))
    stored = " ".join(str(row.args_kwargs) for row in DBTaskResult.objects.all())
    assert DBTaskResult.objects.filter(task_path="accounts.mail.linked_send").count() == 2
    assert "/not-me/" not in stored and "/email/verify/" not in stored
    Worker(worker_id="test", queues=["default"], batch=True).run()
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert link_path(alerts(mailoutbox)[0])
    assert any("/accounts/email/verify/" in m.body for m in mailoutbox if m.to == ["una@example.com"])
