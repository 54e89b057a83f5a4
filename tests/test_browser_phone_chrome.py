"""The first screen on a phone: a one-row header whose menu folds behind a
button, a compact unconfirmed-address banner that can be hidden for a day,
and checkboxes that are 24 px targets."""

from __future__ import annotations

import pytest
from django.test import Client

from readiness.rules import CATALOG
from tests import builders as build
from tests.conftest import make_user, sign_in_browser, verify_client
from tests.test_browser_axe import _violations, browser_context_args  # noqa: F401 - axe needs the CSP bypassed

COOKIE = "gatecheck_email_banner_hidden"


@pytest.mark.django_db
def test_the_banner_hides_for_a_day_for_this_user_only():
    dana = build.unverified_user("dana")
    client = verify_client(Client(), dana)
    assert "Confirm dana@" in client.get("/").content.decode()
    response = client.post("/accounts/email/banner/hide/", {"next": "/"})
    assert response.status_code == 302 and response.url == "/"
    cookie = response.cookies[COOKIE]
    assert cookie["max-age"] == 24 * 60 * 60 and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "Confirm dana@" not in client.get("/").content.decode()
    # The security page still says it: the banner is hidden, not the fact.
    assert "Not confirmed" in client.get("/accounts/security/").content.decode()
    # Another person on the same browser sees their own banner.
    erin = build.unverified_user("erin")
    other = verify_client(Client(), erin)
    other.cookies[COOKIE] = str(dana.pk)
    assert "Confirm erin@" in other.get("/").content.decode()


@pytest.mark.django_db
def test_hiding_the_banner_is_a_post_behind_the_gate():
    assert Client().post("/accounts/email/banner/hide/").status_code == 302  # to the sign-in page
    dana = build.unverified_user("dana")
    assert verify_client(Client(), dana).get("/accounts/email/banner/hide/").status_code == 405


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_the_header_is_one_row_and_the_menu_opens_from_its_button(live_server, page, allow_async_unsafe):
    dana = build.unverified_user("dana")
    build.device(dana)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_browser(page, live_server, dana, "/")
    header = page.locator(".site-header").bounding_box()
    assert header["height"] <= 64
    nav = page.get_by_role("navigation", name="Main")
    assert not nav.is_visible()
    banner = page.get_by_role("region", name="E-mail address").bounding_box()
    # Header and banner leave most of an 844 px screen to the page.
    assert header["height"] + banner["height"] <= 844 * 0.35
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true" and nav.is_visible()
    assert not _violations(page)
    nav.get_by_role("link", name="Devices").click()
    page.wait_for_url(f"{live_server.url}/devices/")
    assert not page.get_by_role("navigation", name="Main").is_visible()

    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Hide for a day").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("region", name="E-mail address").count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_checkboxes_are_24_px_targets(live_server, page, allow_async_unsafe):
    alice = make_user("alice")
    sign_in_browser(page, live_server, alice, "/devices/add/")
    boxes = page.locator("main input[type=checkbox]")
    assert boxes.count() >= 1
    for box in boxes.all():
        size = box.bounding_box()
        assert size["width"] >= 24 and size["height"] >= 24


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 390])
def test_the_heatmap_fits_1280_and_puts_failing_rules_first_on_a_phone(live_server, page, allow_async_unsafe, width):
    alice = make_user("alice", first_name="Alice", last_name="Chen")
    # The widest row: a long name and username, "◐ partial" in every cell.
    carl = make_user("carl.montgomery-smith", first_name="Carlotta", last_name="Montgomery-Smith")
    lena = build.lead_of("Futures desk", "lena", alice, carl)
    build.snapshot(alice, score=55, drill__rehearsed="fail", mfa__broker="fail", recovery__current="partial")
    build.snapshot(carl, score=50, **{rule.id.replace(".", "__"): "partial" for rule in CATALOG})
    page.set_viewport_size({"width": width, "height": 900})
    sign_in_browser(page, live_server, lena, "/desk/")
    wrap = page.locator(".heatmap-wrap")
    fits = wrap.evaluate("el => el.scrollWidth <= el.clientWidth")
    summary = page.locator("table.heatmap tbody tr", has=page.get_by_role("link", name="Alice Chen")).locator("td.phone-fails")
    if width == 1280:
        assert fits, wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")  # every rule column, Heartbeat included
        assert not summary.is_visible()
    else:
        # Beside the name, before the score: what fails, then what is partial.
        assert summary.is_visible()
        assert summary.inner_text().split("\n") == ["✕ Drill, Broker MFA", "◐ Recovery"]
        trader, first = page.locator("table.heatmap thead th").nth(0), page.locator("table.heatmap thead th").nth(1)
        assert trader.inner_text() == "Trader" and first.inner_text().startswith("Failing")
        # The rest scrolls under a sticky trader column.
        assert not fits
        assert page.locator("table.heatmap tbody th.who").first.evaluate("el => getComputedStyle(el).position") == "sticky"
