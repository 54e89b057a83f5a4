"""axe-core over every page of both roles, at 1280 and 390 px, in Chromium.

Each role signs in through the real forms, then walks every page it can
reach by a link from its start page (each add, edit and detail page
included) and a few states that only a submitted form reaches (a form
with errors). axe-core (pinned in tests/axe, installed by ``make test``)
runs on each; any violation, whatever its impact, fails the test with the
page, the rule and the first elements it names.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.utils import timezone

from accounts import invitations, offboarding
from accounts.models import Desk, Invitation
from tests import builders as build
from tests.conftest import make_user, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"desktop": 1280, "phone": 390}
# Not pages: downloads, feeds, JSON, the ping, sign-out, and the admin panel
# (Django's own templates, outside this product's markup).
SKIP = re.compile(r"^/(accounts/logout/|admin/|api/|ping/|inventory/export/|calendar\.ics|desk/export\.csv|healthz|metrics)")
MAX_PAGES = 80
QUERY_VARIANTS = 6


@pytest.fixture
def browser_context_args(browser_context_args):
    # axe is injected as a script; the strict CSP (tested elsewhere) would refuse it.
    return {**browser_context_args, "bypass_csp": True}


def _world():
    """A trader whose inventory touches every kind of row and status, and a
    lead of a desk with that trader and a second, emptier one."""
    alice = make_user("alice")
    build.ready_inventory(alice)
    key = build.api_key(alice)
    bot = build.automation(alice, key=key)
    build.heartbeat(bot, last_kind="fail")
    build.permission(alice, "options", "US", status="pending", requested_on=timezone.localdate() - timedelta(days=3))
    build.permission(alice)
    build.accepted_risk(alice)
    build.drill(alice, minutes=1.5)
    bob = make_user("bob")
    build.device(bob)
    lena = build.lead_of("Futures desk", "lena", alice, bob)
    # A leaver with a checklist, and invitations in each state but revoked.
    carl = make_user("carl")
    build.api_key(carl, label="carl-algo", fingerprint="7a1b")
    build.device(carl, name="Carl's laptop")
    desk = Desk.objects.get(name="Futures desk")
    desk.members.add(carl)
    offboarding.deactivate(user=carl, by=lena, via="desk")
    invitations.invite(desk=desk, addresses=["nina@example.com", "omar@example.com"], by=lena)
    Invitation.objects.filter(email="omar@example.com").update(expires_at=timezone.now() - timedelta(days=1))
    return alice, lena


def _violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{page.url}: {v['id']} ({v['impact']}, {len(v['nodes'])} nodes) e.g. {[n['target'] for n in v['nodes'][:3]]}"
        for v in result
    ]


def _links(page, base: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = set()
    for href in hrefs:
        url = urlsplit(urljoin(page.url, href))
        if url.netloc == urlsplit(base).netloc and not SKIP.match(url.path):
            found.add(url.path + (f"?{url.query}" if url.query else ""))
    return found


def _walk(page, base: str, start: list[str]) -> tuple[list[str], list[str]]:
    """Breadth first from ``start``; of one page's query variants (the
    desk's sorts and filters), the first few are states enough."""
    seen, queue, problems, variants = set(), list(start), [], {}
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        route = path.split("?")[0]
        if path in seen or ("?" in path and variants.get(route, 0) >= QUERY_VARIANTS):
            continue
        seen.add(path)
        variants[route] = variants.get(route, 0) + ("?" in path)
        response = page.goto(f"{base}{path}")
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        problems += _violations(page)
        queue += sorted(_links(page, base) - seen)
    return sorted(seen), problems


def _form_errors(page, base: str) -> list[str]:
    """Page states only a submitted form reaches: a form with errors."""
    problems = []
    for path in ("/devices/add/", "/keys/add/", "/profile/"):
        page.goto(f"{base}{path}")
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_load_state()
        problems += _violations(page)
    return problems


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_every_trader_page_has_no_axe_violation(live_server, page, allow_async_unsafe, width):
    alice, _ = _world()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in_browser(page, live_server, alice, "/")
    seen, problems = _walk(page, live_server.url, ["/", "/devices/add/", "/recovery/add/", "/keys/add/", "/automations/add/",
                                                   "/subscriptions/add/", "/permissions/add/", "/risks/accept/"])
    problems += _form_errors(page, live_server.url)
    assert len(seen) >= 30, seen
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_every_desk_lead_page_has_no_axe_violation(live_server, page, allow_async_unsafe, width):
    alice, lena = _world()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in_browser(page, live_server, lena, "/desk/")
    seen, problems = _walk(page, live_server.url, ["/desk/", f"/desk/traders/{alice.pk}/", "/desk/?sort=-score", "/desk/?status=fail"])
    assert any(path.startswith("/desk/traders/") for path in seen), seen
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_the_signed_out_pages_have_no_axe_violation(live_server, page, width, settings, mailoutbox):
    page.set_viewport_size({"width": width, "height": 900})
    # The sign-on button shows (no provider is asked until it is pressed).
    settings.GATECHECK_OIDC_ISSUER, settings.GATECHECK_OIDC_CLIENT_ID = "https://idp.example", "gatecheck"
    lena = make_user("lena")
    desk = Desk.objects.create(name="Rates desk")
    desk.leads.add(lena)
    invitations.invite(desk=desk, addresses=["ann@example.com"], by=lena)
    invited = re.search(r"https?://\S+(/accounts/invitation/\S+/)", mailoutbox[-1].body).group(1)
    problems = []
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", invited, "/accounts/invitation/bad/"):
        page.goto(f"{live_server.url}{path}")
        problems += _violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    problems += _violations(page)
    assert not problems, "\n".join(problems)
