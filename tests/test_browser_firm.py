"""A firm brings people in, in a real browser (issue 22): a lead invites, the
invitee follows the e-mailed link, joins with the firm's single sign-on (the
npm package oidc-provider, run as its own process), enrols Gatecheck's own
factor and lands on the desk; an invitee without SSO chooses a password; the
next sign-on with MFA at the provider skips the code."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts import invitations
from accounts.models import Desk, ExternalIdentity, User
from tests import idp_process
from tests.conftest import PASSWORD, make_user, sign_in_browser
from tests.test_browser_auth import code_from_secret, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def idp(tmp_path_factory, live_server):
    provider = idp_process.start(tmp_path_factory.mktemp("idp"), [f"{live_server.url}/accounts/sso/callback/"])
    yield provider
    provider.process.terminate()
    provider.process.wait(timeout=10)


@pytest.fixture
def firm_sso(settings, idp):
    settings.GATECHECK_OIDC_ISSUER = idp.url
    settings.GATECHECK_OIDC_CLIENT_ID = idp_process.CLIENT_ID
    settings.GATECHECK_OIDC_CLIENT_SECRET = idp_process.CLIENT_SECRET
    settings.GATECHECK_OIDC_NAME = "Firm SSO"


def _link() -> str:
    return re.search(r"https?://\S+/accounts/invitation/\S+/", mail.outbox[-1].body).group(0)


def _enrol(page) -> None:
    page.wait_for_url(re.compile(r"/accounts/mfa/setup/"))
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code from the app").fill(code_from_secret(secret))
    page.get_by_role("button", name="Confirm and continue").click()
    page.get_by_role("heading", name="Save your backup codes").wait_for()
    page.get_by_role("link", name="I have saved them, continue").click()


def test_lead_invites_and_the_invitee_joins_with_sso(live_server, page, firm_sso):
    lena = make_user("lena")
    Desk.objects.create(name="Futures desk").leads.add(lena)
    sign_in_browser(page, live_server, lena, "/desk/invitations/")
    page.get_by_label("E-mail addresses").fill("nina@example.com")
    page.get_by_role("button", name="Send invitations").click()
    page.get_by_role("heading", name="What happened").wait_for()
    assert page.get_by_text("nina@example.com").first.is_visible()
    link = _link().replace("http://testserver", live_server.url)
    sign_out(page)

    page.goto(link.replace("http://127.0.0.1:8000", live_server.url))
    page.get_by_role("heading", name="Join the desk Futures desk").wait_for()
    page.get_by_role("button", name="Join with Firm SSO").click()
    # The provider's own login page.
    page.get_by_label("E-mail").fill("nina@example.com")
    page.get_by_label("Password").fill("mfa")
    page.get_by_role("button", name="Sign in").click()
    # Back at Gatecheck: her own factor first, then she is in, on the desk.
    _enrol(page)
    page.wait_for_url(re.compile(rf"{re.escape(live_server.url)}/(\?.*)?$"))
    nina = User.objects.get(email="nina@example.com")
    assert Desk.objects.get(name="Futures desk").members.filter(pk=nina.pk).exists()
    assert ExternalIdentity.objects.filter(user=nina).exists()
    sign_out(page)

    # Next time: the button on the login page, MFA at the provider, no code here.
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with Firm SSO").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("link", name=nina.username).is_visible()


def test_an_invitee_without_sso_chooses_a_password(live_server, page):
    lena = make_user("lena")
    desk = Desk.objects.create(name="Rates desk")
    desk.leads.add(lena)
    invitations.invite(desk=desk, addresses=["omar@example.com"], by=lena)
    page.goto(_link().replace("http://127.0.0.1:8000", live_server.url).replace("http://testserver", live_server.url))
    assert page.get_by_role("button", name=re.compile("Join with")).count() == 0
    page.get_by_label("Username").fill("omar")
    page.get_by_label("First name").fill("Omar")
    page.get_by_label("Last name").fill("Haddad")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    _enrol(page)
    page.wait_for_url(re.compile(rf"{re.escape(live_server.url)}/(\?.*)?$"))
    assert desk.members.filter(username="omar").exists()
