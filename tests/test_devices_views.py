"""The credential inventory pages, through real requests as alice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from devices.models import ApiKey, Automation, RecoveryMethod, TrustedDevice
from tests import builders as build
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def device_post(**overrides) -> dict:
    data = {"name": "Office workstation", "kind": "desktop", "platforms": ["tws", "client_portal"],
            "validated_on": (TODAY() - timedelta(days=3)).isoformat(), "notes": "Under the desk, locked screen"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def key_post(**overrides) -> dict:
    data = {"label": "algo-futures", "scopes": ["read", "trade"], "service_account": "on", "ip_restricted": "on",
            "created_on": (TODAY() - timedelta(days=1)).isoformat(), "last_rotated_on": "", "expires_on": (TODAY() + timedelta(days=90)).isoformat(),
            "fingerprint": "7f3a"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def events(action: str):
    return list(AuditEvent.objects.filter(action=action))


# --- Adding and editing ------------------------------------------------------


def test_alice_adds_a_device_and_it_is_audited(alice, alice_client):
    response = alice_client.post("/devices/add/", device_post())
    assert response.status_code == 302 and response.url == "/devices/"
    device = TrustedDevice.objects.get(owner=alice)
    assert device.platforms == ["tws", "client_portal"]
    assert device.status == "active"
    [event] = events("device.created")
    assert event.actor == alice and event.subject == alice and event.object_label == "Office workstation"
    assert event.details["name"] == {"old": None, "new": "Office workstation"}


def test_device_edit_records_old_and_new_values(alice, alice_client):
    device = build.device(alice, platforms=("tws",), validated_on=TODAY() - timedelta(days=3), notes="Under the desk, locked screen")
    response = alice_client.post(f"/devices/{device.pk}/edit/", device_post(name="Trading desk", platforms=["tws"]))
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.name == "Trading desk"
    [event] = events("device.updated")
    assert event.details["name"] == {"old": "Office workstation", "new": "Trading desk"}
    assert "platforms" not in event.details and "kind" not in event.details  # unchanged fields are not listed


def test_form_pages_use_checkboxes_and_date_inputs(alice_client):
    html = alice_client.get("/devices/add/").content.decode()
    assert 'type="checkbox" name="platforms"' in html
    assert 'type="date" name="validated_on"' in html
    html = alice_client.get("/keys/add/").content.decode()
    assert 'type="checkbox" name="scopes"' in html
    assert 'type="date" name="expires_on"' in html


def test_duplicate_device_name_is_an_error_on_the_field(alice, alice_client):
    build.device(alice)
    response = alice_client.post("/devices/add/", device_post())
    assert response.status_code == 200
    assert "You already have a trusted device with this name" in response.context["form"].errors["name"][0]
    assert TrustedDevice.objects.filter(owner=alice).count() == 1


def test_bob_may_use_the_same_name_as_alice(alice, bob_client):
    build.device(alice)
    assert bob_client.post("/devices/add/", device_post()).status_code == 302


def test_validated_on_in_the_future_is_refused(alice, alice_client):
    response = alice_client.post("/devices/add/", device_post(validated_on=(TODAY() + timedelta(days=1)).isoformat()))
    assert response.status_code == 200
    assert "in the future" in response.context["form"].errors["validated_on"][0]
    assert not TrustedDevice.objects.exists()


def test_last_verified_on_in_the_future_is_refused(alice, alice_client):
    response = alice_client.post("/recovery/add/", {"kind": "phone", "label": "+1 212 555 0142", "last_verified_on": (TODAY() + timedelta(days=2)).isoformat()})
    assert "in the future" in response.context["form"].errors["last_verified_on"][0]
    assert not RecoveryMethod.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "toaster"), ("platforms", ["telnet"]), ("name", ""), ("validated_on", "2026-02-30"), ("name", "x" * 101)],
)
def test_device_field_rules(alice_client, field, value):
    response = alice_client.post("/devices/add/", device_post(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not TrustedDevice.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("scopes", ["admin"]), ("created_on", ""), ("label", ""), ("expires_on", "2026-13-01"),
     ("last_rotated_on", (date.today() + timedelta(days=3)).isoformat())],
)
def test_key_field_rules(alice_client, field, value):
    response = alice_client.post("/keys/add/", key_post(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_recovery_kind_must_be_known(alice_client):
    response = alice_client.post("/recovery/add/", {"kind": "carrier_pigeon", "label": "Coop", "last_verified_on": ""})
    assert "kind" in response.context["form"].errors


def test_automation_on_auth_failure_must_be_known(alice_client):
    response = alice_client.post("/automations/add/", {"name": "Bot", "on_auth_failure": "panic"})
    assert "on_auth_failure" in response.context["form"].errors


def test_errors_are_shown_next_to_the_field(alice_client):
    html = alice_client.post("/devices/add/", device_post(kind="toaster")).content.decode()
    assert 'id="id_kind_error"' in html


def test_key_fingerprint_longer_than_4_is_refused(alice_client):
    response = alice_client.post("/keys/add/", key_post(fingerprint="7f3a9"))
    assert response.status_code == 200
    message = response.context["form"].errors["fingerprint"][0]
    assert "Enter only the last 4 characters" in message and "never stores secrets" in message
    assert not ApiKey.objects.exists()


def test_a_whole_key_pasted_into_the_fingerprint_asks_for_the_last_4_characters(alice_client):
    response = alice_client.post("/keys/add/", key_post(fingerprint="sk_live_51HqLyjWDarjtT1zdp7dcXGHfJ8kq2mN4"))
    (message,) = response.context["form"].errors["fingerprint"]
    assert message.startswith("That looks like the whole key. Enter only the last 4 characters")
    assert "describe where it is kept" not in message and not ApiKey.objects.exists()


def test_automation_key_choices_are_limited_to_the_owners_keys(alice, bob, alice_client):
    mine = build.api_key(alice)
    theirs = build.api_key(bob, label="bobs-key")
    form = alice_client.get("/automations/add/").context["form"]
    assert list(form.fields["api_key"].queryset) == [mine]
    response = alice_client.post("/automations/add/", {"name": "Bot", "api_key": theirs.pk, "on_auth_failure": "flatten"})
    assert "api_key" in response.context["form"].errors
    assert not Automation.objects.exists()


def test_alice_adds_an_automation_using_her_key(alice, alice_client):
    key = build.api_key(alice)
    response = alice_client.post("/automations/add/", {"name": "ES spread bot", "api_key": key.pk, "token_refresh": "on",
                                                       "fallback_contact": "desk lead phone", "on_auth_failure": "flatten"})
    assert response.status_code == 302
    automation = Automation.objects.get(owner=alice)
    assert automation.api_key == key and automation.status == "active"
    assert events("automation.created")[0].details["api_key"] == {"old": None, "new": "algo-futures"}


# --- One-click actions ---------------------------------------------------------


def test_report_lost_marks_the_device_and_tells_alice_to_revoke_it(alice, alice_client):
    device = build.device(alice)
    # One click is not enough: the page asks, and says what to do at the broker.
    asked = alice_client.post(f"/devices/{device.pk}/lost/")
    device.refresh_from_db()
    assert asked.status_code == 200 and device.status == "active"
    assert any("Secure Login System" in step for step in build.texts(asked.content, "confirm-steps"))
    response = alice_client.post(f"/devices/{device.pk}/lost/", {"confirmed": "yes"}, follow=True)
    device.refresh_from_db()
    assert device.status == "lost"
    assert any("Revoke it at your broker now" in str(m) for m in response.context["messages"])
    [event] = events("device.reported_lost")
    assert event.details == {"status": {"old": "active", "new": "lost"}}


def test_a_lost_device_can_be_marked_found_or_revoked_from_the_row_and_the_edit_form(alice, alice_client):
    device = build.device(alice, status="lost", validated_on=TODAY() - timedelta(days=20))
    [row] = build.list_rows(alice_client.get("/devices/").content)
    assert row["tag"] == ["Lost"]
    edit = alice_client.get(f"/devices/{device.pk}/edit/")
    assert [label for label, _ in edit.context["status_actions"]] == ["Mark found", "Mark revoked"]
    alice_client.post(f"/devices/{device.pk}/found/")
    device.refresh_from_db()
    # Active again, but to be validated before it counts.
    assert (device.status, device.validated_on) == ("active", None)
    [row] = build.list_rows(alice_client.get("/devices/").content)
    assert "Device 'Office workstation' has never been validated" in row["findings"]


def test_mark_revoked_and_validated_today(alice, alice_client):
    device = build.device(alice, validated_on=None)
    alice_client.post(f"/devices/{device.pk}/revoked/")
    device.refresh_from_db()
    assert device.status == "revoked"
    alice_client.post(f"/devices/{device.pk}/validated/")
    device.refresh_from_db()
    assert device.validated_on == TODAY() and device.status == "active"
    assert {e.action for e in AuditEvent.objects.all()} >= {"device.revoked", "device.validated"}


def test_recovery_verified_today(alice, alice_client):
    method = build.recovery(alice, verified_on=date(2025, 1, 1))
    alice_client.post(f"/recovery/{method.pk}/verified/")
    method.refresh_from_db()
    assert method.last_verified_on == TODAY()
    [event] = events("recovery.verified")
    # The audit trail is read by desk leads too: the number stays masked.
    assert event.object_label == "+1 *** *** 0142"


def test_key_rotated_today_and_revoke(alice, alice_client):
    key = build.api_key(alice)
    alice_client.post(f"/keys/{key.pk}/rotated/")
    key.refresh_from_db()
    assert key.last_rotated_on == TODAY()
    alice_client.post(f"/keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.status == "revoked"
    assert events("key.revoked")[0].details == {"status": {"old": "active", "new": "revoked"}}


def test_automation_pause_and_resume(alice, alice_client):
    automation = build.automation(alice)
    alice_client.post(f"/automations/{automation.pk}/pause/")
    automation.refresh_from_db()
    assert automation.status == "paused"
    alice_client.post(f"/automations/{automation.pk}/resume/")
    automation.refresh_from_db()
    assert automation.status == "active"


def test_one_click_action_asks_for_confirmation_on_get(alice, alice_client):
    automation = build.automation(alice)
    response = alice_client.get(f"/automations/{automation.pk}/pause/")
    assert response.status_code == 200 and b"Pause" in response.content
    automation.refresh_from_db()
    assert automation.status == "active"


def test_delete_confirms_on_get_and_deletes_on_post(alice, alice_client):
    device = build.device(alice)
    assert alice_client.get(f"/devices/{device.pk}/delete/").status_code == 200
    assert TrustedDevice.objects.filter(pk=device.pk).exists()
    alice_client.post(f"/devices/{device.pk}/delete/")
    assert not TrustedDevice.objects.filter(pk=device.pk).exists()
    assert events("device.deleted")[0].object_label == "Office workstation"


def test_a_key_in_use_cannot_be_deleted(alice, alice_client):
    key = build.api_key(alice)
    build.automation(alice, key=key)
    response = alice_client.post(f"/keys/{key.pk}/delete/", follow=True)
    assert "is used by ES spread bot" in response.content.decode()
    assert ApiKey.objects.filter(pk=key.pk).exists()
    assert not events("key.deleted")


def test_each_delete_is_audited(alice, alice_client):
    method, key, automation = build.recovery(alice), build.api_key(alice, label="spare"), build.automation(alice)
    alice_client.post(f"/recovery/{method.pk}/delete/")
    alice_client.post(f"/automations/{automation.pk}/delete/")
    alice_client.post(f"/keys/{key.pk}/delete/")
    assert not RecoveryMethod.objects.exists() and not ApiKey.objects.exists() and not Automation.objects.exists()
    assert {e.action for e in AuditEvent.objects.all()} >= {"recovery.deleted", "key.deleted", "automation.deleted"}


# --- Step-up ---------------------------------------------------------------------

STEP_UP_URLS = [
    ("device", "/devices/{pk}/delete/"),
    ("device", "/devices/{pk}/lost/"),
    ("recovery", "/recovery/{pk}/delete/"),
    ("key", "/keys/{pk}/delete/"),
    ("key", "/keys/{pk}/revoke/"),
    ("key", "/keys/{pk}/edit/"),
    ("automation", "/automations/{pk}/delete/"),
]


@pytest.mark.parametrize(("kind", "url"), STEP_UP_URLS)
def test_sensitive_actions_need_a_fresh_second_factor(alice, stale_mfa, kind, url):
    obj = {"device": build.device, "recovery": build.recovery, "key": build.api_key, "automation": build.automation}[kind](alice)
    before = AuditEvent.objects.count()
    target = url.format(pk=obj.pk)
    response = stale_mfa.post(target, key_post(label="renamed") if kind == "key" else {})
    assert response.status_code == 302
    assert response.url.startswith("/accounts/mfa/confirm/?next=")
    assert target.replace("/", "%2F") in response.url
    assert type(obj).objects.filter(pk=obj.pk).exists()
    fresh = type(obj).objects.get(pk=obj.pk)
    assert [getattr(fresh, f.attname) for f in fresh._meta.concrete_fields] == [getattr(obj, f.attname) for f in obj._meta.concrete_fields]
    assert AuditEvent.objects.count() == before


def test_adding_a_key_needs_a_fresh_second_factor(stale_mfa):
    response = stale_mfa.post("/keys/add/", key_post())
    assert response.url.startswith("/accounts/mfa/confirm/")
    assert not ApiKey.objects.exists()


def test_import_confirm_needs_a_fresh_second_factor(stale_mfa):
    assert stale_mfa.get("/inventory/import/confirm/").url.startswith("/accounts/mfa/confirm/")


@pytest.mark.parametrize(
    "path",
    ["/devices/add/", "/devices/{device}/edit/", "/devices/{device}/validated/", "/devices/{device}/revoked/",
     "/recovery/add/", "/keys/add/", "/keys/{key}/rotated/"],
)
def test_changes_to_devices_recovery_and_keys_need_a_recent_second_factor(alice, stale_mfa, path):
    """SECURITY.md 16: devices, recovery methods and API-key records."""
    device = build.device(alice)
    key = ApiKey.objects.create(owner=alice, label="algo", created_on=date(2026, 10, 1))
    url = path.format(device=device.pk, key=key.pk)
    response = stale_mfa.post(url, {})
    assert response.status_code == 302 and response.url.startswith("/accounts/mfa/confirm/")
    before = (device.status, device.validated_on)
    device.refresh_from_db()
    key.refresh_from_db()
    assert (device.status, device.validated_on) == before
    assert key.last_rotated_on is None and TrustedDevice.objects.count() == 1


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/devices/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


# --- CSRF --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/devices/add/", "/devices/{pk}/lost/", "/devices/{pk}/delete/"])
def test_state_changes_need_a_csrf_token(alice, path):
    device = build.device(alice)
    client = verify_client(Client(enforce_csrf_checks=True), alice)
    url = path.format(pk=device.pk)
    data = device_post(name="Laptop") if "add" in path else {"confirmed": "yes"}
    assert client.post(url, data).status_code == 403
    device.refresh_from_db()
    assert device.status == "active" and TrustedDevice.objects.count() == 1
    client.get(url)  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post(url, {**data, "csrfmiddlewaretoken": token}).status_code == 302


# --- Lists: masking, warnings, empty states, query budget ------------------------------


def test_recovery_list_masks_phone_and_email(alice, alice_client):
    build.recovery(alice, label="+1 212 555 0142")
    build.recovery(alice, kind="email", label="alice.backup@example.com")
    html = alice_client.get("/recovery/").content.decode()
    assert "+1 *** *** 0142" in html and "a***@example.com" in html
    assert "212 555" not in html and "alice.backup" not in html


def test_the_owners_edit_form_shows_the_label_unmasked(alice, alice_client):
    method = build.recovery(alice)
    assert "+1 212 555 0142" in alice_client.get(f"/recovery/{method.pk}/edit/").content.decode()


def test_key_warnings(alice, alice_client):
    money = build.api_key(alice, label="money-key", scopes=["read", "withdraw"], ip_restricted=False, expires_on=TODAY() + timedelta(days=5))
    build.automation(alice, key=money)
    build.api_key(alice, label="old-key", expires_on=TODAY() - timedelta(days=1))
    rows = {row["name"]: row for row in build.list_rows(alice_client.get("/keys/").content)}
    assert rows["money-key"]["findings"] == ["API key 'money-key' has the withdraw scope; remove it from the key"]
    assert rows["money-key"]["tag"] == ["Moves money"]
    expired_on = (TODAY() - timedelta(days=1)).isoformat()
    assert rows["old-key"] == {"name": "old-key", "tag": ["Expired"], "findings": [f"API key 'old-key' expired on {expired_on}"]}


def test_automation_on_the_human_login_is_flagged(alice, alice_client):
    build.automation(alice)
    [row] = build.list_rows(alice_client.get("/automations/").content)
    assert row["tag"] == ["Human login"]
    assert row["findings"] == [
        "Automation 'ES spread bot' runs on your human login",
        "Automation 'ES spread bot' has no heartbeat; nobody would notice if its login died",
    ]


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("/devices/", "Validate several trusted devices in advance"),
        ("/recovery/", "Keep your phone and backup e-mail current"),
        ("/keys/", "never give an automation the human login"),
        ("/automations/", "Bots need token-refresh logic"),
    ],
)
def test_empty_states_explain_why_it_matters(alice_client, url, sentence):
    html = alice_client.get(url).content.decode()
    assert sentence in html
    assert 'class="card empty' in html


def _fill(owner, count: int) -> None:
    for i in range(count):
        build.device(owner, name=f"Device {i}")
        build.recovery(owner, label=f"+1 212 555 {1000 + i}")
        key = build.api_key(owner, label=f"key-{i}")
        build.automation(owner, f"Bot {i}", key=key if i % 2 else None)


@pytest.mark.parametrize("url", ["/devices/", "/recovery/", "/keys/", "/automations/"])
def test_list_pages_run_a_fixed_number_of_queries(alice, alice_client, django_assert_max_num_queries, url):
    _fill(alice, 1)
    alice_client.get(url)  # warm up session bookkeeping
    with CaptureQueriesContext(connection) as one:
        assert alice_client.get(url).status_code == 200
    Automation.objects.all().delete()
    ApiKey.objects.all().delete()
    TrustedDevice.objects.all().delete()
    RecoveryMethod.objects.all().delete()
    _fill(alice, 30)
    with django_assert_max_num_queries(len(one)):
        assert alice_client.get(url).status_code == 200
    # Session and user (3), the page's own list and prefetch (2), the findings snapshot (the whole
    # inventory, as the dashboard reads it: 9), its session row, and on the devices page the
    # trader's broker (for its access-point names).
    with django_assert_max_num_queries(16):
        alice_client.get(url)


def test_a_changed_number_is_audited_even_when_it_masks_the_same(alice, alice_client):
    method = build.recovery(alice, label="+1 212 555 0142", verified_on=TODAY())
    alice_client.post(f"/recovery/{method.pk}/edit/", {"kind": "phone", "label": "+1 917 555 0142", "last_verified_on": TODAY().isoformat()})
    [event] = events("recovery.updated")
    assert event.details == {"label": {"old": "+1 *** *** 0142", "new": "+1 *** *** 0142"}}


def test_a_name_taken_between_check_and_save_is_a_field_error(alice, alice_client, monkeypatch):
    from django.db import IntegrityError

    from devices import services

    def clash(**kwargs):
        raise IntegrityError("device_name_unique_per_owner")

    monkeypatch.setattr(services, "device_create", clash)
    response = alice_client.post("/devices/add/", device_post())
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["You already have a trusted device with this name. Choose another."]
