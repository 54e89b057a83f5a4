"""Writes to a trader's inventory, through one path.

Every create, update and delete of an inventory row, in this app and in the
checklist app, goes through :func:`inventory_create`, :func:`inventory_update`
or :func:`inventory_delete`: they save the row (an update re-reads it under a
lock first), append one audit event whose details are ``{field: {"old", "new"}}``
(never a secret, since secret-looking input is refused before it gets here),
and send ``inventory_changed`` so that the trader's stored score is refreshed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import channels
from accounts import mail as outgoing
from accounts.audit import record_event, record_events
from accounts.models import User
from accounts.services import rows_delete_batched
from readiness.masking import mask_label
from readiness.recovery import reentry_steps
from readiness.rules import ping_slug
from readiness.secrets import mask_secrets
from readiness.validators import storable_text

from . import incidents
from .models import (
    AcceptedRisk,
    ApiKey,
    Automation,
    Drill,
    DrillStep,
    Heartbeat,
    HeartbeatSignal,
    Permission,
    PingKey,
    RecoveryMethod,
    Subscription,
    TradingProfile,
    TrustedDevice,
)
from .selectors import inventory_for, limits, profile_for
from .signals import inventory_changed

DEVICE_FIELDS = ("name", "kind", "platforms", "validated_on", "status", "browser_saved_password", "notes")
RECOVERY_FIELDS = ("kind", "label", "last_verified_on")
KEY_FIELDS = ("label", "scopes", "service_account", "created_on", "last_rotated_on", "expires_on", "status", "fingerprint", "ip_restricted")
AUTOMATION_FIELDS = ("name", "api_key", "token_refresh", "fallback_contact", "on_auth_failure", "status")


class InUse(Exception):
    """A row other rows depend on (a key that automations use)."""

    def __init__(self, users: list[str]):
        super().__init__(", ".join(users))
        self.users = users


# --- The write path -----------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-friendly, non-secret form of a field value for the audit log."""
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value


def _snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {field: _plain(getattr(instance, field)) for field in fields}


def _shown(instance: models.Model, field: str, value: Any) -> Any:
    if isinstance(instance, RecoveryMethod) and field == "label" and isinstance(value, str):
        # Audit rows are read by desk leads too: phone numbers and e-mail stay masked.
        return mask_label(instance.kind, value)
    return value


