"""The inventory file (INVENTORY.md): export, import, the commands and the
upload pages."""

from __future__ import annotations

import copy
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AuditEvent
from checklist.views import PENDING_IMPORT
from devices.inventory import FORMAT, InventoryInvalid, dumps, export_inventory, load, replace_inventory
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, RecoveryMethod, TradingProfile, TrustedDevice
from tests import builders as build

pytestmark = pytest.mark.django_db


def today_plus(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def minimal_document() -> dict:
    """Every section present, every list empty."""
    return {
        "format": FORMAT,
        "profile": {
            "broker": "IBKR",
            "broker_mfa": None,
            "regions_traded": [],
            "products_traded": [],
            "support_contact": "",
            "interface_plan": {"complex_orders": None, "transfers_statements": None, "alerts_light_execution": None},
        },
        "devices": [],
        "recovery_methods": [],
        "api_keys": [],
        "automations": [],
        "subscriptions": [],
        "drills": [],
        "accepted_risks": [],
        "permissions": [],
    }


def rich_document() -> dict:
    """Several rows per section, nulls, unicode, and the order export produces."""
    return {
        "format": FORMAT,
        "profile": {
            "broker": "IBKR",
            "broker_mfa": "ib_key",
            "regions_traded": ["US", "HK", "EU"],
            "products_traded": ["stocks", "options"],
            "support_contact": "IBKR Client Services, see ibkr.com/support",
            "interface_plan": {"complex_orders": "tws", "transfers_statements": "client_portal", "alerts_light_execution": None},
        },
        "devices": [
            {"name": "Home laptop", "kind": "laptop", "platforms": ["desktop", "client_portal"], "validated_on": None,
             "status": "revoked", "browser_saved_password": True, "notes": ""},
            {"name": "iPhone", "kind": "mobile", "platforms": [], "validated_on": "2026-10-12", "status": "lost",
             "browser_saved_password": False, "notes": "Left in a taxi"},
            {"name": "Office workstation", "kind": "desktop", "platforms": ["tws", "client_portal"], "validated_on": "2026-09-01",
             "status": "active", "browser_saved_password": False, "notes": "Desk 4, locked office"},
            {"name": "Zürich tablet", "kind": "tablet", "platforms": ["mobile"], "validated_on": "2026-01-02", "status": "active",
             "browser_saved_password": False, "notes": ""},
        ],
        "recovery_methods": [
            {"kind": "phone", "label": "+1 *** *** 0142", "last_verified_on": "2026-08-10"},
            {"kind": "phone", "label": "+41 79 123 45 67", "last_verified_on": None},
            {"kind": "email", "label": "alice.backup@example.com", "last_verified_on": "2026-11-01"},
            {"kind": "backup_codes", "label": "Printed, desk safe", "last_verified_on": "2026-06-30"},
            {"kind": "hardware_key", "label": "YubiKey 5 NFC", "last_verified_on": None},
        ],
        "api_keys": [
            {"label": "algo-futures", "scopes": ["read", "trade"], "service_account": True, "created_on": "2026-10-01",
             "last_rotated_on": None, "expires_on": "2027-01-01", "status": "active", "fingerprint": "7f3a", "ip_restricted": True},
            {"label": "legacy", "scopes": ["read", "trade", "transfer", "withdraw"], "service_account": False, "created_on": "2025-01-15",
             "last_rotated_on": "2025-06-01", "expires_on": None, "status": "revoked", "fingerprint": "", "ip_restricted": False},
            {"label": "options-mm", "scopes": [], "service_account": True, "created_on": "2026-11-20",
             "last_rotated_on": "2026-11-21", "expires_on": "2026-12-01", "status": "active", "fingerprint": "x9", "ip_restricted": False},
        ],
        "automations": [
            {"name": "Calendar roller", "api_key": None, "token_refresh": False, "fallback_contact": "", "on_auth_failure": "none", "status": "paused",
             "heartbeat": None},
            {"name": "ES spread bot", "api_key": "algo-futures", "token_refresh": True, "fallback_contact": "desk lead phone",
             "on_auth_failure": "flatten", "status": "active", "heartbeat": {"period_minutes": 5, "grace_minutes": 2}},
            {"name": "Vol harvester", "api_key": "algo-futures", "token_refresh": True, "fallback_contact": "ops pager",
             "on_auth_failure": "halt", "status": "active", "heartbeat": None},
        ],
        "subscriptions": [
            {"region": "US", "feed": "US equities bundle", "active": True},
            {"region": "US", "feed": "US options (OPRA)", "active": False},
            {"region": "HK", "feed": "HKEX level 1", "active": True},
        ],
        "drills": [
            {"started_at": "2026-08-01T09:00:00Z", "finished_at": None, "lost_device": "iPhone", "completed": False},
            {"started_at": "2026-11-01T09:00:00Z", "finished_at": "2026-11-01T09:18:00Z", "lost_device": "Office workstation", "completed": True},
            {"started_at": "2026-11-01T09:00:00Z", "finished_at": "2026-11-01T09:47:30.250000Z", "lost_device": "Home laptop", "completed": True},
        ],
        "accepted_risks": [
            {"rule": "credentials.rotation", "reason": "Legacy key retires with the old desk", "until": today_plus(30)},
            {"rule": "marketdata.covered", "reason": "HK positions closed until January", "until": today_plus(90)},
        ],
        "permissions": [
            {"product": "stocks", "region": "US", "status": "granted", "requested_on": None},
            {"product": "options", "region": "HK", "status": "pending", "requested_on": "2026-11-28"},
        ],
    }


V2_DEFAULTS = {"profile": {"products_traded": [], "support_contact": ""}, "devices": {"notes": ""}, "automations": {"heartbeat": None}}


def as_v1(document: dict) -> dict:
    """The same inventory written as a gatecheck.inventory/1 file."""
    v1 = json.loads(json.dumps(document))
    v1["format"] = "gatecheck.inventory/1"
    for key in V2_DEFAULTS["profile"]:
        v1["profile"].pop(key)
    for device in v1["devices"]:
        device.pop("notes")
    for bot in v1["automations"]:
        bot.pop("heartbeat")
    v1.pop("permissions")
    return v1


def import_document(user, document: dict) -> None:
    replace_inventory(user=user, plan=load(json.dumps(document)))


def stored(user) -> str:
    """The stored inventory, byte for byte, as export prints it."""
    return dumps(export_inventory(user))


# --- Round trip --------------------------------------------------------------------


@pytest.mark.parametrize("make", [rich_document, minimal_document], ids=["rich", "empty"])
def test_export_import_export_is_identical(alice, make):
    document = make()
    import_document(alice, document)
    first = stored(alice)
    assert json.loads(first) == document
    import_document(alice, json.loads(first))
    assert stored(alice) == first


def test_an_inventory_built_in_the_pages_round_trips(alice):
    """Rows saved in any order (and with ties) export in a stable order."""
    today = timezone.localdate()
    ApiKey.objects.create(owner=alice, label="zeta", created_on=today, scopes=["trade", "read"])
    key = ApiKey.objects.create(owner=alice, label="alpha", created_on=today)
    Automation.objects.create(owner=alice, name="b-bot", api_key=key)
    Automation.objects.create(owner=alice, name="a-bot")
    RecoveryMethod.objects.create(owner=alice, kind="email", label="b@example.com")
    RecoveryMethod.objects.create(owner=alice, kind="phone", label="+1 212 555 0142")
    started = datetime(2026, 11, 2, 8, 0, 0, 123456, tzinfo=UTC)
    Drill.objects.create(owner=alice, lost_device="Phone", started_at=started, finished_at=started + timedelta(minutes=9), completed=True)
    Drill.objects.create(owner=alice, lost_device="Laptop", started_at=started)
    first = stored(alice)
    document = json.loads(first)
    assert [k["label"] for k in document["api_keys"]] == ["alpha", "zeta"]
    assert [m["kind"] for m in document["recovery_methods"]] == ["phone", "email"]
    assert document["drills"][0]["started_at"] == "2026-11-02T08:00:00.123456Z"
    import_document(alice, document)
    assert stored(alice) == first


def test_export_without_any_inventory(alice):
    assert export_inventory(alice) == minimal_document()


def test_export_has_the_documented_key_order(alice):
    import_document(alice, rich_document())
    document = export_inventory(alice)
    assert list(document) == [
        "format", "profile", "devices", "recovery_methods", "api_keys", "automations", "subscriptions", "drills", "accepted_risks", "permissions",
    ]
    assert list(document["api_keys"][0]) == [
        "label", "scopes", "service_account", "created_on", "last_rotated_on", "expires_on", "status", "fingerprint", "ip_restricted",
    ]
    assert list(document["profile"]) == ["broker", "broker_mfa", "regions_traded", "products_traded", "support_contact", "interface_plan"]


def test_import_replaces_only_the_given_users_inventory(alice, bob):
    import_document(bob, rich_document())
    bobs = stored(bob)
    import_document(alice, rich_document())
    import_document(alice, minimal_document())
    assert stored(bob) == bobs
    assert not TrustedDevice.objects.filter(owner=alice).exists()


def test_the_support_contact_travels_in_the_file_and_a_v1_file_gets_the_default(alice):
    TradingProfile.objects.create(owner=alice, support_contact="IBKR desk +1 877 442 2757")
    import_document(alice, rich_document())
    assert TradingProfile.objects.get(owner=alice).support_contact == "IBKR Client Services, see ibkr.com/support"
    import_document(alice, as_v1(rich_document()))
    assert TradingProfile.objects.get(owner=alice).support_contact == ""


def test_import_links_automations_to_the_files_keys(alice):
    import_document(alice, rich_document())
    bot = Automation.objects.get(owner=alice, name="ES spread bot")
    assert bot.api_key.label == "algo-futures" and bot.api_key.owner == alice
    assert Automation.objects.get(owner=alice, name="Calendar roller").api_key is None


def test_optional_fields_may_be_left_out(alice):
    document = minimal_document()
    del document["profile"]["interface_plan"]
    document["api_keys"] = [{"label": "k", "scopes": [], "service_account": True, "created_on": "2026-10-01",
                             "last_rotated_on": None, "expires_on": None, "status": "active", "fingerprint": "1234"}]
    import_document(alice, document)
    assert ApiKey.objects.get(owner=alice).ip_restricted is False


def test_timestamps_with_an_offset_are_stored_in_utc(alice):
    document = minimal_document()
    document["drills"] = [{"started_at": "2026-11-01T10:00:00+01:00", "finished_at": "2026-11-01T10:20:00+01:00", "lost_device": "Phone", "completed": True}]
    import_document(alice, document)
    assert export_inventory(alice)["drills"][0]["started_at"] == "2026-11-01T09:00:00Z"


def test_import_is_audited_with_counts(alice):
    import_document(alice, rich_document())
    event = AuditEvent.objects.get(action="inventory.imported")
    assert event.subject == alice
    assert event.details["counts"]["devices"] == 4 and event.details["counts"]["automations"] == 3


# --- Refusals ------------------------------------------------------------------------


def _broken(mutate) -> dict:
    document = rich_document()
    mutate(document)
    return document


REFUSALS = {
    "unknown value": (_broken(lambda d: d["devices"][0].update(kind="phone")), "devices[0].kind: unknown value"),
    "duplicate label": (_broken(lambda d: d["api_keys"][1].update(label="algo-futures")), "api_keys[1].label: You already have an API key with this label."),
    "dangling key": (_broken(lambda d: d["automations"][1].update(api_key="nope")), "automations[1].api_key: names no key"),
    "secret fingerprint": (_broken(lambda d: d["api_keys"][0].update(fingerprint="7f3a9c")), "api_keys[0].fingerprint: looks like a full secret"),
    "unknown scope": (_broken(lambda d: d["api_keys"][0]["scopes"].append("admin")), "api_keys[0].scopes[2]: unknown value"),
    "duplicate device": (_broken(lambda d: d["devices"].append(dict(d["devices"][0]))), "devices[4].name: You already have a trusted device"),
    "duplicate feed": (_broken(lambda d: d["subscriptions"].append(dict(d["subscriptions"][0]))), "subscriptions[3].feed: You already have a feed with"),
    "unknown region": (_broken(lambda d: d["profile"]["regions_traded"].append("MARS")), "profile.regions_traded[3]: unknown value"),
    "unknown mfa": (_broken(lambda d: d["profile"].update(broker_mfa="carrier pigeon")), "profile.broker_mfa: unknown value"),
    "unknown task": (_broken(lambda d: d["profile"]["interface_plan"].update(options="tws")), "profile.interface_plan.options: is not a known field"),
    "bad date": (_broken(lambda d: d["devices"][2].update(validated_on="01/09/2026")), "devices[2].validated_on: must be a date"),
    "naive timestamp": (_broken(lambda d: d["drills"][1].update(started_at="2026-11-01T09:00:00")), "drills[1].started_at: must be an ISO 8601 timestamp"),
    "completed without finish": (_broken(lambda d: d["drills"][1].update(finished_at=None)), "drills[1].finished_at: is required for a completed drill"),
    "finish before start": (_broken(lambda d: d["drills"][1].update(finished_at="2026-11-01T08:00:00Z")), "drills[1].finished_at: is before started_at"),
    # Built when the test runs: "91 days away" counts from that day (a run may cross midnight).
    "risk too far": (lambda: _broken(lambda d: d["accepted_risks"][0].update(until=today_plus(91))), "accepted_risks[0].until: is more than 90 days away"),
    "unknown rule": (_broken(lambda d: d["accepted_risks"][0].update(rule="vibes.good")), "accepted_risks[0].rule: unknown value"),
    "empty reason": (_broken(lambda d: d["accepted_risks"][0].update(reason=" ")), "accepted_risks[0].reason: must not be empty"),
    "secret in free text": (
        _broken(lambda d: d["automations"][1].update(fallback_contact="password=hunter2")),
        "automations[1].fallback_contact: This looks like",
    ),
    "number as bool": (_broken(lambda d: d["devices"][0].update(browser_saved_password=1)), "devices[0].browser_saved_password: must be true or false"),
    "missing field": (_broken(lambda d: d["recovery_methods"][0].pop("last_verified_on")), "recovery_methods[0].last_verified_on: is required"),
    "unknown field": (_broken(lambda d: d["api_keys"][0].update(secret="x")), "api_keys[0].secret: is not a known field"),
    "missing section": (_broken(lambda d: d.pop("drills")), "drills: is required"),
    "wrong format": (_broken(lambda d: d.update(format="gatecheck.inventory/3")), "format: must be"),
    "list expected": (_broken(lambda d: d.update(devices={})), "devices: must be a list"),
}


@pytest.fixture
def alice_with_inventory(alice):
    import_document(alice, rich_document())
    return alice


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_refused_document_names_the_path_and_changes_nothing(alice_with_inventory, case, tmp_path):
    document, expected = REFUSALS[case]
    document = document() if callable(document) else document
    before = stored(alice_with_inventory)
    events = AuditEvent.objects.count()
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError) as refused:
        call_command("import_inventory", "--user", "alice", str(path))
    assert expected in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    assert stored(alice_with_inventory) == before
    assert AuditEvent.objects.count() == events


