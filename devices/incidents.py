"""Bot incidents: acknowledge ("I'm on it") and escalate (issue "Live evidence v2", part 4).

An incident opens when a bot is told down or failing and closes when it
checks in again. Its owner's alert carries an "I'm on it" link; a link is a
credential of one recipient (SECURITY.md 34): 192 random bits, only the
SHA-256 kept, valid 24 hours, good once, never printed by a command nor
logged. A lead acknowledges from the desk instead (signed in, MFA). An
incident nobody acknowledged within the shortest escalation time of its
owner's desks (``Desk.escalation_minutes``, default 15) reaches the leads'
channels once, each lead with a link of their own.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts import channels, mail
from accounts.audit import record_event, record_events
from accounts.models import Desk, User, token_digest
from accounts.net import site_base

from .models import AckLink, Heartbeat, Incident, PingKey

DEFAULT_ESCALATION_MINUTES = Desk._meta.get_field("escalation_minutes").default
ESCALATE_BATCH = 500


def ack_url(incident_id: int, recipient_id: int) -> str | None:
    """A new "I'm on it" address of this incident for one recipient, made
    when the message leaves (in the worker), or None when the incident is over."""
    incident = Incident.objects.filter(pk=incident_id, closed_at__isnull=True).first()
    if incident is None:
        return None
    token = secrets.token_urlsafe(24)  # 192 random bits
    AckLink.objects.create(incident=incident, recipient_id=recipient_id, digest=token_digest(token), expires_at=timezone.now() + AckLink.LIFETIME)
    return site_base() + reverse("devices:incident_ack", args=[token])


# Links leave only from the worker: the task table names them, never holds them.
mail.LINK_MAKERS["incident_ack"] = ack_url


def opened(alarms: list[tuple[Heartbeat, str]], now: datetime) -> dict[int, Incident]:
    """Open (or bring up to date) the incident of each bot told down or
    failing: a fixed number of queries however many bots. Returns each
    heartbeat id's incident."""
    if not alarms:
        return {}
    status_of = {beat.pk: status for beat, status in alarms}
    current = {i.heartbeat_id: i for i in Incident.objects.filter(heartbeat_id__in=list(status_of), closed_at__isnull=True)}
    changed = [i for i in current.values() if i.status != status_of[i.heartbeat_id]]
    for incident in changed:
        incident.status = status_of[incident.heartbeat_id]
    Incident.objects.bulk_update(changed, ["status"])
    waits = escalation_minutes({beat.owner_id for beat, _ in alarms if beat.pk not in current})
    fresh = [
        Incident(owner_id=beat.owner_id, heartbeat=beat, status=status, opened_at=now, escalate_at=now + timedelta(minutes=waits[beat.owner_id]))
        for beat, status in alarms if beat.pk not in current
    ]
    # Another process may have opened one a moment ago: the partial unique index keeps one, read back below.
    Incident.objects.bulk_create(fresh, ignore_conflicts=True)
    if fresh:
        current |= {i.heartbeat_id: i for i in Incident.objects.filter(heartbeat_id__in=[i.heartbeat_id for i in fresh], closed_at__isnull=True)}
    return current


def closed(beat_ids: list[int], now: datetime) -> int:
    """Bots checking in again: their incidents end, and their links with them."""
    return Incident.objects.filter(heartbeat_id__in=beat_ids, closed_at__isnull=True).update(closed_at=now)


class LinkInvalid(Exception):
    """Unknown, used, expired, or its incident is over."""


def link_incident(token: str) -> AckLink:
    """The live link of this token, with its incident and bot."""
    link = AckLink.objects.select_related("incident__heartbeat__automation", "recipient").filter(digest=token_digest(token)).first()
    if link is None or not hmac.compare_digest(link.digest, token_digest(token)):
        raise LinkInvalid
    if link.used_at is not None or link.expires_at <= timezone.now() or link.incident.closed_at is not None:
        raise LinkInvalid
    return link


