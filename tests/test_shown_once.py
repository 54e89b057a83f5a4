"""A secret shown once after POST/redirect/GET (backup codes, the calendar
address, a ping address, an enrolment code) reaches the page after the
redirect in a signed, path-scoped cookie: never in the session table, shown
on that page alone, once, and only to the user who made it."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session

from tests import builders as build

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
