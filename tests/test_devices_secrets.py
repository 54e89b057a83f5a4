"""Never a secret (SECURITY.md 24): refused with a message, and afterwards in
no table, no log line and no error report. Also the masking of recovery labels."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import serializers
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from devices.models import ApiKey, Automation, RecoveryMethod, TrustedDevice
from readiness.masking import mask_email, mask_label, mask_phone
from readiness.secrets import find_secret

PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"

SECRETS = [
    "sk_live_51H8xYzAbCdEf0123456789QwErTy",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "password=Hunter2Hunter2",
    "secret: correct-horse",
    "token=abc123",
    "api_key = 12345",
    PEM,
    "otpauth://totp/IBKR:alice?secret=JBSWY3DPEHPK3PXP&issuer=IBKR",
    "JBSW Y3DP EHPK 3PXP",
    "ABCD-EFGH-JKLM-NPQR",
    "Bearer eyJhbGciOiJIUzI1NiJ9",
    "aBcDeFgHiJkLmNoPqRsTuVwXyZ",
    "123e4567-e89b-12d3-a456-426614174000",
    "u7bg-6s89-drrb-ucrm",
    "U7BG6S89DRRBUCRM",
    "JBSWY3DPEHPK3PXP",
    "jbsw y3dp ehpk 3pxp",
    "pw: hunter2",
]

ORDINARY = [
    "Office workstation",
    "iPhone15ProMax256",
    "Keep card with desk lead",
    "keep card with desk lead 2026",
    "desk lead phone",
    "+1 212 555 0142",
    "alice.backup+trading2026@example.com",
    "US equities bundle",
    "IBKR Mobile on iPhone 15 Pro",
    "Backup codes printed, in the desk safe",
    "ES spread bot v2",
    "Token refresh every 24h",
    "Password manager holds it; ask the desk lead",
    "InternationalBusinessMachines",
    "HK positions closed until January",
    "YubiKey 5C NFC (blue keyring)",
]


@pytest.mark.parametrize("text", SECRETS)
def test_credential_looking_text_is_recognised(text):
    assert find_secret(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_not_mistaken_for_a_secret(text):
    assert find_secret(text) is None


def test_the_reason_never_quotes_the_text():
    for text in SECRETS:
        assert text not in find_secret(text)


# --- Masking -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+1 212 555 0142", "+1 *** *** 0142"),
        ("+1 (212) 555-0142", "+1 *** *** 0142"),
        ("+44 20 7946 0958", "+44 *** *** 0958"),
        ("+41791234567", "+41 *** *** 4567"),
        ("+12125550142", "+1 *** *** 0142"),
        ("212-555-0142", "*** *** 0142"),
        ("+1 *** *** 0142", "+1 *** *** 0142"),
    ],
)
def test_phone_numbers_keep_country_code_and_last_four_digits(number, masked):
    assert mask_phone(number) == masked
    assert mask_label("phone", number) == masked


def test_email_keeps_first_letter_and_domain():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_label("email", "alice.backup@example.com") == "a***@example.com"
    assert mask_label("email", "a***@example.com") == "a***@example.com"


def test_labels_without_numbers_or_addresses_are_shown_as_they_are():
    assert mask_label("backup_codes", "Printed, desk safe") == "Printed, desk safe"
    assert mask_label("hardware_key", "YubiKey 5 NFC") == "YubiKey 5 NFC"


def test_a_number_inside_a_label_is_masked():
    assert mask_label("secondary_device", "Old phone, +1 917 555 0199") == "Old phone, +1 *** *** 0199"


def test_masked_label_on_the_model():
    method = RecoveryMethod(kind="phone", label="+1 212 555 0142")
    assert method.masked_label == "+1 *** *** 0142"
    assert str(method) == "+1 *** *** 0142"


# --- Through the pages ------------------------------------------------------------

SECRET = "sk_live_51H8xYzAbCdEf0123456789QwErTy"


def everything_stored() -> str:
    """Every row of every model in every app, plus the decoded sessions."""
    parts = []
    for model in apps.get_models(include_auto_created=True):
        parts.append(serializers.serialize("json", model._base_manager.all()))
    for session in Session.objects.all():
        parts.append(repr(session.get_decoded()))
    return "\n".join(parts)


def _forms(alice):
    key = ApiKey.objects.create(owner=alice, label="spare", created_on=timezone.localdate(), fingerprint="ab12")
    today = timezone.localdate().isoformat()
    device = {"name": "Laptop", "kind": "laptop", "validated_on": today, "notes": ""}
    return [
        ("/devices/add/", {**device, "name": SECRET}, "name"),
        ("/devices/add/", {**device, "notes": f"backup key {SECRET}"}, "notes"),
        ("/recovery/add/", {"kind": "backup_codes", "label": SECRET, "last_verified_on": today}, "label"),
        ("/keys/add/", {"label": SECRET, "created_on": today, "fingerprint": "ab12"}, "label"),
        ("/keys/add/", {"label": "algo", "created_on": today, "fingerprint": SECRET}, "fingerprint"),
        (f"/keys/{key.pk}/edit/", {"label": "spare", "created_on": today, "fingerprint": SECRET}, "fingerprint"),
        ("/automations/add/", {"name": "Bot", "fallback_contact": f"password={SECRET}", "on_auth_failure": "halt"}, "fallback_contact"),
        ("/automations/add/", {"name": SECRET, "on_auth_failure": "halt"}, "name"),
    ]


@pytest.mark.django_db
def test_a_pasted_secret_is_refused_and_stored_nowhere(alice, alice_client, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    forms = _forms(alice)
    before = {model: model.objects.count() for model in (TrustedDevice, RecoveryMethod, ApiKey, Automation)}
    for url, data, field in forms:
        response = alice_client.post(url, data)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "Gatecheck never stores secrets" in html, url
        assert field in response.context["form"].errors
        # The refused value is not even sent back in the re-rendered form.
        assert SECRET not in html, url
        # Error reports would hide every submitted value.
        request = response.wsgi_request
        cleansed = SafeExceptionReporterFilter().get_post_parameters(request)
        assert SECRET not in repr(dict(cleansed))
    assert before == {model: model.objects.count() for model in before}
    assert SECRET not in everything_stored()
    assert SECRET not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.django_db
def test_a_secret_in_an_imported_file_is_stored_nowhere(alice, alice_client, caplog):
    import json

    caplog.set_level(logging.DEBUG)
    from tests.test_inventory import minimal_document

    document = minimal_document()
    document["api_keys"] = [{"label": "algo", "scopes": [], "service_account": True, "created_on": "2026-10-01",
                             "last_rotated_on": None, "expires_on": None, "status": "active", "fingerprint": SECRET}]
    document["drills"] = [{"started_at": "2026-11-01T09:00:00Z", "finished_at": None, "lost_device": f"token: {SECRET}", "completed": False}]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("inventory.json", json.dumps(document).encode(), content_type="application/json")
    response = alice_client.post("/inventory/import/", {"file": upload})
    html = response.content.decode()
    assert "api_keys[0].fingerprint" in html and "drills[0].lost_device" in html
    assert SECRET not in html
    assert SECRET not in everything_stored()
    assert SECRET not in caplog.text


@pytest.mark.django_db
def test_an_honest_entry_is_saved(alice, alice_client):
    today = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = alice_client.post("/devices/add/", {"name": "Laptop", "kind": "laptop", "validated_on": today, "notes": "Password manager holds it"})
    assert response.status_code == 302