def acknowledge(*, incident: Incident, by: User, request: HttpRequest | None = None, via: str) -> bool:
    """Mark the incident acknowledged by ``by``; False when someone did already."""
    now = timezone.now()
    with transaction.atomic():
        done = Incident.objects.filter(pk=incident.pk, acked_at__isnull=True, closed_at__isnull=True).update(acked_at=now, acked_by=by)
        # Every link of the incident is spent: one acknowledgement is enough.
        AckLink.objects.filter(incident=incident, used_at__isnull=True).update(used_at=now)
        if done:
            record_event(action="incident.acknowledged", request=request, actor=by, subject=incident.owner,
                         object_label=incident.heartbeat.automation.name, details={"via": via, "status": incident.status})
    return bool(done)


def escalation_minutes(owner_ids: set[int]) -> dict[int, int]:
    """Each owner's wait before their leads hear: the shortest of their desks' times, else the default; one query."""
    waits = dict.fromkeys(owner_ids, DEFAULT_ESCALATION_MINUTES)
    found: dict[int, int] = {}
    for member, minutes in Desk.objects.filter(members__in=owner_ids).values_list("members", "escalation_minutes"):
        found[member] = min(minutes, found.get(member, minutes))
    return waits | found


def escalate(now: datetime) -> int:
    """Incidents nobody acknowledged by their ``escalate_at`` go to the
    desks' leads' channels, once, oldest due first: a fixed number of
    queries per batch of ``ESCALATE_BATCH``, however many incidents and
    leads (one task per lead's channel)."""
    due = list(
        Incident.objects.filter(closed_at__isnull=True, acked_at__isnull=True, escalated_at__isnull=True, escalate_at__lte=now)
        .select_related("heartbeat__automation", "owner")
        .order_by("escalate_at", "pk")[:ESCALATE_BATCH]
    )
    if not due:
        return 0
    with transaction.atomic():
        # Claimed only while still waiting: a second sweep, or an acknowledgement just now, wins.
        ids = [incident.pk for incident in due]
        Incident.objects.filter(pk__in=ids, acked_at__isnull=True, escalated_at__isnull=True, closed_at__isnull=True).update(escalated_at=now)
        claimed = set(Incident.objects.filter(pk__in=ids, escalated_at=now).values_list("pk", flat=True))
        due = [incident for incident in due if incident.pk in claimed]
        leads: dict[int, set[int]] = {}
        for member, lead in Desk.objects.filter(members__in={i.owner_id for i in due}).values_list("members", "leads"):
            if lead is not None and lead != member:
                leads.setdefault(member, set()).add(lead)
        messages: dict[str, list] = {"down": [], "failing": []}
        events = []
        for incident in due:
            name = incident.heartbeat.automation.name
            minutes = round((incident.escalate_at - incident.opened_at).total_seconds() / 60)
            mine = sorted(leads.get(incident.owner_id, ()))
            messages[incident.status] += [
                (lead, f"Escalated: automation '{name}' is {incident.status}, unacknowledged for {minutes} min",
                 f"A trader on your desk has a bot that is {incident.status} and nobody has said they are on it.", ("incident_ack", incident.pk))
                for lead in mine
            ]
            events.append({"action": "incident.escalated", "subject": incident.owner, "object_label": name, "details": {"leads": len(mine)}})
        channels.send_each(messages["down"], "bot_down")
        channels.send_each(messages["failing"], "bot_failing")
        record_events(events)
    return len(due)


def on_user_deactivated(sender, user: User, **kwargs) -> None:
    """accounts.signals.user_deactivated receiver: a leaver's bots stop
    answering to their ping tokens and ping key, leave the sweep, and their
    open incidents end (nobody is left to tell; the desk's leaver checklist
    lists the bots to stop at the broker)."""
    now = timezone.now()
    Heartbeat.objects.filter(owner=user).update(token_digest=None, deadline=None)
    PingKey.objects.filter(owner=user).delete()
    Incident.objects.filter(owner=user, closed_at__isnull=True).update(closed_at=now)
