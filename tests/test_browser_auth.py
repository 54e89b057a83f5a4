"""The sign-up flow in a real browser: account, forced enrolment, backup codes, dashboard."""

from __future__ import annotations

import base64
import re
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD, current_code, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code_from_secret(secret_text: str, offset_steps: int = 0) -> str:
    """What an authenticator app shows for the key the setup page displays."""
    key = base64.b32decode(secret_text.replace(" ", "") + "=" * (-len(secret_text.replace(" ", "")) % 8))
    totp = TOTP(key)
    totp.time = time.time() + offset_steps * 30
    return f"{totp.token():06d}"


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def test_sign_up_enrol_sign_out_and_back_in_with_totp_then_a_backup_code(live_server, page, allow_async_unsafe):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Username").fill("fiona")
    page.get_by_label("Email").fill("fiona@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    # Enrol with what the page shows, as a person with an authenticator app would.
    page.wait_for_url(re.compile(r"/accounts/mfa/setup/"))
    assert page.locator(".qr svg").is_visible()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code from the app").fill(code_from_secret(secret))
    page.get_by_role("button", name="Confirm and continue").click()

    page.get_by_role("heading", name="Save your backup codes").wait_for()
    codes = page.locator("ol.codes li").all_inner_texts()
    assert len(codes) == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as .txt").click()
    saved = download.value.path().read_text()
    assert download.value.suggested_filename == "gatecheck-backup-codes.txt"
    assert saved.split() == [code.strip() for code in codes]
    page.get_by_role("link", name="I have saved them, continue").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("link", name="fiona").is_visible()
    sign_out(page)

    # Back in with the app (the next 30-second code: the first one is spent).
    page.get_by_label("Username").fill("fiona")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    page.get_by_label("Authentication code").fill(code_from_secret(secret, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")
    sign_out(page)

    # And with a saved backup code, typed in lower case.
    page.get_by_label("Username").fill("fiona")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Authentication code").fill(codes[0].strip().lower())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("You used a backup code. 9 left").is_visible()


def test_sign_in_with_password_then_code(live_server, page, allow_async_unsafe):
    alice = make_user("alice")
    page.goto(f"{live_server.url}/accounts/security/")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    assert page.locator(".errorlist").get_by_text("not valid").is_visible()
    TOTPDevice.objects.filter(user=alice).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    page.get_by_label("Authentication code").fill(current_code(alice))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/accounts/security/")
    assert page.get_by_role("heading", name="Account security").is_visible()
