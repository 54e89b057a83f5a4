"""Sign-in v2 in a real browser (issue 14): a trusted browser, an MFA reset
with its enrolment code, the new-browser alert's link, and e-mail confirmation."""

from __future__ import annotations

import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Desk, User
from tests.conftest import PASSWORD, current_code, make_user, sign_in_browser
from tests.test_browser_auth import code_from_secret

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a brand new passphrase 7781"


def password_step(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/accounts/login/"))


def fresh_codes(user: User) -> None:
    TOTPDevice.objects.filter(user=user).update(last_t=-1)


def mail_link(mailoutbox, subject_part: str) -> str:
    message = next(m for m in reversed(mailoutbox) if subject_part in m.subject)
    return re.search(r"https?://\S+", message.body.split("\n\n", 1)[1]).group(0)


def test_a_trusted_browser_skips_the_code_until_the_password_changes(live_server, page):
    alice = make_user("alice")
    password_step(page, live_server, "alice")
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    page.get_by_label("Authentication code").fill(current_code(alice))
    page.get_by_label("Trust this browser for 30 days").check()
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")
    sign_out(page)

    # The password is asked, the code is not.
    password_step(page, live_server, "alice")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/accounts/security/")
    assert page.locator(".trusted-browser").count() == 1
    assert page.locator(".trusted-browser").get_by_text("This browser").is_visible()

    # A password change still wants a fresh code, and voids the trust.
    page.get_by_role("link", name="Change password").click()
    page.wait_for_url(re.compile(r"/accounts/mfa/confirm/"))
    fresh_codes(alice)
    page.get_by_label("Authentication code").fill(current_code(alice))
    page.get_by_role("button", name=re.compile("Confirm|Verify|Continue")).click()
    page.wait_for_url(re.compile(r"/accounts/password/change/"))
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(re.compile(r"/accounts/security/"))
    assert page.locator(".trusted-browser").count() == 0
    sign_out(page)
    password_step(page, live_server, "alice", NEW_PASSWORD)
    page.wait_for_url(re.compile(r"/accounts/login/code/"))


def test_a_reset_hands_over_an_enrolment_code_that_the_trader_needs(live_server, browser):
    alice = make_user("alice")
    lena = make_user("lena")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lena)
    desk.members.add(alice)

    lead = browser.new_context().new_page()
    sign_in_browser(lead, live_server, lena, f"/desk/traders/{alice.pk}/")
    lead.get_by_role("link", name="Reset two-factor…").click()
    lead.get_by_label("Reason").fill("Lost phone and backup card; called back on the desk line")
    lead.get_by_label(re.compile("I confirmed the trader's identity")).check()
    lead.get_by_role("button", name="Reset two-factor authentication").click()
    lead.wait_for_url(re.compile(r"/mfa-reset/code/"))
    code = lead.locator(".enrolment-code").inner_text()
    assert len(code) == 19
    lead.reload()
    assert lead.locator(".enrolment-code").count() == 0  # shown once

    trader = browser.new_context().new_page()
    password_step(trader, live_server, "alice")
    trader.wait_for_url(re.compile(r"/accounts/mfa/setup/"))
    assert trader.get_by_role("heading", name="Enter your enrolment code").is_visible()
    assert trader.locator("code.secret").count() == 0
    trader.get_by_label("Enrolment code").fill("AAAA-BBBB-CCCC-DDDD")
    trader.get_by_role("button", name="Continue").click()
    assert trader.locator(".errorlist").get_by_text("not right").is_visible()
    trader.get_by_label("Enrolment code").fill(code.lower())
    trader.get_by_role("button", name="Continue").click()
    secret = trader.locator("code.secret").inner_text()
    trader.get_by_label("Code from the app").fill(code_from_secret(secret))
    trader.get_by_role("button", name="Confirm and continue").click()
    trader.get_by_role("heading", name="Save your backup codes").wait_for()


def test_the_wasnt_me_link_signs_the_intruder_out(live_server, browser, mailoutbox):
    alice = make_user("alice")
    intruder = browser.new_context().new_page()
    sign_in_browser(intruder, live_server, alice, "/")
    link = mail_link(mailoutbox, "new browser")

    owner = browser.new_context().new_page()
    owner.goto(link)
    owner.get_by_role("button", name=re.compile("It wasn't me")).click()
    owner.wait_for_url(re.compile(r"/accounts/password/reset/"))
    assert owner.get_by_text("Your password no longer works").is_visible()

    intruder.goto(f"{live_server.url}/accounts/security/")
    intruder.wait_for_url(re.compile(r"/accounts/login/"))
    password_step(intruder, live_server, "alice")
    assert intruder.locator(".alert-error").is_visible()


def test_an_unconfirmed_address_is_shown_on_the_dashboard_until_confirmed(live_server, page, mailoutbox):
    una = make_user("una", verified=False)
    sign_in_browser(page, live_server, una, "/")
    banner = page.locator(".email-unverified")
    assert banner.is_visible()
    banner.get_by_role("button", name="Send the link again").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(mail_link(mailoutbox, "Confirm your e-mail"))
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("is confirmed").is_visible()
    assert page.locator(".email-unverified").count() == 0
