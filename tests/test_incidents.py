"""Acknowledge and escalate (issue "Live evidence v2", part 4; SECURITY.md 34).

A bot that goes down opens an incident; its owner's alert (e-mail and
channel) carries an "I'm on it" link, good once, for 24 hours, stored
hashed. Unacknowledged past the desk's escalation time, the incident
reaches the desk leads' channels, once; acknowledged, it does not. The
desk shows each incident as acknowledged or not, and by whom."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import channels
from accounts.models import AuditEvent, Desk
from devices import services
from devices.models import AckLink, Heartbeat, Incident
from tests import builders as build
from tests.test_alert_channels import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receivers():
    made = []

    def make():
        made.append(Receiver())
        return made[-1]

    yield make
    for server in made:
        server.shutdown()


def down_bot(alice, *, now):
    bot = build.automation(alice, name="ES spread bot", key=build.api_key(alice))
    beat = Heartbeat.objects.create(owner=alice, automation=bot, period_minutes=5, grace_minutes=2)
    last = now - timedelta(minutes=8)
    Heartbeat.objects.filter(pk=beat.pk).update(last_kind="success", last_at=last, deadline=last + timedelta(minutes=7), notified="up")
    return beat


def ack_link(text: str) -> str:
    return re.search(r"I'm on it: https?://[^/]+(/ack/[\w-]+/)", text).group(1)


def test_the_owners_link_acknowledges_once_and_stops_the_escalation(alice, lena, mailoutbox, receivers):
    mine, leads = receivers(), receivers()
    channels.add(user=alice, url=mine.url)
    channels.add(user=lena, url=leads.url)
    now = timezone.now()
    beat = down_bot(alice, now=now)
    assert services.heartbeat_sweep(now=now) == 1
    incident = Incident.objects.get(heartbeat=beat)
    link = ack_link(mine.received[0]["message"])
    owner_mail = next(m for m in mailoutbox if m.to == ["alice@example.com"])
    assert ack_link(owner_mail.body) != link  # each message its own link, made as it leaves
    assert "I'm on it" not in next(m for m in mailoutbox if m.to != ["alice@example.com"]).body  # a lead acknowledges on the desk
    token = link.strip("/").rsplit("/", 1)[1]
    assert not AckLink.objects.filter(digest=token).exists()  # stored hashed
    # A link checker's GET acknowledges nothing; the POST does, once.
    page = Client().get(link)
    assert page.status_code == 200 and "ES spread bot" in page.content.decode()
    assert Incident.objects.get(pk=incident.pk).acked_at is None
    from devices import incidents

    other = "/" + incidents.ack_url(incident.pk, lena.pk).split("/", 3)[3]
    assert Client().post(link).status_code == 200
    incident.refresh_from_db()
    assert incident.acked_by == alice and incident.acked_at is not None
    assert Client().post(link).status_code == 404  # single use
    assert Client().post(other).status_code == 404  # every link of the incident is spent
    assert Client().post(ack_link(owner_mail.body)).status_code == 404
    assert AuditEvent.objects.filter(action="incident.acknowledged", subject=alice, details__via="link").exists()
    # Acknowledged: no escalation, however long it stays down.
    services.heartbeat_sweep(now=now + timedelta(minutes=30))
    assert leads.received == []


def test_an_unacknowledged_incident_reaches_the_leads_once_after_the_desks_time(alice, lena, receivers):
    leads = receivers()
    channels.add(user=lena, url=leads.url)
    Desk.objects.filter(name="Futures desk").update(escalation_minutes=10)
    now = timezone.now()
    down_bot(alice, now=now)
    services.heartbeat_sweep(now=now)
    services.heartbeat_sweep(now=now + timedelta(minutes=9))
    assert leads.received == []
    services.heartbeat_sweep(now=now + timedelta(minutes=11))
    services.heartbeat_sweep(now=now + timedelta(minutes=12))
    assert [m["title"] for m in leads.received] == ["[Gatecheck] Escalated: automation 'ES spread bot' is down, unacknowledged for 10 min"]
    # The lead's own link acknowledges as the lead.
    assert Client().post(ack_link(leads.received[0]["message"])).status_code == 200
    assert Incident.objects.get().acked_by == lena


def test_the_desk_shows_incidents_and_a_lead_acknowledges_there(alice, lena, lena_client):
    now = timezone.now()
    beat = down_bot(alice, now=now)
    services.heartbeat_sweep(now=now)
    page = lena_client.get("/desk/").content.decode()
    assert "Bots down or failing now" in page and "not acknowledged" in page
    incident = Incident.objects.get(heartbeat=beat)
    assert lena_client.post(f"/desk/incidents/{incident.pk}/ack/").status_code == 302
    page = lena_client.get("/desk/").content.decode()
    assert "acknowledged" in page and "by lena" in page
    assert "acknowledged by lena" in lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()
    # The bot checks in again: the incident is over and leaves the desk's list.
    Client().get(f"/ping/{services.heartbeat_rotate(request=None, heartbeat=beat)}")
    assert Incident.objects.get(pk=incident.pk).closed_at is not None
    assert "Bots down or failing now" not in lena_client.get("/desk/").content.decode()


def test_an_expired_link_does_nothing(alice):
    now = timezone.now()
    beat = down_bot(alice, now=now)
    services.heartbeat_sweep(now=now)
    from devices import incidents

    link = incidents.ack_url(Incident.objects.get(heartbeat=beat).pk, alice.pk)
    AckLink.objects.filter(recipient=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().post("/" + link.split("/", 3)[3]).status_code == 404
    assert Incident.objects.get(heartbeat=beat).acked_at is None


def test_the_task_table_never_holds_a_working_link(alice, lena, settings, receivers):
    """SECURITY.md 34: the alert tasks name the link ([maker, incident, recipient]); the worker makes it."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    from django_tasks_db.models import DBTaskResult

    channels.add(user=alice, url=receivers().url)
    now = timezone.now()
    down_bot(alice, now=now)
    services.heartbeat_sweep(now=now)
    stored = list(DBTaskResult.objects.values_list("args_kwargs", flat=True))
    assert stored and all("/ack/" not in str(args) for args in stored)
    assert any("incident_ack" in str(args) for args in stored)


def test_each_desk_escalates_on_its_own_time(alice, bob, lena, receivers):
    """An incident waits its own desk's time, not the oldest incident's: a slow desk never holds a quick one back."""
    leads = receivers()
    channels.add(user=lena, url=leads.url)
    Desk.objects.filter(name="Futures desk").update(escalation_minutes=5)
    slow = Desk.objects.create(name="Rates desk", escalation_minutes=60)
    slow.members.add(bob)
    slow.leads.add(lena)
    now = timezone.now()
    down_bot(bob, now=now - timedelta(minutes=1))  # opened first, on the slow desk
    services.heartbeat_sweep(now=now - timedelta(minutes=1))
    down_bot(alice, now=now)
    services.heartbeat_sweep(now=now)
    services.heartbeat_sweep(now=now + timedelta(minutes=6))
    assert [m["title"] for m in leads.received] == ["[Gatecheck] Escalated: automation 'ES spread bot' is down, unacknowledged for 5 min"]
    assert Incident.objects.get(owner=alice).escalated_at is not None and Incident.objects.get(owner=bob).escalated_at is None
    services.heartbeat_sweep(now=now + timedelta(minutes=62))
    assert len(leads.received) == 2