def test_bad_json_is_refused_and_changes_nothing(alice_with_inventory, tmp_path):
    before = stored(alice_with_inventory)
    path = tmp_path / "inventory.json"
    path.write_text('{"format": "gatecheck.inventory/1", "devices": [,]}')
    with pytest.raises(CommandError, match=r"document: is not valid JSON: .* at line 1, column"):
        call_command("import_inventory", "--user", "alice", str(path))
    assert stored(alice_with_inventory) == before


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"format": NaN}', "[]", "\xff\xfe", ""])
def test_other_unreadable_documents_are_refused(alice, text):
    with pytest.raises(InventoryInvalid):
        load(text.encode("latin-1"))


def test_every_problem_is_listed_at_once(alice):
    document = rich_document()
    document["devices"][0]["kind"] = "phone"
    document["api_keys"][0]["fingerprint"] = "0123456789abcdef"
    document["automations"][1]["api_key"] = "missing"
    with pytest.raises(InventoryInvalid) as refused:
        load(json.dumps(document))
    assert [str(p).split(":")[0] for p in refused.value.problems] == ["devices[0].kind", "api_keys[0].fingerprint", "automations[1].api_key"]


def test_problems_never_quote_the_refused_value(alice):
    document = rich_document()
    document["devices"][0]["kind"] = "hunter2-secret-kind"
    document["automations"][1]["api_key"] = "sk_live_51H8xYzAbCdEf0123456789"
    with pytest.raises(InventoryInvalid) as refused:
        load(json.dumps(document))
    assert "hunter2" not in str(refused.value) and "sk_live" not in str(refused.value)


