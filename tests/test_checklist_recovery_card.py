"""The printable recovery card at /recovery-card/: everything needed to get
back in after a device loss, and never a secret."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import RecoveryCodeDevice
from tests import builders as build

pytestmark = pytest.mark.django_db


def card(client) -> str:
    response = client.get("/recovery-card/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_card_holds_support_devices_backup_factors_steps_and_last_drill(alice, alice_client):
    build.prepared_trader(alice)
    build.recovery(alice, "hardware_key", "YubiKey 5 on the office keyring")
    text = card(alice_client)
    assert "Emergency recovery card" in text
    assert "+1 877 442 2757 (IBKR client services)" in text
    assert "Office workstation" in text and "iPhone" in text
    assert "Backup codes</strong>: Printed, in the desk safe" in text
    assert "Hardware key</strong>: YubiKey 5 on the office keyring" in text
    assert "If you lose a device" in text and "Report the lost device" in text
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert f"{yesterday}: lost 'Office workstation', back in after <strong>18 min</strong>" in text


def test_phone_numbers_and_emails_are_masked_on_the_card(alice, alice_client):
    build.recovery(alice, "phone", "+1 555 010 0142")
    build.recovery(alice, "email", "alice@example.com")
    text = card(alice_client)
    assert "+1 *** *** 0142" in text and "a***@example.com" in text
    assert "555 010 0142" not in text and "alice@example.com" not in text


def test_the_card_never_shows_a_secret(alice, alice_client):
    build.prepared_trader(alice)
    device = RecoveryCodeDevice.objects.create(user=alice, name="Backup codes", confirmed=True)
    codes = device.generate_codes()
    text = card(alice_client)
    assert not any(code in text for code in codes)
    assert "7f3a" not in text  # not even a key fingerprint
    from django_otp.plugins.otp_totp.models import TOTPDevice

    assert TOTPDevice.objects.get(user=alice).key not in text


def test_missing_parts_are_called_out(alice_client):
    text = card(alice_client)
    assert "No support contact saved." in text
    assert "No active device recorded." in text
    assert "No recovery method recorded." in text
    assert "No drill completed yet." in text


def test_the_card_has_a_print_stylesheet_and_a_script_free_print_fallback(alice, alice_client):
    text = card(alice_client)
    assert 'data-print hidden' in text and '<script src="/static/js/print.js" defer></script>' in text
    assert "browser's Print command" in text
    css = (Path(settings.BASE_DIR) / "static/css/checklist.css").read_text()
    assert "@media print" in css and ".recovery-card" in css.split("@media print")[1]
