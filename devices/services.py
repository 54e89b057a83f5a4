"""Writes to the credential inventory.

Every write goes through one function here, which saves the row, appends an
audit event (field names with old and new values; never a secret, since
secret-looking input is refused before it gets here) and re-scores the
trader so the desk's stored score stays current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from checklist.services import snapshot_refresh
from readiness.masking import mask_label

from .models import ApiKey, Automation, RecoveryMethod, TrustedDevice

DEVICE_FIELDS = ("name", "kind", "platforms", "validated_on", "status", "browser_saved_password", "notes")
RECOVERY_FIELDS = ("kind", "label", "last_verified_on")
KEY_FIELDS = ("label", "scopes", "service_account", "created_on", "last_rotated_on", "expires_on", "status", "fingerprint", "ip_restricted")
AUTOMATION_FIELDS = ("name", "api_key", "token_refresh", "fallback_contact", "on_auth_failure", "status")


class InUse(Exception):
    """A row other rows depend on (a key that automations use)."""

    def __init__(self, users: list[str]):
        super().__init__(", ".join(users))
        self.users = users


# --- Audit helpers ----------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-friendly, non-secret form of a field value for the audit log."""
    if isinstance(value, date):
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


def _diff(instance: models.Model, before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Changed fields with old and new values, compared raw and shown masked."""
    return {
        field: {"old": _shown(instance, field, before.get(field)), "new": _shown(instance, field, value)}
        for field, value in after.items()
        if before.get(field) != value
    }


def _shown(instance: models.Model, field: str, value: Any) -> Any:
    if isinstance(instance, RecoveryMethod) and field == "label" and isinstance(value, str):
        # Audit rows are read by desk leads too: phone numbers and e-mail stay masked.
        return mask_label(instance.kind, value)
    return value


def _label(instance: models.Model) -> str:
    return instance.masked_label if isinstance(instance, RecoveryMethod) else str(instance)


def _audit_and_refresh(*, request: HttpRequest | None, action: str, instance: models.Model, owner, details: dict) -> None:
    record_event(action=action, request=request, subject=owner, object_label=_label(instance), details=details)
    snapshot_refresh(owner)


def _create(*, request: HttpRequest, model: type[models.Model], fields: tuple[str, ...], action: str, data: dict[str, Any]) -> Any:
    owner = request.user
    with transaction.atomic():
        instance = model.objects.create(owner=owner, **{k: v for k, v in data.items() if k in fields})
        details = _diff(instance, {}, _snapshot(instance, fields))
        _audit_and_refresh(request=request, action=action, instance=instance, owner=owner, details=details)
    return instance


def _update(*, request: HttpRequest | None, instance: Any, fields: tuple[str, ...], action: str, data: dict[str, Any]) -> dict:
    """Apply ``data`` to ``instance``; audit only when something changed. Returns the changes."""
    with transaction.atomic():
        # Re-read under a lock so the audit's old values are the stored ones.
        fresh = type(instance).objects.select_for_update().get(pk=instance.pk)
        before = _snapshot(fresh, fields)
        for field, value in data.items():
            if field in fields:
                setattr(instance, field, value)
        instance.save()
        changes = _diff(instance, before, _snapshot(instance, fields))
        if changes:
            _audit_and_refresh(request=request, action=action, instance=instance, owner=instance.owner, details=changes)
    return changes


def _delete(*, request: HttpRequest, instance: Any, action: str, guard: Callable[[], None] | None = None) -> None:
    with transaction.atomic():
        if guard is not None:
            guard()
        owner, label = instance.owner, _label(instance)
        instance.delete()
        record_event(action=action, request=request, subject=owner, object_label=label)
        snapshot_refresh(owner)


# --- Trusted devices --------------------------------------------------------


def device_create(*, request: HttpRequest, data: dict[str, Any]) -> TrustedDevice:
    """Add a trusted device for the signed-in trader."""
    return _create(request=request, model=TrustedDevice, fields=DEVICE_FIELDS, action="device.created", data=data)


def device_update(*, request: HttpRequest, device: TrustedDevice, data: dict[str, Any]) -> dict:
    """Change a device's details (not its status: that has its own actions)."""
    data = {k: v for k, v in data.items() if k != "status"}
    return _update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.updated", data=data)


def device_delete(*, request: HttpRequest, device: TrustedDevice) -> None:
    _delete(request=request, instance=device, action="device.deleted")


def device_report_lost(*, request: HttpRequest, device: TrustedDevice) -> dict:
    """Mark a device lost: the readiness rule fails until it is revoked at the broker."""
    return _update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.reported_lost", data={"status": TrustedDevice.Status.LOST})


def device_mark_revoked(*, request: HttpRequest, device: TrustedDevice) -> dict:
    return _update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.revoked", data={"status": TrustedDevice.Status.REVOKED})


def device_mark_validated(*, request: HttpRequest, device: TrustedDevice, on: date | None = None) -> dict:
    """The broker accepted the device again today, so it is trusted (active) again."""
    data = {"validated_on": on or timezone.localdate(), "status": TrustedDevice.Status.ACTIVE}
    return _update(request=request, instance=device, fields=DEVICE_FIELDS, action="device.validated", data=data)


# --- Recovery methods -------------------------------------------------------


def recovery_create(*, request: HttpRequest, data: dict[str, Any]) -> RecoveryMethod:
    return _create(request=request, model=RecoveryMethod, fields=RECOVERY_FIELDS, action="recovery.created", data=data)


def recovery_update(*, request: HttpRequest, method: RecoveryMethod, data: dict[str, Any]) -> dict:
    return _update(request=request, instance=method, fields=RECOVERY_FIELDS, action="recovery.updated", data=data)


def recovery_delete(*, request: HttpRequest, method: RecoveryMethod) -> None:
    _delete(request=request, instance=method, action="recovery.deleted")


def recovery_mark_verified(*, request: HttpRequest, method: RecoveryMethod, on: date | None = None) -> dict:
    data = {"last_verified_on": on or timezone.localdate()}
    return _update(request=request, instance=method, fields=RECOVERY_FIELDS, action="recovery.verified", data=data)


# --- API keys ---------------------------------------------------------------


def key_create(*, request: HttpRequest, data: dict[str, Any]) -> ApiKey:
    return _create(request=request, model=ApiKey, fields=KEY_FIELDS, action="key.created", data=data)


def key_update(*, request: HttpRequest, key: ApiKey, data: dict[str, Any]) -> dict:
    """Change a key's record (not its status: revoking has its own action)."""
    data = {k: v for k, v in data.items() if k != "status"}
    return _update(request=request, instance=key, fields=KEY_FIELDS, action="key.updated", data=data)


def key_delete(*, request: HttpRequest, key: ApiKey) -> None:
    """Delete a key record; refused with InUse while automations use it."""

    def guard() -> None:
        users = list(Automation.objects.for_owner(key.owner).filter(api_key=key).order_by("name").values_list("name", flat=True))
        if users:
            raise InUse(users)

    _delete(request=request, instance=key, action="key.deleted", guard=guard)


def key_mark_rotated(*, request: HttpRequest, key: ApiKey, on: date | None = None) -> dict:
    return _update(request=request, instance=key, fields=KEY_FIELDS, action="key.rotated", data={"last_rotated_on": on or timezone.localdate()})


def key_revoke(*, request: HttpRequest, key: ApiKey) -> dict:
    """Record that the key was revoked at the broker."""
    return _update(request=request, instance=key, fields=KEY_FIELDS, action="key.revoked", data={"status": ApiKey.Status.REVOKED})


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
    data = {k: v for k, v in data.items() if k != "status"}
    return _update(request=request, instance=automation, fields=AUTOMATION_FIELDS, action="automation.updated", data=data)


def automation_delete(*, request: HttpRequest, automation: Automation) -> None:
    _delete(request=request, instance=automation, action="automation.deleted")


def automation_pause(*, request: HttpRequest, automation: Automation) -> dict:
    return _update(request=request, instance=automation, fields=AUTOMATION_FIELDS, action="automation.paused", data={"status": Automation.Status.PAUSED})


def automation_resume(*, request: HttpRequest, automation: Automation) -> dict:
    return _update(request=request, instance=automation, fields=AUTOMATION_FIELDS, action="automation.resumed", data={"status": Automation.Status.ACTIVE})