def test_an_accepted_risk_may_run_exactly_90_days(alice):
    document = minimal_document()
    document["accepted_risks"] = [{"rule": "drill.rehearsed", "reason": "New desk", "until": today_plus(90)}]
    import_document(alice, document)
    assert AcceptedRisk.objects.get(owner=alice).until == timezone.localdate() + timedelta(days=90)


def test_an_imported_unfinished_drill_is_not_left_running(alice):
    import_document(alice, rich_document())
    drill = Drill.objects.get(owner=alice, lost_device="iPhone")
    assert drill.finished_at is None and not drill.completed and drill.abandoned_at is not None


# --- Commands --------------------------------------------------------------------------


def test_export_command_prints_the_document(alice_with_inventory, capsys):
    call_command("export_inventory", "--user", "alice")
    out = capsys.readouterr().out
    assert out == stored(alice_with_inventory)
    assert json.loads(out)["format"] == FORMAT


def test_import_command_reads_a_file(alice, tmp_path, capsys):
    path = tmp_path / "inventory.json"
    path.write_text(dumps(rich_document()))
    call_command("import_inventory", "--user", "Alice", str(path))
    assert "devices 4" in capsys.readouterr().out
    assert stored(alice) == dumps(rich_document())


def test_import_command_reads_standard_input(alice, monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(dumps(rich_document()).encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    call_command("import_inventory", "--user", "alice", "-")
    assert stored(alice) == dumps(rich_document())


def test_commands_refuse_an_unknown_user(db, tmp_path):
    with pytest.raises(CommandError, match="No user"):
        call_command("export_inventory", "--user", "nobody")
    with pytest.raises(CommandError, match="No user"):
        call_command("import_inventory", "--user", "nobody", str(tmp_path / "x.json"))


def test_import_command_reports_an_unreadable_file(alice, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_inventory", "--user", "alice", str(Path(tmp_path) / "missing.json"))


def test_import_command_exits_non_zero(alice_with_inventory, tmp_path, monkeypatch, capsys):
    from django.db import connections

    from devices.management.commands.import_inventory import Command

    before = stored(alice_with_inventory)
    path = tmp_path / "inventory.json"
    path.write_text("{nope")
    # run_from_argv closes the connections when it ends; the test's transaction needs them.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "import_inventory", "--user", "alice", str(path)])
    assert exited.value.code != 0
    assert "document: is not valid JSON" in capsys.readouterr().err
    assert stored(alice_with_inventory) == before


# --- In the browser ------------------------------------------------------------------------


def upload(client, document_or_text):
    text = document_or_text if isinstance(document_or_text, str) else json.dumps(document_or_text)
    return client.post("/inventory/import/", {"file": SimpleUploadedFile("inventory.json", text.encode(), content_type="application/json")})


def test_download_is_a_json_attachment(alice_with_inventory, alice_client):
    response = alice_client.get("/inventory/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="gatecheck-inventory-alice-')
    assert response.content.decode() == stored(alice_with_inventory)
    assert AuditEvent.objects.filter(action="inventory.exported", subject=alice_with_inventory).exists()


def test_upload_preview_then_confirm_replaces_the_inventory(alice_with_inventory, alice_client):
    new = minimal_document()
    new["devices"] = [{"name": "New laptop", "kind": "laptop", "platforms": ["tws"], "validated_on": None, "status": "active", "browser_saved_password": False}]
    response = upload(alice_client, new)
    assert response.status_code == 302 and response.url == "/inventory/import/confirm/"
    # Nothing changes until confirmed; the file waits in the database session.
    assert TrustedDevice.objects.filter(owner=alice_with_inventory).count() == 4
    session = Session.objects.get(session_key=alice_client.session.session_key)
    assert "New laptop" in session.get_decoded()[PENDING_IMPORT]
    assert "New laptop" not in "".join(c.value for c in alice_client.cookies.values())

    preview = alice_client.get("/inventory/import/confirm/")
    rows = {row["key"]: (row["current"], row["new"]) for row in preview.context["rows"]}
    assert rows["devices"] == (4, 1) and rows["api_keys"] == (3, 0) and rows["automations"] == (3, 0)
    assert "Replace my inventory" in preview.content.decode()

    response = alice_client.post("/inventory/import/confirm/", {"action": "replace", "digest": preview.context["digest"]})
    assert response.status_code == 302
    assert list(TrustedDevice.objects.filter(owner=alice_with_inventory).values_list("name", flat=True)) == ["New laptop"]
    assert not ApiKey.objects.filter(owner=alice_with_inventory).exists()
    assert PENDING_IMPORT not in alice_client.session
    assert AuditEvent.objects.filter(action="inventory.imported", actor=alice_with_inventory).exists()


@pytest.mark.parametrize(
    "case",
    ["bad json", "unknown value", "duplicate label", "dangling key", "secret fingerprint"],
)
def test_an_invalid_upload_lists_its_problems_and_changes_nothing(alice_with_inventory, alice_client, case):
    documents = {
        "bad json": ('{"format": ', "document: is not valid JSON"),
        "unknown value": REFUSALS["unknown value"],
        "duplicate label": REFUSALS["duplicate label"],
        "dangling key": REFUSALS["dangling key"],
        "secret fingerprint": REFUSALS["secret fingerprint"],
    }
    document, expected = documents[case]
    before = stored(alice_with_inventory)
    response = upload(alice_client, document)
    assert response.status_code == 200
    html = response.content.decode()
    path, message = expected.split(": ", 1)
    assert f"<code>{path}</code>: {message}" in html
    assert "nothing changed" in html
    assert PENDING_IMPORT not in alice_client.session
    assert stored(alice_with_inventory) == before


def test_an_upload_with_several_problems_lists_them_all(alice_client):
    document = rich_document()
    document["devices"][0]["kind"] = "phone"
    document["api_keys"][0]["fingerprint"] = "0123456789"
    problems = upload(alice_client, document).context["problems"]
    assert [p.path for p in problems] == ["devices[0].kind", "api_keys[0].fingerprint"]


def test_cancel_forgets_the_pending_file(alice_with_inventory, alice_client):
    before = stored(alice_with_inventory)
    upload(alice_client, minimal_document())
    alice_client.post("/inventory/import/confirm/", {"action": "cancel"})
    assert PENDING_IMPORT not in alice_client.session
    assert stored(alice_with_inventory) == before


def test_confirm_refuses_a_file_other_than_the_one_previewed(alice_with_inventory, alice_client):
    before = stored(alice_with_inventory)
    upload(alice_client, minimal_document())
    digest = alice_client.get("/inventory/import/confirm/").context["digest"]
    other = copy.deepcopy(minimal_document())
    other["profile"]["broker"] = "OTHER"
    upload(alice_client, other)
    alice_client.post("/inventory/import/confirm/", {"action": "replace", "digest": digest})
    assert stored(alice_with_inventory) == before


def test_confirm_without_an_upload_goes_back_to_the_upload_page(alice_client):
    assert alice_client.get("/inventory/import/confirm/").url == "/inventory/import/"


def test_import_confirm_after_step_up_comes_back_to_the_preview(alice, stale_mfa):
    upload(stale_mfa, minimal_document())
    response = stale_mfa.post("/inventory/import/confirm/", {"action": "replace"})
    assert response.url == "/accounts/mfa/confirm/?next=%2Finventory%2Fimport%2Fconfirm%2F"
    assert PENDING_IMPORT in stale_mfa.session



def test_a_v1_file_still_imports_and_exports_as_v2_with_the_defaults(alice):
    v1 = as_v1(rich_document())
    import_document(alice, v1)
    exported = export_inventory(alice)
    assert exported["format"] == "gatecheck.inventory/2"
    expected = json.loads(json.dumps(v1))
    expected["format"] = "gatecheck.inventory/2"
    profile = {k: v for k, v in v1["profile"].items() if k != "interface_plan"}
    expected["profile"] = {**profile, **V2_DEFAULTS["profile"], "interface_plan": v1["profile"]["interface_plan"]}
    expected["devices"] = [{**d, **V2_DEFAULTS["devices"]} for d in v1["devices"]]
    expected["automations"] = [{**a, **V2_DEFAULTS["automations"]} for a in v1["automations"]]
    expected["permissions"] = []
    assert exported == expected


def test_v2_round_trips_notes_support_contact_products_and_permissions(alice):
    import_document(alice, rich_document())
    exported = export_inventory(alice)
    assert exported["profile"]["support_contact"] == "IBKR Client Services, see ibkr.com/support"
    assert [d["notes"] for d in exported["devices"]][1:3] == ["Left in a taxi", "Desk 4, locked office"]
    assert exported["permissions"] == rich_document()["permissions"]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda d: d["profile"].update(broker="SCHWAB", interface_plan={"complex_orders": None, "transfers_statements": None, "alerts_light_execution": None}),
         "profile.broker_mfa", "Charles Schwab does not offer this second factor"),
        (lambda d: d["profile"].update(broker="ALPACA", broker_mfa="authenticator_app"), "profile.interface_plan.complex_orders", "unknown value"),
        (lambda d: d["permissions"].append({"product": "stocks", "region": "US", "status": "pending", "requested_on": None}),
         "permissions[2].region", "listed twice"),
        (lambda d: d["permissions"].append({"product": "swaps", "region": "US", "status": "granted", "requested_on": None}),
         "permissions[2].product", "unknown value"),
        (lambda d: d["permissions"].append({"product": "bonds", "region": "MARS", "status": "granted", "requested_on": None}),
         "permissions[2].region", "unknown value"),
    ],
    ids=["mfa not offered", "platform not offered", "duplicate pair", "unknown product", "unknown region"],
)
def test_v2_broker_and_permission_rules_are_enforced_with_a_json_path(alice, mutate, path, message):
    document = rich_document()
    mutate(document)
    with pytest.raises(InventoryInvalid) as refused:
        load(json.dumps(document))
    assert any(p.path == path and message in p.message for p in refused.value.problems), refused.value.problems



def test_the_preview_lists_each_change_and_the_score_before_and_after(alice, alice_client):
    import_document(alice, rich_document())
    before = alice_client.get("/api/readiness/").json()["score"]
    changed = rich_document()
    changed["devices"] = [d for d in changed["devices"] if d["name"] != "iPhone"]  # removed
    changed["devices"][0]["notes"] = "Now in the cupboard"  # changed
    changed["subscriptions"].append({"region": "EU", "feed": "Eurex level 1", "active": True})  # added
    changed["recovery_methods"].append({"kind": "phone", "label": "+44 20 7946 0958", "last_verified_on": "2026-11-20"})
    upload(alice_client, changed)
    page = alice_client.get("/inventory/import/confirm/")
    preview = page.context["preview"]
    sections = {s.key: s for s in preview.sections}
    assert sections["devices"].removed == ["iPhone"] and sections["devices"].changed == [("Home laptop", ["Notes"])]
    assert sections["subscriptions"].added == ["Eurex level 1"]
    assert sections["recovery_methods"].added == ["+44 *** *** 0958"]  # masked, like everywhere
    assert sections["api_keys"].unchanged
    assert preview.score_before == before
    # The score after is what the stored inventory scores once confirmed.
    digest = page.context["digest"]
    alice_client.post("/inventory/import/confirm/", {"action": "replace", "digest": digest})
    assert alice_client.get("/api/readiness/").json()["score"] == preview.score_after
    assert "7946" not in " ".join(build.texts(page.content, "import-changes"))


def test_the_import_page_names_the_format_the_download_gives(alice_client):
    page = alice_client.get("/inventory/import/").content.decode()
    assert "<code>gatecheck.inventory/2</code> file" in page
    assert alice_client.get("/inventory/export/").json()["format"] == "gatecheck.inventory/2"


def test_the_preview_names_fields_by_label_and_confirming_lands_on_the_dashboard_with_both_scores(alice_with_inventory, alice_client):
    from devices.selectors import report_for

    before = report_for(alice_with_inventory, timezone.localdate()).score
    document = json.loads(stored(alice_with_inventory))
    document["profile"]["products_traded"] = ["options"]
    document["devices"][0]["browser_saved_password"] = not document["devices"][0]["browser_saved_password"]
    document["recovery_methods"] = []
    response = upload(alice_client, document)
    assert response.status_code == 302, response.content.decode()[-3000:]
    preview = alice_client.get("/inventory/import/confirm/").content.decode()
    assert "Changed</span> Products traded</li>" in preview and ": Password saved in the browser</li>" in preview
    assert "products_traded" not in preview and "browser_saved_password" not in preview

    digest = alice_client.get("/inventory/import/confirm/").context["digest"]
    response = alice_client.post("/inventory/import/confirm/", {"action": "replace", "digest": digest}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    after = report_for(alice_with_inventory, timezone.localdate())
    assert after.score != before
    assert f"Your score: {before} before, {after.score} now" in response.content.decode()
