"""The sign-up flow in a real browser: account, forced enrolment, backup codes, dashboard."""

from __future__ import annotations

import re

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD, current_code, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_enrol_and_reach_the_dashboard(live_server, page, allow_async_unsafe):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Username").fill("fiona")
    page.get_by_label("Email").fill("fiona@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(re.compile(r"/accounts/mfa/setup/"))
    assert page.locator(".qr svg").is_visible()
    device = TOTPDevice.objects.get(user__username="fiona")
    page.get_by_label("Code from the app").fill(f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}")
    page.get_by_role("button", name="Confirm and continue").click()

    page.get_by_role("heading", name="Save your backup codes").wait_for()
    assert page.locator("ol.codes li").count() == 10
    page.get_by_role("link", name="I have saved them, continue").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("link", name="fiona").is_visible()


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
    assert page.get_by_text("not valid").is_visible()
    TOTPDevice.objects.filter(user=alice).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    page.get_by_label("Authentication code").fill(current_code(alice))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/accounts/security/")
    assert page.get_by_role("heading", name="Account security").is_visible()
