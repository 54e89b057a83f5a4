"""alice records a device, a key and an automation in a real browser, and is
warned that an automation without a key runs on her human login."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import ApiKey, Automation, TrustedDevice
from tests import builders as build
from tests.conftest import make_user, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]




def test_add_device_key_and_automation_and_see_the_human_login_warning(live_server, page, allow_async_unsafe):
    alice = make_user("alice")
    sign_in_browser(page, live_server, alice, "/devices/")
    assert page.get_by_role("heading", name="No trusted devices yet").is_visible()

    page.get_by_role("link", name="Add your first device").click()
    page.get_by_label("Name").fill("Office workstation")
    page.get_by_label("Kind").select_option("desktop")
    page.get_by_label("Trader Workstation").check()
    page.get_by_label("Client Portal").check()
    page.get_by_label("Validated at the broker on").fill((timezone.localdate() - timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Add device").click()
    page.wait_for_url(f"{live_server.url}/devices/")
    assert page.get_by_text("Device 'Office workstation' added.").is_visible()

    page.goto(f"{live_server.url}/keys/add/")
    page.get_by_label("Label").fill("algo-futures")
    page.get_by_label("Read").check()
    page.get_by_label("Trade").check()
    page.get_by_label("Held by a service account").check()
    page.get_by_label("Last 4 characters").fill("7f3a")
    page.get_by_role("button", name="Add key").click()
    page.wait_for_url(f"{live_server.url}/keys/")
    assert page.locator(".finding-text").all_inner_texts() == ["API key 'algo-futures' has no expiry date; set one"]

    page.goto(f"{live_server.url}/automations/add/")
    page.get_by_label("Name").fill("ES spread bot")
    # Left on "None: it runs on my human login".
    page.get_by_label("Refreshes its session token on its own").check()
    page.get_by_label("Fallback contact").fill("desk lead phone")
    page.get_by_label("When authentication fails, it will").select_option("flatten")
    page.get_by_role("button", name="Add automation").click()
    page.wait_for_url(f"{live_server.url}/automations/")
    assert page.locator(".finding-text").all_inner_texts()[0] == "Automation 'ES spread bot' runs on your human login"

    assert TrustedDevice.objects.get(owner=alice).platforms == ["tws", "client_portal"]
    assert ApiKey.objects.get(owner=alice).fingerprint == "7f3a"
    assert Automation.objects.get(owner=alice).api_key is None


def test_a_failed_submit_moves_focus_to_an_error_summary_linking_each_field(live_server, page, allow_async_unsafe):
    alice = make_user("alice")
    sign_in_browser(page, live_server, alice, "/devices/add/")
    page.get_by_role("button", name="Add device").click()
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    links = page.locator("[data-error-summary] a")
    assert links.count() >= 2  # name and kind are required
    links.first.click()
    assert page.evaluate("document.activeElement.id") == "id_name"


def test_import_preview_then_confirm(live_server, page, allow_async_unsafe, tmp_path):
    import json

    from tests.test_inventory import rich_document

    alice = make_user("alice")
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(rich_document()))
    sign_in_browser(page, live_server, alice, "/inventory/import/")
    page.set_input_files("input[type=file]", str(path))
    page.get_by_role("button", name=re.compile("Check|Upload|Preview", re.I)).click()
    page.wait_for_url(re.compile(r"/inventory/import/confirm/"))
    added = page.locator(".change-added").all_inner_texts()
    assert any("Office workstation" in text for text in added)
    assert page.locator("[data-score-after]").inner_text().isdigit()
    page.get_by_role("button", name="Replace my inventory").click()
    # Back on the dashboard, told what the import did to the score.
    page.wait_for_url(f"{live_server.url}/")
    assert re.search(r"Your score: 0 before, \d+ now", page.get_by_role("status").inner_text())
    assert TrustedDevice.objects.filter(owner=alice).count() == 4


def test_create_a_heartbeat_copy_its_url_ping_it_and_see_up(live_server, page, allow_async_unsafe):
    import urllib.request

    alice = make_user("alice")
    bot = build.automation(alice, key=build.api_key(alice))
    sign_in_browser(page, live_server, alice, f"/automations/{bot.pk}/heartbeat/")
    page.get_by_label("Checks in every (minutes)").fill("5")
    page.get_by_role("button", name="Create heartbeat").click()
    page.wait_for_url(re.compile(r"/heartbeat/address/"))
    assert page.get_by_role("button", name="Copy").first.is_visible()  # the copy script ran under the CSP
    url = page.locator("#ping-ok").input_value()
    assert urllib.request.urlopen(url, timeout=5).read() == b"OK"
    page.goto(f"{live_server.url}/automations/")
    assert page.locator(".hb-status").inner_text() == "✓ Up"


def test_row_actions_fit_two_lines_on_a_phone_and_the_rest_fold_under_more(live_server, page, allow_async_unsafe):
    alice = make_user("alice")
    build.device(alice, "Office workstation", kind="desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_browser(page, live_server, alice, "/devices/")
    actions = page.locator(".row-actions").first
    button = actions.get_by_role("link", name="Edit").bounding_box()
    assert actions.bounding_box()["height"] < 2.5 * button["height"]
    revoke = page.get_by_role("button", name="Mark revoked")
    assert not revoke.is_visible()

    page.get_by_text("More").click()
    revoke.click()
    page.wait_for_url(f"{live_server.url}/devices/")
    assert TrustedDevice.objects.get(owner=alice).status == "revoked"
