"""Hostile and broken inventory files (issue 10): each is refused with a JSON
path and changes nothing, through the command and through the browser upload;
nothing answers 500 or prints a traceback. And the forms and the importer
refuse the same bad value with the same words (issue 8)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.http.request import HttpRequest
from django.utils import timezone

from accounts.models import AuditEvent
from checklist.views import PENDING_IMPORT
from devices.inventory import MAX_DEPTH, MAX_IMPORT_BYTES, MAX_ITEMS_PER_SECTION, MAX_PROBLEMS_SHOWN, InventoryInvalid, load
from tests.builders import texts
from tests.test_inventory import import_document, minimal_document, rich_document, stored

pytestmark = pytest.mark.django_db


def _future(days: int = 1) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def _with(mutate) -> str:
    document = rich_document()
    mutate(document)
    return json.dumps(document)


# (file text, the path of the problem, the start of its message)
HOSTILE = {
    "name is a list": (_with(lambda d: d["devices"][0].update(name=["a", "b"])), "devices[0].name", "must be a string"),
    "two names are lists": (
        _with(lambda d: [d["devices"][0].update(name=["a"]), d["devices"][1].update(name=["a"])]),
        "devices[0].name",
        "must be a string",
    ),
    "label is an object": (_with(lambda d: d["recovery_methods"][0].update(label={"x": 1})), "recovery_methods[0].label", "must be a string"),
    "key label is a list": (_with(lambda d: d["api_keys"][0].update(label=[1])), "api_keys[0].label", "must be a string"),
    "feed is a number": (_with(lambda d: d["subscriptions"][0].update(feed=5)), "subscriptions[0].feed", "must be a string"),
    "rule is a list": (_with(lambda d: d["accepted_risks"][0].update(rule=["x"])), "accepted_risks[0].rule", "unknown value"),
    "deep nesting": ('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}", "", "nests lists and objects"),
    "nesting just too deep": (_with(lambda d: d["devices"][0].update(platforms=[[[[[[["tws"]]]]]]])), "", "nests lists and objects"),
    "timestamp past the end of the calendar": (
        _with(lambda d: d["drills"][0].update(started_at="9999-12-31T23:00:00-05:00")),
        "drills[0].started_at",
        "must be an ISO 8601 timestamp",
    ),
    "timestamp before the start of the calendar": (
        _with(lambda d: d["drills"][0].update(started_at="0001-01-01T00:30:00+01:00")),
        "drills[0].started_at",
        "must be an ISO 8601 timestamp",
    ),
    "lone surrogate": (_with(lambda d: d["devices"][0].update(name="Laptop \ud800")), "devices[0].name", "This text contains an invalid character"),
    "lone surrogate in a key": (_with(lambda d: d["devices"][0].update({"\udc00": 1})), "devices[0].(a key)", "is not a known field"),
    "NUL": (_with(lambda d: d["devices"][0].update(name="Lap\x00top")), "devices[0].name", "This text contains a control character"),
    "NUL in a fingerprint": (_with(lambda d: d["api_keys"][0].update(fingerprint="7f\x003")), "api_keys[0].fingerprint", "must be printable"),
    "bell": (_with(lambda d: d["automations"][0].update(fallback_contact="desk\x07phone")), "automations[0].fallback_contact", "This text contains a control"),
    "line break in a name": (_with(lambda d: d["api_keys"][0].update(label="algo\nfutures")), "api_keys[0].label", "This text contains a control"),
    "bidi override": (_with(lambda d: d["recovery_methods"][0].update(label="\u202eYubiKey")), "recovery_methods[0].label", "This text contains a hidden"),
    "bidi isolate in a reason": (
        _with(lambda d: d["accepted_risks"][0].update(reason="ok \u2067x\u2069")),
        "accepted_risks[0].reason",
        "This text contains a hidden",
    ),
    "control in a section name": (_with(lambda d: d.update({"dev\x1bices": []})), "(a key)", "is not a known section"),
    "device validated in the future": (
        _with(lambda d: d["devices"][2].update(validated_on="9999-12-31")),
        "devices[2].validated_on",
        "This date is in the future.",
    ),
    # Built when the test runs: "tomorrow" counts from that day (a run may cross midnight).
    "device validated tomorrow": (
        lambda: _with(lambda d: d["devices"][2].update(validated_on=_future())), "devices[2].validated_on", "This date is in the future.",
    ),
    "recovery verified in the future": (
        _with(lambda d: d["recovery_methods"][0].update(last_verified_on="9999-12-31")),
        "recovery_methods[0].last_verified_on",
        "This date is in the future.",
    ),
    "key created in the future": (_with(lambda d: d["api_keys"][0].update(created_on="9999-12-31")), "api_keys[0].created_on", "This date is in the future."),
    "key rotated in the future": (
        _with(lambda d: d["api_keys"][0].update(last_rotated_on="9999-12-31")),
        "api_keys[0].last_rotated_on",
        "This date is in the future.",
    ),
    "drill in the future": (
        _with(lambda d: d["drills"][0].update(started_at="9999-12-31T00:00:00Z", finished_at="9999-12-31T00:20:00Z")),
        "drills[0].started_at",
        "This date is in the future.",
    ),
    "too many items": (json.dumps({**minimal_document(), "devices": [1] * (MAX_ITEMS_PER_SECTION + 1)}), "devices", "has 501 items"),
}


@pytest.fixture
def alice_with_inventory(alice):
    import_document(alice, rich_document())
    return alice


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_file_is_refused_by_the_command_with_its_path(alice_with_inventory, case, tmp_path):
    text, path, message = HOSTILE[case]
    text = text() if callable(text) else text
    before, events = stored(alice_with_inventory), AuditEvent.objects.count()
    file = tmp_path / "inventory.json"
    file.write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(CommandError) as refused:
        call_command("import_inventory", "--user", "alice", str(file))
    assert f"  {path or 'document'}: {message}" in str(refused.value)
    assert stored(alice_with_inventory) == before
    assert AuditEvent.objects.count() == events


def _upload(client, raw: bytes):
    return client.post("/inventory/import/", {"file": SimpleUploadedFile("inventory.json", raw, content_type="application/json")})


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_upload_is_refused_with_its_path(alice_with_inventory, alice_client, case):
    text, path, message = HOSTILE[case]
    text = text() if callable(text) else text
    before = stored(alice_with_inventory)
    response = _upload(alice_client, text.encode("utf-8", "surrogatepass"))
    assert response.status_code == 200
    problems = texts(response.content, "inv-problems")
    assert problems and f"{path or 'document'}: {message}" in problems[0]
    assert PENDING_IMPORT not in alice_client.session
    assert stored(alice_with_inventory) == before


def test_a_file_with_a_quarter_million_problems_shows_the_first_hundred_and_counts_the_rest(alice_with_inventory, alice_client):
    # 498 KB of devices that are not objects: every one is a problem.
    document = {**minimal_document(), "devices": [1] * MAX_ITEMS_PER_SECTION, "drills": [1] * MAX_ITEMS_PER_SECTION}
    document["recovery_methods"] = [{"kind": "?", "label": 1, "last_verified_on": 2, "x": 3}] * MAX_ITEMS_PER_SECTION
    raw = json.dumps(document).encode()
    started = time.monotonic()
    response = _upload(alice_client, raw)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert len(response.context["problems"]) == MAX_PROBLEMS_SHOWN
    total = response.context["total"]
    assert total > 3 * MAX_ITEMS_PER_SECTION
    assert texts(response.content, "inv-problems-more") == [f"The first {MAX_PROBLEMS_SHOWN} are listed; {total - MAX_PROBLEMS_SHOWN} more are not shown."]
    assert len(response.content) < 100_000 and elapsed < 3


def test_a_refused_command_counts_every_problem_and_lists_the_first_hundred(alice, tmp_path):
    file = tmp_path / "inventory.json"
    file.write_text(json.dumps({**minimal_document(), "devices": [1] * 300}))
    with pytest.raises(CommandError) as refused:
        call_command("import_inventory", "--user", "alice", str(file))
    lines = str(refused.value).splitlines()
    assert "300 problem(s); nothing was changed." in lines[0]
    assert len(lines) == 1 + MAX_PROBLEMS_SHOWN + 1 and lines[-1] == "  ... and 200 more problems"


def test_an_oversized_upload_is_refused_before_it_is_read(alice_with_inventory, alice_client, monkeypatch):
    before = stored(alice_with_inventory)

    def read_the_body(self):
        raise AssertionError("the upload was read")

    monkeypatch.setattr(HttpRequest, "_load_post_and_files", read_the_body)
    response = _upload(alice_client, b" " * (MAX_IMPORT_BYTES * 2))
    assert response.status_code == 413
    assert texts(response.content, "inv-problems") == ["document: is larger than 512 KB; an inventory is much smaller"]
    assert stored(alice_with_inventory) == before


def test_an_oversized_file_is_refused_by_the_command_without_reading_all_of_it(alice, tmp_path):
    file = tmp_path / "inventory.json"
    file.write_bytes(b" " * (MAX_IMPORT_BYTES * 4))
    with pytest.raises(CommandError, match="document: is larger than 512 KB"):
        call_command("import_inventory", "--user", "alice", str(file))


def test_the_upload_still_needs_a_csrf_token(alice):
    from django.test import Client

    from tests.conftest import verify_client

    client = verify_client(Client(enforce_csrf_checks=True), alice)
    assert _upload(client, json.dumps(minimal_document()).encode()).status_code == 403
    assert PENDING_IMPORT not in client.session


def test_the_deepest_document_the_format_needs_is_accepted(alice):
    assert MAX_DEPTH >= 4
    load(json.dumps(rich_document()))


def test_nul_is_refused_the_same_way_on_every_database(alice):
    # SQLite would store it and PostgreSQL would raise DataError: refused before either sees it.
    with pytest.raises(InventoryInvalid) as refused:
        load(_with(lambda d: d["subscriptions"][0].update(feed="US\x00")))
    assert [str(p) for p in refused.value.problems] == ["subscriptions[0].feed: This text contains a control character. Remove it and type the text again."]


# --- One validator for a form and the importer (issue 8) --------------------------


def _form_error(client, url: str, data: dict, field: str) -> str:
    response = client.post(url, data)
    assert response.status_code == 200
    return response.context["form"].errors[field][0]


def _import_problem(text: str, path: str) -> str:
    with pytest.raises(InventoryInvalid) as refused:
        load(text)
    return next(p.message for p in refused.value.problems if p.path == path)


def _device_post(**overrides) -> dict:
    data = {"name": "Office workstation", "kind": "desktop", "platforms": ["tws"], "validated_on": (timezone.localdate() - timedelta(days=3)).isoformat()}
    data.update(overrides)
    return data


def test_a_future_date_gets_the_same_message_from_the_form_and_the_importer(alice_client):
    form = _form_error(alice_client, "/devices/add/", _device_post(validated_on=_future(3)), "validated_on")
    importer = _import_problem(_with(lambda d: d["devices"][2].update(validated_on=_future(3))), "devices[2].validated_on")
    assert form == importer == "This date is in the future. Enter the day it actually happened."


def test_a_duplicate_name_gets_the_same_message_from_the_form_and_the_importer(alice, alice_client):
    assert alice_client.post("/devices/add/", _device_post()).status_code == 302
    form = _form_error(alice_client, "/devices/add/", _device_post(), "name")
    importer = _import_problem(_with(lambda d: d["devices"][3].update(name="Office workstation")), "devices[3].name")
    assert form == importer == "You already have a trusted device with this name. Choose another."


def test_a_duplicate_feed_gets_the_same_message_from_the_form_and_the_importer(alice, alice_client):
    data = {"region": "US", "feed": "US equities bundle", "active": "on"}
    assert alice_client.post("/subscriptions/add/", data).status_code == 302
    form = _form_error(alice_client, "/subscriptions/add/", data, "feed")
    importer = _import_problem(_with(lambda d: d["subscriptions"].append(dict(d["subscriptions"][0]))), "subscriptions[3].feed")
    assert form == importer == "You already have a feed with this name. Choose another."


def test_a_secret_gets_the_same_message_from_the_form_and_the_importer(alice_client):
    secret = "password=hunter2hunter2"
    form = _form_error(alice_client, "/devices/add/", _device_post(name=secret), "name")
    importer = _import_problem(_with(lambda d: d["devices"][0].update(name=secret)), "devices[0].name")
    assert form == importer and form.startswith("This looks like")


@pytest.mark.parametrize("bad", ["Lap\x07top", "\u202eYubiKey", "two\nlines"], ids=["control", "bidi", "line break"])
def test_control_and_bidi_characters_get_the_same_message_from_the_form_and_the_importer(alice, alice_client, bad):
    form = _form_error(alice_client, "/devices/add/", _device_post(name=bad), "name")
    importer = _import_problem(_with(lambda d: d["devices"][0].update(name=bad)), "devices[0].name")
    assert form == importer and form.startswith("This text contains")
    assert not alice.trusted_devices.exists()


def test_a_multi_line_field_keeps_its_line_breaks(alice, alice_client):
    assert alice_client.post("/devices/add/", _device_post(notes="Desk 4\r\nlocked office")).status_code == 302
    assert alice.trusted_devices.get().notes.splitlines() == ["Desk 4", "locked office"]