def audit_diff(instance: models.Model, before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Changed fields as ``{field: {"old", "new"}}``, compared raw and shown masked."""
    return {
        field: {"old": _shown(instance, field, before.get(field)), "new": _shown(instance, field, value)}
        for field, value in after.items()
        if before.get(field) != value
    }


def _written(*, request: HttpRequest | None, action: str, instance: models.Model, owner, details: dict | None = None) -> None:
    # str() of every inventory model is safe to show a lead (recovery labels masked).
    record_event(action=action, request=request, subject=owner, object_label=str(instance), details=details or {})
    inventory_changed.send(sender=type(instance), owner=owner)


def inventory_create(*, request: HttpRequest | None, owner, model: type[models.Model], fields: tuple[str, ...], action: str, data: dict[str, Any]) -> Any:
    """Create one inventory row for ``owner`` from the ``fields`` of ``data``."""
    with transaction.atomic():
        instance = model.objects.create(owner=owner, **{k: v for k, v in data.items() if k in fields})
        _written(request=request, action=action, instance=instance, owner=owner, details=audit_diff(instance, {}, _snapshot(instance, fields)))
    return instance


def inventory_update(*, request: HttpRequest | None, instance: Any, fields: tuple[str, ...], action: str, data: dict[str, Any]) -> dict:
    """Apply the ``fields`` of ``data`` to ``instance``; audit only when something changed. Returns the changes."""
    with transaction.atomic():
        # Re-read under a lock so the audit's old values are the stored ones.
        fresh = type(instance).objects.select_for_update().get(pk=instance.pk)
        before = _snapshot(fresh, fields)
        # Only ``fields`` are this write's: every other column keeps what is stored now (a ping may have moved it).
        for other in instance._meta.concrete_fields:
            if other.name not in fields and not other.primary_key:
                setattr(instance, other.attname, getattr(fresh, other.attname))
        for field, value in data.items():
            if field in fields:
                setattr(instance, field, value)
        changes = audit_diff(instance, before, _snapshot(instance, fields))
        if changes:
            instance.save()
            _written(request=request, action=action, instance=instance, owner=instance.owner, details=changes)
    return changes


def inventory_delete(*, request: HttpRequest | None, instance: Any, action: str, guard: Callable[[], None] | None = None) -> None:
    """Delete one inventory row; ``guard`` may refuse (raise) under the same lock."""
    with transaction.atomic():
        type(instance).objects.select_for_update().filter(pk=instance.pk).first()
        if guard is not None:
            guard()
        owner = instance.owner
        label = str(instance)
        instance.delete()
        record_event(action=action, request=request, subject=owner, object_label=label)
        inventory_changed.send(sender=type(instance), owner=owner)


def _create(*, request: HttpRequest, model: type[models.Model], fields: tuple[str, ...], action: str, data: dict[str, Any]) -> Any:
    return inventory_create(request=request, owner=request.user, model=model, fields=fields, action=action, data=data)


# --- Trusted devices --------------------------------------------------------


def device_create(*, request: HttpRequest, data: dict[str, Any]) -> TrustedDevice:
    """Add a trusted device for the signed-in trader."""
    return _create(request=request, model=TrustedDevice, fields=DEVICE_FIELDS, action="device.created", data=data)


def device_update(*, request: HttpRequest, device: TrustedDevice, data: dict[str, Any]) -> dict:
    """Change a device's details (not its status: that has its own actions)."""
    fields = tuple(f for f in DEVICE_FIELDS if f != "status")
    return inventory_update(request=request, instance=device, fields=fields, action="device.updated", data=data)


def device_delete(*, request: HttpRequest, device: TrustedDevice) -> None:
    inventory_delete(request=request, instance=device, action="device.deleted")


def device_report_lost(*, request: HttpRequest, device: TrustedDevice) -> dict:
    """Mark a device lost: the readiness rule fails until it is revoked at the broker."""
    return inventory_update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.reported_lost", data={"status": TrustedDevice.Status.LOST})


def device_mark_revoked(*, request: HttpRequest, device: TrustedDevice) -> dict:
    return inventory_update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.revoked", data={"status": TrustedDevice.Status.REVOKED})


def device_mark_found(*, request: HttpRequest, device: TrustedDevice) -> dict:
    """A lost device turned up: active again, but to be validated at the broker
    before it counts (its last validation no longer vouches for it)."""
    data = {"status": TrustedDevice.Status.ACTIVE, "validated_on": None}
    return inventory_update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.found", data=data)


def device_mark_validated(*, request: HttpRequest, device: TrustedDevice, on: date | None = None) -> dict:
    """The broker accepted the device again today, so it is trusted (active) again."""
    data = {"validated_on": on or timezone.localdate(), "status": TrustedDevice.Status.ACTIVE}
    return inventory_update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.validated", data=data)


# --- Recovery methods -------------------------------------------------------


def recovery_create(*, request: HttpRequest, data: dict[str, Any]) -> RecoveryMethod:
    return _create(request=request, model=RecoveryMethod, fields=RECOVERY_FIELDS, action="recovery.created", data=data)


def recovery_update(*, request: HttpRequest, method: RecoveryMethod, data: dict[str, Any]) -> dict:
    return inventory_update(request=request, instance=method, fields=RECOVERY_FIELDS, action="recovery.updated", data=data)


def recovery_delete(*, request: HttpRequest, method: RecoveryMethod) -> None:
    inventory_delete(request=request, instance=method, action="recovery.deleted")


def recovery_mark_verified(*, request: HttpRequest, method: RecoveryMethod, on: date | None = None) -> dict:
    data = {"last_verified_on": on or timezone.localdate()}
    return inventory_update(request=request, instance=method, fields=RECOVERY_FIELDS, action="recovery.verified", data=data)


# --- API keys ---------------------------------------------------------------


def key_create(*, request: HttpRequest, data: dict[str, Any]) -> ApiKey:
    return _create(request=request, model=ApiKey, fields=KEY_FIELDS, action="key.created", data=data)


# A rotation date typed by the trader (the form, "mark rotated", a file) is
# declared evidence: a date other than the stored one drops the mark of a
# rotation a pipeline recorded; restating the same date keeps it.
DECLARED_ROTATION = {"rotation_recorded_at": None, "rotation_token": None}
RECORDED_FIELDS = ("last_rotated_on", *DECLARED_ROTATION)


def rotation_declared(stored: date | None, declared: date | None) -> dict[str, Any]:
    """The fields a declared rotation date sets beside itself."""
    return {} if declared == stored else dict(DECLARED_ROTATION)


def _stored_rotation(key: ApiKey) -> date | None:
    # Read from the table: a bound ModelForm has already set the new value on ``key``.
    return ApiKey.objects.filter(pk=key.pk).values_list("last_rotated_on", flat=True).first()


def key_update(*, request: HttpRequest, key: ApiKey, data: dict[str, Any]) -> dict:
    """Change a key's record (not its status: revoking has its own action)."""
    fields = tuple(f for f in KEY_FIELDS if f != "status")
    if "last_rotated_on" in data:
        dropped = rotation_declared(_stored_rotation(key), data["last_rotated_on"])
        fields, data = (*fields, *dropped), {**data, **dropped}
    return inventory_update(request=request, instance=key, fields=fields, action="key.updated", data=data)


def key_delete(*, request: HttpRequest, key: ApiKey) -> None:
    """Delete a key record; refused with InUse while automations use it."""

    def guard() -> None:
        users = list(Automation.objects.for_owner(key.owner).filter(api_key=key).order_by("name").values_list("name", flat=True))
        if users:
            raise InUse(users)

    inventory_delete(request=request, instance=key, action="key.deleted", guard=guard)


def key_mark_rotated(*, request: HttpRequest, key: ApiKey, on: date | None = None) -> dict:
    day = on or timezone.localdate()
    data = {"last_rotated_on": day, **rotation_declared(_stored_rotation(key), day)}
    return inventory_update(request=request, instance=key, fields=RECORDED_FIELDS, action="key.rotated", data=data)


def key_rotation_record(*, request: HttpRequest, key: ApiKey, token, fingerprint: str | None = None, expires_on: date | None = None) -> dict:
    """A pipeline rotated the key and says so with its API token: the
    rotation date is today by the server's clock, marked recorded with the
    token and the time. A new fingerprint or expiry may come with it."""
    data: dict[str, Any] = {"last_rotated_on": timezone.localdate(), "rotation_recorded_at": timezone.now(), "rotation_token": token}
    fields = RECORDED_FIELDS
    if fingerprint is not None:
        fields, data = (*fields, "fingerprint"), {**data, "fingerprint": fingerprint}
    if expires_on is not None:
        fields, data = (*fields, "expires_on"), {**data, "expires_on": expires_on}
    return inventory_update(request=request, instance=key, fields=fields, action="key.rotation_recorded", data=data)


def key_revoke(*, request: HttpRequest, key: ApiKey) -> dict:
    """Record that the key was revoked at the broker."""
    return inventory_update(request=request, instance=key, fields=KEY_FIELDS, action="key.revoked", data={"status": ApiKey.Status.REVOKED})


# --- Automations ------------------------------------------------------------


def _check_key_owner(owner, data: dict[str, Any]) -> None:
    key = data.get("api_key")
    if key is not None and key.owner_id != owner.pk:
        # The form limits the choices; this guards every other caller.
        raise ValueError("An automation can only use its owner's keys.")


def automation_create(*, request: HttpRequest, data: dict[str, Any]) -> Automation:
    _check_key_owner(request.user, data)
    return _create(request=request, model=Automation, fields=AUTOMATION_FIELDS, action="automation.created", data=data)


def automation_update(*, request: HttpRequest, automation: Automation, data: dict[str, Any]) -> dict:
    _check_key_owner(automation.owner, data)
    fields = tuple(f for f in AUTOMATION_FIELDS if f != "status")
    return inventory_update(request=request, instance=automation, fields=fields, action="automation.updated", data=data)


def automation_delete(*, request: HttpRequest, automation: Automation) -> None:
    inventory_delete(request=request, instance=automation, action="automation.deleted")


def automation_pause(*, request: HttpRequest, automation: Automation) -> dict:
    data = {"status": Automation.Status.PAUSED}
    return inventory_update(request=request, instance=automation, fields=AUTOMATION_FIELDS, action="automation.paused", data=data)


def automation_resume(*, request: HttpRequest, automation: Automation) -> dict:
    data = {"status": Automation.Status.ACTIVE}
    return inventory_update(request=request, instance=automation, fields=AUTOMATION_FIELDS, action="automation.resumed", data=data)


# --- Heartbeats -----------------------------------------------------------------

HEARTBEAT_FIELDS = ("period_minutes", "grace_minutes", *Heartbeat.SCHEDULE_FIELDS)
# Pings one token may record per minute; more are refused (429) without work.
PING_LIMIT_PER_MINUTE = 30


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def heartbeat_save(*, request: HttpRequest | None, automation: Automation, data: dict[str, Any]) -> tuple[Heartbeat, str | None]:
    """Create or change an automation's schedule. A new heartbeat gets its
    ping token, returned once (only its digest is stored)."""
    existing = Heartbeat.objects.filter(automation=automation).first()
    if existing is not None:
        with transaction.atomic():
            inventory_update(request=request, instance=existing, fields=HEARTBEAT_FIELDS, action="heartbeat.updated", data=data)
            _deadline_reset(existing)
        return existing, None
    token = secrets.token_urlsafe(24)  # 192 random bits
    with transaction.atomic():
        beat = inventory_create(
            request=request, owner=automation.owner, model=Heartbeat, fields=(*HEARTBEAT_FIELDS, "automation", "token_digest"),
            action="heartbeat.created", data={**data, "automation": automation, "token_digest": _token_digest(token)},
        )
        _deadline_reset(beat)
    return beat, token


def _deadline_reset(beat: Heartbeat) -> None:
    """A new or changed schedule: the next sweep looks at the bot at once,
    tells what its status now is (a bot now down, or back up or idle with an
    incident open) and stores its next deadline."""
    Heartbeat.objects.filter(pk=beat.pk).update(deadline=timezone.now())


def heartbeat_rotate(*, request: HttpRequest | None, heartbeat: Heartbeat) -> str:
    """A new ping token; the old URL stops working at once."""
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        Heartbeat.objects.filter(pk=heartbeat.pk).update(token_digest=_token_digest(token))
        # The token itself never reaches the audit log.
        record_event(action="heartbeat.token_rotated", request=request, subject=heartbeat.owner, object_label=str(heartbeat.automation))
    return token


def heartbeat_token_works(*, automation: Automation, token: str) -> bool:
    """Whether ``token`` is the ping token stored now for ``automation``."""
    return Heartbeat.objects.filter(automation=automation, token_digest=_token_digest(token)).exists()


def heartbeat_delete(*, request: HttpRequest | None, heartbeat: Heartbeat) -> None:
    inventory_delete(request=request, instance=heartbeat, action="heartbeat.deleted")


def _signal_record(beat: Heartbeat, *, kind: str, at: datetime, source_ip: str | None, message: str, exit_status: int | None, rid) -> None:
    """One history row; every tenth of the heartbeat trims what falls past the signals kept."""
    HeartbeatSignal.objects.create(
        owner_id=beat.owner_id, heartbeat=beat, at=at, kind=kind, source_ip=source_ip,
        message=mask_secrets(storable_text(message[: HeartbeatSignal.BODY_LIMIT])) if message else "", exit_status=exit_status, rid=rid,
    )
    beat.signals_since_trim += 1
    if beat.signals_since_trim >= HeartbeatSignal.TRIM_EVERY:
        # Every tenth ping of this heartbeat, whatever its pace.
        beat.signals_since_trim = 0
        kept = HeartbeatSignal.SIGNALS_KEPT
        stale = HeartbeatSignal.objects.filter(heartbeat=beat).order_by("-id").values("id")[kept : kept + 1]
        HeartbeatSignal.objects.filter(heartbeat=beat, id__lte=models.Subquery(stale)).delete()


class PingRefused(Exception):
    """Too many pings for this token this minute (a success over the cap is still kept as the state)."""


class SlugAmbiguous(Exception):
    """Two of the trader's bots with a heartbeat share the slug: the ping is ignored (409, as healthchecks.io)."""


# Signals that move a heartbeat's status; a start or a log is history only.
STATUS_SIGNALS = ("success", "failure")


def ping_key_rotate(*, request: HttpRequest | None, owner) -> str:
    """A new ping key for ``owner`` (the old one stops working at once); returned once."""
    key = secrets.token_urlsafe(24)  # 192 random bits
    with transaction.atomic():
        PingKey.objects.update_or_create(owner=owner, defaults={"digest": _token_digest(key)})
        record_event(action="heartbeat.ping_key_rotated", request=request, subject=owner, object_label="ping key")
    return key


def slug_heartbeat(*, key: str, slug: str) -> int | None:
    """The id of the heartbeat of the key owner's bot with this slug (None:
    no such key or bot); SlugAmbiguous when two bots share it."""
    owner = PingKey.objects.filter(digest=_token_digest(key)).values_list("owner_id", flat=True).first()
    if owner is None:
        return None
    found = [pk for pk, name in Heartbeat.objects.filter(owner_id=owner).values_list("pk", "automation__name") if ping_slug(name) == slug]
    if len(found) > 1:
        raise SlugAmbiguous
    return found[0] if found else None


def heartbeat_ping(
    *, token: str | None = None, heartbeat_id: int | None = None, kind: str, source_ip: str | None, message: str = "",
    exit_status: int | None = None, rid=None, now: datetime | None = None,
) -> Heartbeat | None:
    """Record one signal for the heartbeat whose token this is, or whose id
    (a ping key and slug found it); None when there is none.

    Constant work whatever the history: one locked row (its automation and
    owner are read only when there is something to tell), one insert, one
    update, and on every tenth ping of the heartbeat a delete of what falls
    past the signals kept. A start or a log is kept in the history and
    changes nothing else. Secrets in a message are masked before it is stored.
    """
    now = now or timezone.now()
    where = {"token_digest": _token_digest(token)} if token is not None else {"pk": heartbeat_id}
    with transaction.atomic():
        beat = next(iter(Heartbeat.objects.select_for_update().filter(**where).order_by()[:1]), None)
        if beat is None:
            return None
        if beat.window_start is None or now - beat.window_start >= timedelta(minutes=1):
            beat.window_start, beat.window_count = now, 0
        if beat.window_count < PING_LIMIT_PER_MINUTE:
            beat.window_count += 1
            _signal_record(beat, kind=kind, at=now, source_ip=source_ip, message=message, exit_status=exit_status, rid=rid)
        elif kind != "success":
            raise PingRefused
        fields = ["window_start", "window_count", "signals_since_trim", "updated_at"]
        if kind in STATUS_SIGNALS:
            # Over the cap, a success still moves the bot's state (no history
            # row): whoever floods a leaked address cannot make a live bot look down.
            beat.last_kind, beat.last_at = kind, now
            beat.deadline = beat.next_change(now)
            fields += ["last_kind", "last_at", "deadline"]
        beat.save(update_fields=fields)
        if (kind not in STATUS_SIGNALS or not _tell([beat], now)) and connection.vendor == "postgresql":
            # A routine check-in need not wait for the disk: lost in a crash,
            # it would only make its bot look late for one period. A
            # transition (audit row, alert) is committed durably as usual.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
    return beat


# Bots told about per transaction by the sweep.
SWEEP_BATCH = 500


def heartbeat_sweep(*, now: datetime | None = None) -> int:
    """Find heartbeats whose deadline has passed (down now, or a market
    window closed: ``Heartbeat.next_change``), tell about each change once,
    and store each one's next deadline. One indexed query when none is due,
    whatever the number of bots and their schedules; those due are locked
    and handled in batches of ``SWEEP_BATCH``, each in a fixed number of
    queries plus one audit row per bot told."""
    now = now or timezone.now()
    due = Heartbeat.objects.filter(deadline__lt=now).order_by("pk")
    count, last = 0, 0
    while batch := list(due.filter(pk__gt=last).values_list("pk", flat=True)[:SWEEP_BATCH]):
        last = batch[-1]
        with transaction.atomic():
            # Read again under the lock: a ping since keeps its bot up.
            beats = list(due.filter(pk__in=batch).select_for_update(of=("self",)).select_related("automation", "owner"))
            count += _tell(beats, now)
            for beat in beats:
                beat.deadline = beat.next_change(now)
            Heartbeat.objects.bulk_update(beats, ["deadline"])
    # Alarms nobody said they are on reach the desks' leads.
    incidents.escalate(now)
    return count


# The alert-channel event of each status told (accounts.channels.EVENTS).
CHANNEL_EVENTS = {"down": "bot_down", "failing": "bot_failing", "up": "bot_recovered"}
NOTICES = {
    "down": ("Automation '{name}' stopped checking in",
             "Its last check-in was more than its period and grace ago: its broker login may have died. Check it now."),
    "failing": ("Automation '{name}' reported an authentication failure",
                "It called its fail URL: authentication failed and it ran its fail-safe. Check its positions and its login."),
    "up": ("Automation '{name}' is checking in again", "It checked in successfully again."),
}


def _tell(beats: list[Heartbeat], now: datetime) -> int:
    """Tell the traders and their leads, once, when bots go down or fail,
    and when they are back up; audit each and refresh the scores. A fixed
    number of queries for any number of beats (the audit rows in one insert).
    Returns how many were told."""
    told: list[tuple[Heartbeat, str]] = []
    quiet: dict[str, list[int]] = {"up": [], "idle": []}
    for beat in beats:
        status = beat.status_at(now)
        if status == "late":
            continue  # late is a warning on the page, not an alarm
        alarm = status in ("down", "failing")
        recovered = status == "up" and beat.notified in ("down", "failing")
        if (alarm and beat.notified != status) or recovered:
            told.append((beat, status))
        elif status == "up" and beat.notified == "new":
            quiet["up"].append(beat.pk)
        elif status == "idle" and beat.notified != "idle":
            # The market closed: nothing is expected, nothing alerts, and a
            # bot still dead at the next open is a new incident, told again.
            quiet["idle"].append(beat.pk)
    for status, pks in quiet.items():
        if pks:
            Heartbeat.objects.filter(pk__in=pks).update(notified=status)
    # What was told, in memory too: the sweep computes each next deadline from it.
    told_now = {beat.pk: status for beat, status in told} | {pk: status for status, pks in quiet.items() for pk in pks}
    for beat in beats:
        beat.notified = told_now.get(beat.pk, beat.notified)
    if quiet["idle"] and not told:
        # A bot told down whose market closed counts as alive again: the stored scores follow.
        inventory_changed.send(sender=Heartbeat, owner=None, owners=[beat.owner for beat in beats if beat.pk in quiet["idle"]])
    # A bot back up, or its market closed, ends its incident.
    if ended := [beat.pk for beat, status in told if status == "up"] + quiet["idle"]:
        incidents.closed(ended, now)
    if not told:
        return 0
    # Each alarm opens (or updates) its incident; the owner's alert carries their "I'm on it" link, made in the worker.
    opened = incidents.opened([(beat, status) for beat, status in told if status != "up"], now)
    for status in {status for _, status in told}:
        Heartbeat.objects.filter(pk__in=[beat.pk for beat, s in told if s == status]).update(notified=status)
    owners = {beat.owner_id: beat.owner for beat, _ in told}
    leads = _lead_emails(list(owners))
    payloads = []
    record_events([
        {"action": f"heartbeat.{status}", "subject": beat.owner, "object_label": beat.automation.name, "outcome": "failure" if status != "up" else "success"}
        for beat, status in told
    ])
    for beat, status in told:
        owner, name = beat.owner, beat.automation.name
        subject, body = NOTICES[status]
        title = f"[Gatecheck] {subject.format(name=name)}"
        if mine := outgoing.confirmed_addresses([owner]):
            link = ["incident_ack", opened[beat.pk].pk, owner.pk] if beat.pk in opened else None
            payloads.append(outgoing.payload(to=mine, subject=title, body=body, kind="heartbeat alert", link=link))
        if theirs := sorted(leads.get(owner.pk, set()) - set(mine)):
            desk_note = "\n\nAcknowledge it on the trader's desk page if you are on it." if beat.pk in opened else ""
            payloads.append(outgoing.payload(to=theirs, subject=title, body=body + desk_note, kind="heartbeat alert"))
    if payloads:
        # Leave through the mail task, like every e-mail: the sweep never waits for the mail server.
        outgoing.enqueue(payloads)
    # Each owner's channels, one query per kind of change however many bots changed.
    for status in {status for _, status in told}:
        messages = []
        for beat, _ in (pair for pair in told if pair[1] == status):
            subject, body = NOTICES[status]
            link = ("incident_ack", opened[beat.pk].pk) if beat.pk in opened else None
            messages.append((beat.owner_id, subject.format(name=beat.automation.name), body, link))
        channels.send_each(messages, CHANNEL_EVENTS[status])
    idle_owners = [beat.owner for beat in beats if beat.pk in quiet["idle"] and beat.owner_id not in owners]
    inventory_changed.send(sender=Heartbeat, owner=None, owners=list(owners.values()) + idle_owners)
    return len(told)


def _lead_emails(owner_ids: list[int]) -> dict[int, set[str]]:
    """The confirmed e-mail addresses of the leads of each owner's desks, in one query."""
    found: dict[int, set[str]] = {}
    leads = outgoing.confirmed_recipients(User.objects.filter(led_desks__members__in=owner_ids))
    for member, email in leads.values_list("led_desks__members", "email"):
        found.setdefault(member, set()).add(email)
    return found


def signals_prune(*, now: datetime | None = None) -> int:
    """Delete heartbeat signals older than GATECHECK_SIGNAL_RETENTION_DAYS,
    for the hourly task; returns how many went. Pings already trim a live
    bot's history to its last few; this removes what a bot that stopped
    pinging long ago left behind. Its status reads the heartbeat row, which
    stays."""
    now = now or timezone.now()
    return rows_delete_batched(HeartbeatSignal.objects.filter(at__lt=now - timedelta(days=settings.GATECHECK_SIGNAL_RETENTION_DAYS)))


# --------------------------------------------------------------------------
# The rest of the inventory, through the same write path (inventory_create,
# inventory_update, inventory_delete: lock, audit diff, one re-score).
# --------------------------------------------------------------------------

PROFILE_FIELDS = (
    "broker",
    "broker_mfa",
    "regions_traded",
    "products_traded",
    "plan_complex_orders",
    "plan_transfers_statements",
    "plan_alerts_light_execution",
    "support_contact",
    "platform_restart_at",
    "platform_restart_tz",
)
SUBSCRIPTION_FIELDS = ("region", "feed", "active")
DRILL_FIELDS = ("lost_device", "started_at", "finished_at", "completed", "abandoned_at")
RISK_FIELDS = ("rule", "reason", "until", "created_on")


def profile_update(*, request: HttpRequest, profile: TradingProfile, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Save the trading profile (creating it on first save); returns the changes made."""
    if profile.pk is None:
        try:
            created = inventory_create(request=request, owner=profile.owner, model=TradingProfile, fields=PROFILE_FIELDS, action="profile.updated", data=data)
        except IntegrityError:
            # A parallel first save created the one profile (owner is unique)
            # after this request read none: this save updates that one.
            profile = TradingProfile.objects.get(owner=profile.owner)
        else:
            profile.pk = created.pk
            for name in PROFILE_FIELDS:
                setattr(profile, name, getattr(created, name))
            return {name: {"old": None, "new": getattr(created, name)} for name in PROFILE_FIELDS if name in data}
    return inventory_update(request=request, instance=profile, fields=PROFILE_FIELDS, action="profile.updated", data=data)


def subscription_create(*, request: HttpRequest, owner, region: str, feed: str, active: bool = True) -> Subscription:
    """Add a market-data feed."""
    data = {"region": region, "feed": feed, "active": active}
    return inventory_create(request=request, owner=owner, model=Subscription, fields=SUBSCRIPTION_FIELDS, action="subscription.created", data=data)


def subscription_update(*, request: HttpRequest, subscription: Subscription, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Change a feed's region, name or active flag; returns the changes made."""
    return inventory_update(request=request, instance=subscription, fields=SUBSCRIPTION_FIELDS, action="subscription.updated", data=data)


def subscription_delete(*, request: HttpRequest, subscription: Subscription) -> None:
    """Remove a feed."""
    inventory_delete(request=request, instance=subscription, action="subscription.deleted")


PERMISSION_FIELDS = ("product", "region", "status", "requested_on")


def permission_create(*, request: HttpRequest, owner, data: dict[str, Any]) -> Permission:
    return inventory_create(request=request, owner=owner, model=Permission, fields=PERMISSION_FIELDS, action="permission.created", data=data)


def permission_update(*, request: HttpRequest, permission: Permission, data: dict[str, Any]) -> dict:
    return inventory_update(request=request, instance=permission, fields=PERMISSION_FIELDS, action="permission.updated", data=data)


def permission_delete(*, request: HttpRequest, permission: Permission) -> None:
    inventory_delete(request=request, instance=permission, action="permission.deleted")


def running_drill(owner) -> Drill | None:
    return Drill.objects.for_owner(owner).filter(completed=False, abandoned_at__isnull=True).order_by("-started_at").first()


class StepsPending(Exception):
    """ "I'm back in" before every step of the drill was confirmed."""


def drill_start(*, request: HttpRequest, owner, lost_device: str) -> Drill:
    """Start a device-loss drill now (server time), with its steps fixed from
    today's inventory; a drill already running is returned instead.

    The database allows one running drill per trader (drill_one_running_per_owner):
    when a parallel start wins the race, its drill is the one returned."""
    current = running_drill(owner)
    if current is not None:
        return current
    data = {"lost_device": lost_device, "started_at": timezone.now(), "recorded": True}
    try:
        with transaction.atomic():
            drill = inventory_create(request=request, owner=owner, model=Drill, fields=(*DRILL_FIELDS, "recorded"), action="drill.started", data=data)
            steps = reentry_steps(
                inventory_for(owner), timezone.localdate(), limits(), lost_device=lost_device, support_contact=profile_for(owner).support_contact
            )
            DrillStep.objects.bulk_create(
                DrillStep(owner=owner, drill=drill, position=i, title=s.title, detail=s.detail[:1000], gap=s.gap, fix_url=s.fix_url)
                for i, s in enumerate(steps)
            )
    except IntegrityError:
        current = running_drill(owner)
        if current is None:
            raise
        return current
    return drill


@transaction.atomic
def drill_step_confirm(*, request: HttpRequest, drill: Drill, position: int) -> DrillStep | None:
    """Confirm the next step of a running drill at server time. Steps go in
    order: confirming any other one (or one already done) changes nothing."""
    drill = Drill.objects.select_for_update().get(pk=drill.pk)
    step = drill.steps.filter(confirmed_at__isnull=True).order_by("position").first()
    if not drill.is_running or step is None or step.position != position:
        return None
    inventory_update(request=request, instance=step, fields=("confirmed_at",), action="drill.step_confirmed", data={"confirmed_at": timezone.now()})
    return step


@transaction.atomic
def drill_finish(*, request: HttpRequest, drill: Drill) -> Drill:
    """"I'm back in": completes a running drill at server time, once every step
    is confirmed (else StepsPending). A second press changes nothing."""
    drill = Drill.objects.select_for_update().get(pk=drill.pk)
    if drill.is_running:
        if drill.steps.filter(confirmed_at__isnull=True).exists():
            raise StepsPending
        inventory_update(request=request, instance=drill, fields=DRILL_FIELDS, action="drill.finished", data={"finished_at": timezone.now(), "completed": True})
    return drill


@transaction.atomic
def drill_abandon(*, request: HttpRequest, drill: Drill) -> Drill:
    """Stop a running drill without a result; it does not count for the score."""
    drill = Drill.objects.select_for_update().get(pk=drill.pk)
    if drill.is_running:
        inventory_update(request=request, instance=drill, fields=DRILL_FIELDS, action="drill.abandoned", data={"abandoned_at": timezone.now()})
    return drill


def risk_accept(*, request: HttpRequest, owner, rule: str, reason: str, until: date) -> AcceptedRisk:
    """Accept the risk of one rule until ``until``; accepting it again replaces reason and date."""
    data = {"rule": rule, "reason": reason, "until": until, "created_on": timezone.localdate()}
    risk = AcceptedRisk.objects.for_owner(owner).filter(rule=rule).first()
    if risk is None:
        try:
            return inventory_create(request=request, owner=owner, model=AcceptedRisk, fields=RISK_FIELDS, action="risk.accepted", data=data)
        except IntegrityError:
            # A parallel request accepted the same rule first (one per rule and
            # owner): accepting it again replaces reason and date, as in sequence.
            risk = AcceptedRisk.objects.for_owner(owner).get(rule=rule)
    inventory_update(request=request, instance=risk, fields=RISK_FIELDS, action="risk.accepted", data=data)
    return risk


def risk_withdraw(*, request: HttpRequest, risk: AcceptedRisk) -> None:
    """End an accepted risk early: the rule returns to the next best actions."""
    inventory_delete(request=request, instance=risk, action="risk.withdrawn")
