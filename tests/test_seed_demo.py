"""manage.py seed_demo: a demo desk a newcomer can sign in to."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Desk, User
from checklist.models import ReadinessSnapshot
from devices.models import Drill
from readiness import rules

pytestmark = pytest.mark.django_db

LOGIN_LINE = re.compile(r"^(\w+)\s+(demo-\S+)\s+([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\s", re.M)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Desk.objects.exists()


def test_seeds_a_desk_covering_every_rule_status(settings):
    settings.DEBUG = True
    output = seed()
    desk = Desk.objects.get()
    assert desk.leads.count() == 1
    traders = list(desk.members.all())
    assert len(traders) == 12
    today = {s.user_id: s for s in ReadinessSnapshot.objects.filter(user__in=traders, date=timezone.localdate())}
    assert len(today) == 12
    seen = {rule.id: set() for rule in rules.CATALOG}
    for snap in today.values():
        for rule_id, status in snap.statuses.items():
            seen[rule_id].add(status)
    for rule in rules.CATALOG:
        assert {rules.PASS, rules.PARTIAL, rules.FAIL} <= seen[rule.id], rule.id
    for rule_id in ("credentials.segmented", "credentials.rotation", "marketdata.covered", "automation.failsafe"):
        assert rules.NA in seen[rule_id]
    assert {snap.level for snap in today.values()} == {rules.READY, rules.AT_RISK, rules.NOT_READY}
    # 90 days of history plus today, for every trader; some drills.
    assert ReadinessSnapshot.objects.filter(user=traders[0]).count() == 91
    assert Drill.objects.filter(owner__in=traders).count() >= 10
    assert len(LOGIN_LINE.findall(output)) == 13


def test_printed_logins_sign_in_with_password_and_backup_code(settings):
    settings.DEBUG = True
    logins = LOGIN_LINE.findall(seed())
    username, password, code = next(line for line in logins if line[0] == "lena")
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response["Location"].startswith("/accounts/login/code/")
    response = client.post("/accounts/login/code/", {"otp_token": code, "next": "/desk/"})
    assert response["Location"] == "/desk/"
    # Demo users have backup codes only: the first stop is setting up an app.
    assert client.get("/desk/")["Location"].startswith("/accounts/mfa/setup/")
    client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user__username="lena", confirmed=False)
    client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": f"{TOTP(device.bin_key).token():06d}"})
    page = client.get("/desk/")
    assert page.status_code == 200
    assert page.content.decode().count('<th scope="row" class="who">') == 12


def test_running_again_resets_passwords_and_keeps_one_desk(settings):
    settings.DEBUG = False
    first = dict((u, p) for u, p, _ in LOGIN_LINE.findall(seed("--force")))
    second = dict((u, p) for u, p, _ in LOGIN_LINE.findall(seed("--force")))
    assert Desk.objects.count() == 1 and User.objects.count() == 13
    assert first["ava"] != second["ava"]
    assert User.objects.get(username="ava").check_password(second["ava"])
    assert ReadinessSnapshot.objects.filter(user__username="ava").count() == 91


def test_prints_no_audit_lines_before_the_logins(settings, caplog):
    """The audit rows are written, but their log lines would bury the logins."""
    settings.DEBUG = True
    with caplog.at_level("INFO"):
        output = seed()
    assert output.startswith("Seeded")
    assert not [r for r in caplog.records if r.name == "gatecheck.audit"]
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").exists()
