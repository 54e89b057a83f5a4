"""A secret shown once after POST/redirect/GET (backup codes, the calendar
address, a ping address, an enrolment code) reaches the page after the
redirect in an encrypted, path-scoped cookie: never in the session table,
shown on that page alone, once (a copy of the cookie shows nothing), and only
to the user who made it."""

from __future__ import annotations

import base64
import re
import time
import zlib
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.db.models import F
from django.test import Client
from django.utils import timezone

from accounts import once
from accounts.models import ShownOnceTicket
from accounts.services import rows_prune
from tests import builders as build
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db

REASON = {"reason": "Lost phone and backup card on the train; called back on the desk line", "identity_confirmed": "on"}


def _backup_codes(alice, alice_client, lena_client):
    return alice_client, alice_client.post("/accounts/security/backup-codes/"), r"(?<=<li><code>)[^<]+(?=</code>)"


def _calendar(alice, alice_client, lena_client):
    return alice_client, alice_client.post("/profile/calendar/"), r"token=([\w-]{20,})"


def _ping(alice, alice_client, lena_client):
    bot = build.automation(alice, key=build.api_key(alice))
    return alice_client, alice_client.post(f"/automations/{bot.pk}/heartbeat/", {"period_minutes": 5, "grace_minutes": 2}), r"/ping/([\w-]{20,})"


def _enrolment_code(alice, alice_client, lena_client):
    return lena_client, lena_client.post(f"/desk/traders/{alice.pk}/mfa-reset/", REASON), r"\b[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}\b"


@pytest.mark.parametrize("flow", [_backup_codes, _calendar, _ping, _enrolment_code])
def test_a_secret_is_shown_once_after_the_redirect_and_never_stored_in_the_session(alice, alice_client, lena, lena_client, bob_client, flow):
    client, response, pattern = flow(alice, alice_client, lena_client)
    assert response.status_code == 302
    page = response["Location"]

    cookie = next(c for name, c in client.cookies.items() if name.startswith("gatecheck_once_"))
    assert cookie["httponly"] and cookie["path"] == page and cookie["samesite"] == "Strict"

    shown = client.get(page)
    secret = re.search(pattern, shown.content.decode()).group(0)
    assert "no-store" in shown["Cache-Control"]
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())

    assert secret not in client.get(page).content.decode()  # a reload shows it no more

    # Another signed-in user given the same cookie sees nothing of it.
    bob_client.cookies[cookie.key] = cookie.value
    assert secret not in bob_client.get(page).content.decode()


FLOWS = [_backup_codes, _calendar, _ping, _enrolment_code]


def _sent(flow, alice, alice_client, lena_client):
    """The flow's POST: the client, the page it redirects to, the cookie it carries."""
    client, response, pattern = flow(alice, alice_client, lena_client)
    cookie = next(c for name, c in client.cookies.items() if name.startswith("gatecheck_once_"))
    return client, response["Location"], cookie, pattern


def _decodings(value: str) -> list[bytes]:
    """Everything a reader without the key can make of a cookie value: the
    text, and each part base64-decoded as Django's signing or plain
    base64 would, inflated where it is zlib."""
    out = [value.encode()]
    for part in [value, *value.split(":")]:
        for decode in (lambda p: signing.b64_decode(p.encode()), lambda p: base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))):
            try:
                raw = decode(part.lstrip("."))
            except (ValueError, TypeError):
                continue
            out.append(raw)
            try:
                out.append(zlib.decompress(raw))
            except zlib.error:
                pass
    return out


@pytest.mark.parametrize("flow", FLOWS)
def test_the_cookie_hides_the_secret_from_whoever_reads_it(alice, alice_client, lena, lena_client, flow):
    client, page, cookie, pattern = _sent(flow, alice, alice_client, lena_client)
    readable = b"\n".join(_decodings(cookie.value))
    with pytest.raises(signing.BadSignature):
        signing.loads(cookie.value, salt=cookie.key)
    secret = re.search(pattern, client.get(page).content.decode()).group(0)
    for piece in {secret, secret.replace("-", "")}:
        assert piece.encode() not in readable
    assert b'"v"' not in readable and b"codes" not in readable and b"token" not in readable


@pytest.mark.parametrize("flow", FLOWS)
def test_a_copy_of_the_cookie_shows_nothing_once_the_page_was_shown(alice, alice_client, lena, lena_client, flow):
    client, page, cookie, pattern = _sent(flow, alice, alice_client, lena_client)
    secret = re.search(pattern, client.get(page).content.decode()).group(0)
    # The same browser sending the cookie again, and another browser of the same person.
    client.cookies[cookie.key] = cookie.value
    client.cookies[cookie.key]["path"] = page
    assert secret not in client.get(page).content.decode()
    same_person = verify_client(Client(), lena if client is lena_client else alice)
    same_person.cookies[cookie.key] = cookie.value
    assert secret not in same_person.get(page).content.decode()
    assert not ShownOnceTicket.objects.exists()


@pytest.mark.parametrize("flow", FLOWS)
def test_another_users_copy_shows_nothing_and_spends_nothing(alice, alice_client, lena, lena_client, bob_client, flow):
    client, page, cookie, pattern = _sent(flow, alice, alice_client, lena_client)
    bob_client.cookies[cookie.key] = cookie.value
    assert not re.search(pattern, bob_client.get(page).content.decode())
    assert re.search(pattern, client.get(page).content.decode())  # the owner still sees it, once


@pytest.mark.parametrize("flow", FLOWS)
def test_an_expired_cookie_shows_nothing(alice, alice_client, lena, lena_client, flow):
    client, page, cookie, pattern = _sent(flow, alice, alice_client, lena_client)
    ShownOnceTicket.objects.update(created_at=F("created_at") - timedelta(seconds=once.MAX_AGE + 1))
    assert not re.search(pattern, client.get(page).content.decode())


def test_the_encryption_itself_expires_after_five_minutes(alice, alice_client, monkeypatch):
    response = alice_client.post("/accounts/security/backup-codes/")
    later = time.time() + once.MAX_AGE + 60
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: later)
    assert alice_client.get(response["Location"]).context["codes"] is None
    assert ShownOnceTicket.objects.count() == 1  # never shown; the hourly prune removes it
    rows_prune(now=timezone.now() + timedelta(seconds=once.MAX_AGE + 60))
    assert not ShownOnceTicket.objects.exists()


def test_a_cookie_made_for_one_page_shows_nothing_on_another(alice, alice_client):
    response = alice_client.post("/accounts/security/backup-codes/")
    value = alice_client.cookies["gatecheck_once_backup_codes"].value
    alice_client.cookies["gatecheck_once_calendar_token"] = value
    assert "token=" not in alice_client.get("/profile/calendar/address/").content.decode()
    assert alice_client.get(response["Location"]).context["codes"]  # and it was not spent
