"""One trader, in Chromium: set a market schedule on a bot's heartbeat and
see its next check-ins, then add an alert channel and press "Send a test",
which arrives at a real HTTP receiver."""

from __future__ import annotations

import pytest

from devices.models import Heartbeat
from tests import builders as build
from tests.conftest import make_user, sign_in_browser
from tests.test_alert_channels import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    # A trader in Tokyo: the next check-ins must read in their zone, not the server's.
    return {**browser_context_args, "timezone_id": "Asia/Tokyo", "locale": "en-US"}


def test_market_schedule_next_check_ins_and_a_channel_test(live_server, page, allow_async_unsafe):
    receiver = Receiver()
    try:
        alice = make_user("alice")
        bot = build.automation(alice, name="ES spread bot", key=build.api_key(alice))
        url = f"/automations/{bot.pk}/heartbeat/"
        sign_in_browser(page, live_server, alice, url)
        page.get_by_label("Checks in every (minutes)").fill("5")
        page.get_by_label("During an exchange's trading sessions (idle when it is closed)").check()
        page.get_by_label("Exchange", exact=True).select_option("XNYS")
        page.get_by_label("Minutes before the open").fill("30")
        page.get_by_label("Minutes after the close").fill("15")
        page.get_by_role("button", name="Create heartbeat").click()
        page.wait_for_url(f"{live_server.url}/automations/{bot.pk}/heartbeat/address/")
        assert Heartbeat.objects.get(automation=bot).exchange == "XNYS"

        page.goto(f"{live_server.url}{url}")
        times = page.locator("time[data-local-time]")
        assert times.count() == 5
        # The script wrote each time in the browser's zone (UTC+9); the server's UTC text stays as the title.
        utc_text, shown = times.first.get_attribute("title"), times.first.inner_text()
        assert utc_text.endswith("UTC") and "GMT+9" in shown
        hour = int(utc_text.split()[2].split(":")[0])
        assert f"{(hour + 9) % 12 or 12:02d}:" in shown

        page.goto(f"{live_server.url}/accounts/alerts/")
        page.get_by_label("Apprise URL").fill(receiver.url)
        page.get_by_label("Name", exact=True).fill("Desk webhook")
        page.get_by_role("button", name="Add channel").click()
        assert page.get_by_text("Channel 'Desk webhook' added.").is_visible()
        page.get_by_role("button", name="Send a test").click()
        assert page.get_by_text("A test is on its way to 'Desk webhook'.").is_visible()
        assert [m["title"] for m in receiver.received] == ["[Gatecheck] Test message"]
        assert "Working" in page.content() or "Desk webhook" in page.content()
    finally:
        receiver.shutdown()
