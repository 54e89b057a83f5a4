"""Every free-text field goes through the one secret detector (SECURITY.md 24).

The form test enumerates every form class of the project's apps and every
text field on it; the importer test replaces every string of a full exported
document in turn. A new form, field or format key is covered without
touching this file, and can only skip the detector by being named in
``EXEMPT`` below, in review.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
from datetime import date
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django import forms
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import SecretScrubMixin
from accounts.models import AuditEvent, Desk
from tests.test_devices_secrets import everything_stored

pytestmark = pytest.mark.django_db

SECRET = "sk_live_51H8xYzAbCdEf0123456789QwErTy"
LOCAL_APPS = ("accounts", "devices", "checklist", "desk")

# Fields never stored or shown again, so the detector would only get in the way.
EXEMPT = {
    ("LoginForm", "username"),  # counted under a keyed digest only; may be a mistyped password
    ("LoginForm", "password"),
    ("CodeForm", "otp_token"),
    ("LoginCodeForm", "otp_token"),
    ("EnrolForm", "otp_token"),
    ("EnrolmentCodeForm", "code"),  # compared with its hash, never stored
    ("SignupForm", "password1"),  # stored only as a slow hash
    ("SignupForm", "password2"),
    ("InvitationAcceptForm", "password1"),
    ("InvitationAcceptForm", "password2"),
    ("AlertChannelForm", "url"),  # a credential by design: sealed at rest, shown masked, never echoed (test_alert_channels.py)
}


def project_forms() -> list[type[forms.BaseForm]]:
    for app in LOCAL_APPS:
        if importlib.util.find_spec(f"{app}.forms") is not None:
            importlib.import_module(f"{app}.forms")
    found, stack = [], [forms.BaseForm]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in LOCAL_APPS and sub not in found:
                found.append(sub)
    return sorted(found, key=lambda c: c.__qualname__)


def text_fields(cls) -> list[str]:
    return [name for name, field in cls.base_fields.items() if isinstance(field, forms.CharField)]


FORMS = project_forms()
CHECKED = [(cls, name) for cls in FORMS for name in text_fields(cls) if (cls.__name__, name) not in EXEMPT]


def test_the_enumeration_finds_the_known_free_text_fields():
    names = {(cls.__name__, name) for cls, name in CHECKED}
    assert {("EnrolForm", "name"), ("RenameForm", "name"), ("MfaResetForm", "reason"), ("TrustedDeviceForm", "notes")} <= names
    assert len(CHECKED) >= 15


@pytest.mark.parametrize("cls", [c for c in FORMS if text_fields(c)], ids=lambda c: c.__qualname__)
def test_every_form_with_a_text_field_uses_the_detector(cls):
    assert issubclass(cls, SecretScrubMixin)
    assert {(cls.__name__, name) for name in cls.secret_exempt} <= EXEMPT


def build(cls, data: dict, owner):
    """A bound form, whatever its constructor wants."""
    params = set().union(*(inspect.signature(k.__init__).parameters for k in cls.__mro__ if "__init__" in vars(k)))
    extra = {"owner": owner, "today": date.today(), "desks": Desk.objects.none(), "invitation": SimpleNamespace(email="new@example.com")}
    return cls(data=data, **{key: value for key, value in extra.items() if key in params})


@pytest.mark.parametrize(("cls", "name"), CHECKED, ids=[f"{c.__qualname__}.{n}" for c, n in CHECKED])
@pytest.mark.parametrize("value", [SECRET, f"backup: {SECRET}", SECRET + " " + "x" * 400], ids=["bare", "prose", "over-long"])
def test_every_text_field_refuses_a_secret_and_blanks_it(alice, cls, name, value):
    form = build(cls, {name: value}, alice)
    assert not form.is_valid()
    assert [e.code for e in form.errors.as_data()[name]] == ["secret"]
    assert form.data[form.add_prefix(name)] == ""
    assert SECRET not in str(form)


def test_every_string_of_an_imported_document_goes_through_the_detector(alice):
    from devices.inventory import InventoryInvalid, export_inventory, load
    from tests.test_inventory import import_document, rich_document

    import_document(alice, rich_document())
    document = export_inventory(alice)
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}[{i}]")
        elif isinstance(node, str) and path != "format":
            yield path

    paths = list(walk(document, ""))
    assert len(paths) > 30
    for path in paths:
        poisoned = json.loads(json.dumps(document))
        node, steps = poisoned, path.replace("[", ".[").split(".")
        for step in steps[:-1]:
            node = node[int(step[1:-1])] if step.startswith("[") else node[step]
        last = steps[-1]
        if last.startswith("["):
            node[int(last[1:-1])] = SECRET
        else:
            node[last] = SECRET
        with pytest.raises(InventoryInvalid) as refused:
            load(json.dumps(poisoned))
        assert path in [p.path for p in refused.value.problems], path
        assert SECRET not in " ".join(str(p) for p in refused.value.problems)


# --- Through the pages: the fields that were not checked at all ----------------------


class InputValues(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name"):
            self.values[attrs["name"]] = attrs.get("value") or ""
        if tag == "textarea":
            self._textarea = attrs.get("name")
            self.values[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data.strip()


def shown_values(response) -> dict[str, str]:
    parser = InputValues()
    parser.feed(response.content.decode())
    return parser.values


def assert_kept_nowhere(caplog, capsys):
    assert SECRET not in everything_stored()
    assert SECRET not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


def test_an_authenticator_named_with_a_secret_is_refused_at_enrolment(alice_client, alice, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    alice_client.get("/accounts/security/authenticators/add/")
    pending = TOTPDevice.objects.get(user=alice, confirmed=False)
    code = f"{TOTP(pending.bin_key, pending.step, pending.t0, pending.digits).token():06d}"
    response = alice_client.post("/accounts/security/authenticators/add/", {"name": SECRET, "otp_token": code})
    assert response.status_code == 200
    assert [e.code for e in response.context["form"].errors.as_data()["name"]] == ["secret"]
    assert shown_values(response)["name"] == ""
    assert not TOTPDevice.objects.filter(user=alice, confirmed=False, name=SECRET).exists()
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).count() == 1
    assert_kept_nowhere(caplog, capsys)


def test_renaming_an_authenticator_to_a_secret_is_refused(alice_client, alice, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    phone = TOTPDevice.objects.get(user=alice)
    response = alice_client.post(f"/accounts/security/authenticators/{phone.pk}/rename/", {"name": f"otp seed {SECRET}"})
    assert response.status_code == 200
    assert shown_values(response)["name"] == ""
    phone.refresh_from_db()
    assert phone.name == "Phone"
    assert_kept_nowhere(caplog, capsys)


def test_an_mfa_reset_reason_holding_a_secret_is_refused(lena_client, alice, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    response = lena_client.post(
        f"/desk/traders/{alice.pk}/mfa-reset/", {"reason": f"Called back, new password={SECRET}", "identity_confirmed": "on"}
    )
    assert response.status_code == 200
    assert shown_values(response)["reason"] == ""
    assert TOTPDevice.objects.filter(user=alice).exists()
    assert not AuditEvent.objects.filter(action="mfa.reset").exists()
    assert_kept_nowhere(caplog, capsys)


# --- Over-long values are scrubbed before the length error (item 8) -------------------


@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        ("/devices/add/", {"name": SECRET + "-" + "x" * 120, "kind": "laptop", "notes": ""}, "name"),
        ("/devices/add/", {"name": "Laptop", "kind": "laptop", "notes": "key " + SECRET + " " + "y" * 3000}, "notes"),
        ("/recovery/add/", {"kind": "backup_codes", "label": SECRET * 8}, "label"),
        ("/automations/add/", {"name": "Bot", "fallback_contact": SECRET * 8, "on_auth_failure": "halt"}, "fallback_contact"),
    ],
)
def test_an_over_long_secret_is_not_echoed_in_the_form(alice_client, url, data, field):
    response = alice_client.post(url, data)
    assert response.status_code == 200
    assert [e.code for e in response.context["form"].errors.as_data()[field]] == ["secret"]
    assert shown_values(response)[field] == ""
    assert SECRET not in response.content.decode()


# --- Audit labels: detector first, masked for leads and logs (item 7) ------------------


def test_the_audit_trail_and_its_log_line_keep_no_secret_whatever_the_caller(alice, caplog, capsys):
    from accounts.audit import record_event

    caplog.set_level(logging.DEBUG)
    event = record_event(action="mfa.authenticator_renamed", actor=alice, object_label=SECRET, details={"name": ["Phone", SECRET]})
    event.refresh_from_db()
    assert SECRET not in event.object_label and SECRET not in json.dumps(event.details)
    assert_kept_nowhere(caplog, capsys)


def test_a_phone_number_typed_into_a_device_name_is_masked_for_the_lead_and_in_the_log(alice_client, alice, lena_client, caplog):
    from devices.models import Drill, TrustedDevice

    caplog.set_level(logging.INFO, logger="gatecheck.audit")
    number = "+1 212 555 0142"
    response = alice_client.post("/devices/add/", {"name": f"Desk phone {number}", "kind": "mobile", "notes": ""})
    assert response.status_code == 302
    device = TrustedDevice.objects.get(owner=alice)
    alice_client.post("/drills/start/", {"lost_device": device.pk})
    assert Drill.objects.filter(owner=alice).exists()

    detail = lena_client.get(f"/desk/traders/{alice.pk}/")
    cells = DrillCells()
    cells.feed(detail.content.decode())
    assert cells.lost_devices == ["Desk phone +1 *** *** 0142"]
    drill = Drill.objects.get(owner=alice)
    for url in ("/admin/devices/trusteddevice/", f"/admin/devices/trusteddevice/{device.pk}/change/",
                f"/admin/devices/trusteddevice/{device.pk}/history/", "/admin/devices/drill/",
                f"/admin/devices/drill/{drill.pk}/change/", "/admin/accounts/auditevent/"):
        page = lena_client.get(url)
        assert page.status_code == 200, url
        assert "555 0142" not in page.content.decode(), url
    assert "555 0142" not in caplog.text
    assert "+1 *** *** 0142" in caplog.text


class DrillCells(HTMLParser):
    """The "Lost device" cells of the drill history table."""

    def __init__(self):
        super().__init__()
        self.lost_devices: list[str] = []
        self._in_table = False
        self._cell = -1

    def handle_starttag(self, tag, attrs):
        if tag == "table" and "drills" in (dict(attrs).get("class") or ""):
            self._in_table = True
        if self._in_table and tag == "tr":
            self._cell = -1
        if self._in_table and tag == "td":
            self._cell += 1
            if self._cell == 1:
                self.lost_devices.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        if tag == "td" and self._cell == 1:
            self._cell = 2

    def handle_data(self, data):
        if self._in_table and self._cell == 1:
            self.lost_devices[-1] += data.strip()


