"""Lockout cannot be turned against the owner (SECURITY.md 37, OWASP "device
cookies"): a browser that completed a sign-in to an account before counts its
attempts apart from everyone else's, and attempts refused during a lock do
not extend it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEvent, AuthFailure, User
from accounts.signin import DEVICE_COOKIE
from tests.conftest import PASSWORD, current_code

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed attempts. Try again after"


def password_step(client: Client, username: str = "alice", password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def code_step(client: Client, code: str):
    return client.post("/accounts/login/code/", {"otp_token": code, "next": "/"})


def fresh_code(user: User) -> str:
    """The current code, usable again: each sign-in here is made as if in a
    new 30-second step (django-otp refuses a code of a step already used)."""
    TOTPDevice.objects.filter(user=user).update(last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None)
    return current_code(user)


def sign_in(client: Client, user: User):
    password_step(client, user.username)
    return code_step(client, fresh_code(user))


def known_browser(user: User, address: str = "192.0.2.10") -> Client:
    """The user's own browser: it signed in completely once, then signed out."""
    browser = Client(REMOTE_ADDR=address)
    assert sign_in(browser, user)["Location"] == "/"
    browser.post("/accounts/logout/")
    assert browser.cookies[DEVICE_COOKIE].value
    return browser


def guess_passwords(username: str, times: int) -> Client:
    """Wrong passwords from a botnet: an address each, so that only the
    account's cap, not the per-address ones, stops it."""
    for i in range(times):
        attacker = Client(REMOTE_ADDR=f"203.0.113.{i + 1}")
        password_step(attacker, username, "not the password")
    return attacker


def travel(minutes: int) -> None:
    """Move every counted attempt back in time, as if ``minutes`` had passed."""
    AuthFailure.objects.update(at=F("at") - timedelta(minutes=minutes))


def test_a_guesser_locks_unknown_browsers_out_of_alices_account_but_not_her_own_browser(alice):
    alices_browser = known_browser(alice)
    attacker = guess_passwords("alice", 12)
    assert LOCKED in password_step(attacker).content.decode()

    fresh = Client(REMOTE_ADDR="198.51.100.7")
    refused = password_step(fresh)
    assert refused.status_code == 200 and LOCKED in refused.content.decode()
    assert "_auth_user_id" not in fresh.session

    response = password_step(alices_browser)
    assert response["Location"].startswith("/accounts/login/code/")
    assert code_step(alices_browser, fresh_code(alice))["Location"] == "/"
    assert alices_browser.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="login.lockout", subject=alice).exists()
    assert AuditEvent.objects.filter(action="login.success", subject=alice).count() == 2


def test_the_device_cookie_is_signed_http_only_lax_and_long_lived(alice):
    cookie = known_browser(alice).cookies[DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) >= 365 * 24 * 60 * 60
    assert alice.username not in cookie.value  # a user id and a nonce, signed


def test_no_device_cookie_after_the_password_alone(client, alice):
    password_step(client)
    assert DEVICE_COOKIE not in client.cookies


def test_attempts_refused_during_a_lock_do_not_extend_it(alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    attacker = guess_passwords("alice", 3)
    counted = AuthFailure.objects.count()
    travel(10)
    # One attempt a minute while locked: each refused, none counted.
    for _ in range(5):
        assert LOCKED in password_step(attacker, "alice", "not the password").content.decode()
        travel(1)
    assert AuthFailure.objects.count() == counted
    assert AuditEvent.objects.filter(action="login.lockout").count() == 5
    # 16 minutes after the third failure the lock is over, for anyone.
    travel(1)
    assert sign_in(Client(REMOTE_ADDR="198.51.100.7"), alice)["Location"] == "/"


def test_a_device_cookie_for_bob_does_not_open_alices_account(alice, bob):
    bobs_browser = known_browser(bob)
    guess_passwords("alice", 12)
    assert LOCKED in password_step(bobs_browser, "alice").content.decode()
    # bob's own account still works from his browser.
    assert sign_in(bobs_browser, bob)["Location"] == "/"


def test_a_tampered_device_cookie_counts_as_an_unknown_browser(alice):
    value = known_browser(alice).cookies[DEVICE_COOKIE].value
    guess_passwords("alice", 12)
    for forged in (value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), value.replace(":", "x", 1), "garbage"):
        browser = Client(REMOTE_ADDR="192.0.2.10")
        browser.cookies[DEVICE_COOKIE] = forged
        assert LOCKED in password_step(browser).content.decode(), forged


def test_a_known_browsers_own_failures_lock_only_that_browser(alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    alices_browser = known_browser(alice)
    for _ in range(3):
        password_step(alices_browser, "alice", "mistyped")
    # The cookie buys no unlimited guesses: that browser is capped like any other...
    assert LOCKED in password_step(alices_browser).content.decode()
    # ...and its failures are its own: the account is not locked for others.
    assert sign_in(Client(REMOTE_ADDR="198.51.100.7"), alice)["Location"] == "/"


def test_wrong_codes_from_a_guesser_with_the_password_do_not_lock_alices_browser(alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    alices_browser = known_browser(alice)
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    password_step(attacker)
    for _ in range(3):
        fresh_code(alice)  # past django-otp's per-device back-off, which is another rule
        code_step(attacker, "000000")
    assert LOCKED in code_step(attacker, fresh_code(alice)).content.decode()

    fresh = Client(REMOTE_ADDR="198.51.100.7")
    assert password_step(fresh)["Location"].startswith("/accounts/login/code/")
    refused = code_step(fresh, fresh_code(alice))
    assert LOCKED in refused.content.decode()
    assert fresh.get("/")["Location"].startswith("/accounts/login/code/")

    password_step(alices_browser)
    assert code_step(alices_browser, fresh_code(alice))["Location"] == "/"
    assert AuditEvent.objects.filter(action="mfa.lockout", subject=alice).count() == 2


def test_wrong_codes_from_alices_browser_count_apart_from_unknown_browsers(alice, settings):
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 3
    alices_browser = known_browser(alice)
    password_step(alices_browser)
    for _ in range(3):
        fresh_code(alice)
        code_step(alices_browser, "000000")
    assert LOCKED in code_step(alices_browser, fresh_code(alice)).content.decode()
    # An unknown browser still has the account's own allowance.
    assert sign_in(Client(REMOTE_ADDR="198.51.100.7"), alice)["Location"] == "/"


def test_a_new_password_ends_every_device_cookie(alice):
    """A copied device cookie must not keep its own allowance after the
    owner changes the password (a reset, "this wasn't me")."""
    alices_browser = known_browser(alice)
    alice.set_password("a brand-new passphrase 42")
    alice.save()
    guess_passwords("alice", 12)
    assert LOCKED in password_step(alices_browser, password="a brand-new passphrase 42").content.decode()
