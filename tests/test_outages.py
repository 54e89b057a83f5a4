"""Outages (issue 10): a mail server that is down and a database that refuses
writes never turn a request into a 500; /healthz says which check failed."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.background import mark_set
from accounts.models import AuditEvent, JobMark
from checklist.models import ReadinessSnapshot
from desk.models import ReminderLog
from tests.builders import device, page_texts, prepared_trader
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def refuse(self, *args, **kwargs):
    raise ConnectionRefusedError("SMTP server down")


@pytest.fixture
def mail_down(monkeypatch):
    """The mail server refuses every message (the tasks that send mail run at once in tests)."""
    monkeypatch.setattr(EmailBackend, "send_messages", refuse)


# --- Mail ---------------------------------------------------------------------


def shown_codes(response) -> int:
    listing = re.search(r'<ol class="codes">(.*?)</ol>', response.content.decode(), re.S).group(1)
    return len(re.findall(r"<li><code>[A-Z0-9-]+</code></li>", listing))


def test_confirming_the_first_authenticator_with_the_mail_server_down_still_shows_the_backup_codes(client, mail_down, caplog):
    client.post("/accounts/signup/", {"username": "dana", "email": "dana@example.com", "password1": PASSWORD, "password2": PASSWORD})
    client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user__username="dana")
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    with caplog.at_level(logging.ERROR, logger="gatecheck.mail"):
        response = client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": code}, follow=True)
    assert response.status_code == 200
    assert shown_codes(response) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/").status_code == 200  # the session survived
    # Logged by kind only; the task then gives up (tests cannot defer a retry).
    # (The address is not confirmed yet: the one e-mail is its confirmation link.)
    assert [r.getMessage() for r in caplog.records if r.name == "gatecheck.mail"][0] == "mail: sending a confirmation e-mail failed"


def test_regenerating_backup_codes_with_the_mail_server_down_still_shows_them(alice, alice_client, mail_down):
    response = alice_client.post("/accounts/security/backup-codes/", follow=True)
    assert response.status_code == 200
    assert shown_codes(response) == 10
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated", subject=alice).exists()


def test_a_leads_reminder_with_the_mail_server_down_says_so_and_can_be_sent_again(alice, lena, lena_client, monkeypatch):
    device(alice, "Old laptop", validated_on=None)
    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    response = lena_client.post(f"/desk/traders/{alice.pk}/remind/", follow=True)
    assert response.status_code == 200
    assert any("could not be sent just now" in text for text in page_texts(response, "msg"))
    assert not ReminderLog.objects.exists()  # the claim was dropped: the next click sends it
    monkeypatch.undo()
    lena_client.post(f"/desk/traders/{alice.pk}/remind/")
    assert ReminderLog.objects.count() == 1


# --- /healthz -----------------------------------------------------------------


def test_healthz_reports_a_database_that_refuses_writes(client, read_only_database):
    mark_set("sweep")
    read_only_database()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error", "database": "ok", "database_write": "refused", "sweep": "ok", "queue": "ok", "failed": ["database_write"],
    }


def test_healthz_commits_one_tiny_row_and_nothing_else(client):
    from django.contrib.sessions.models import Session

    mark_set("sweep")
    before = Session.objects.count()
    assert client.get("/healthz").json()["database_write"] == "ok"
    assert Session.objects.count() == before
    assert timezone.now() - JobMark.objects.get(name="healthz").at < timedelta(seconds=5)
    client.get("/healthz")
    assert JobMark.objects.filter(name="healthz").count() == 1


# --- The dashboard's snapshot ------------------------------------------------------


def test_a_dashboard_view_writes_the_snapshot_only_when_the_score_changed(alice, alice_client, django_assert_num_queries):
    prepared_trader(alice)
    alice_client.get("/")
    ReadinessSnapshot.objects.filter(user=alice).update(updated_at="2000-01-01T00:00:00Z")
    alice_client.get("/")
    assert ReadinessSnapshot.objects.get(user=alice).updated_at.year == 2000  # unchanged score: not written again
    device(alice, "Spare phone", kind="mobile", platforms=("mobile",), status="lost")
    ReadinessSnapshot.objects.filter(user=alice).update(score=1)  # as if the stored score were stale
    alice_client.get("/")
    assert ReadinessSnapshot.objects.get(user=alice).score != 1


def test_the_dashboard_answers_with_a_read_only_database(alice, alice_client, read_only_database):
    prepared_trader(alice)
    ReadinessSnapshot.objects.filter(user=alice).delete()
    read_only_database()
    response = alice_client.get("/")
    assert response.status_code == 200
    assert page_texts(response, "ring-score") == ["100"]
    assert not ReadinessSnapshot.objects.filter(user=alice).exists()
