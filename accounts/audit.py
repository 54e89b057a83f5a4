"""The one way to write an audit event (SECURITY.md 29-31)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest

from readiness.masking import mask_text
from readiness.secrets import find_secret

from .models import AuditEvent
from .net import client_ip

WITHHELD = "(withheld: looked like a secret)"

logger = logging.getLogger("gatecheck.audit")


def _clean(value: str, limit: int) -> str:
    # Line breaks and control characters would let a value forge log lines.
    return "".join(ch if ch.isprintable() else " " for ch in str(value))[:limit]


def _passed(value: Any) -> Any:
    """User text as the audit trail may keep it: anything the secret detector
    refuses is replaced, whichever path brought it here."""
    if isinstance(value, str):
        return WITHHELD if find_secret(value) else value
    if isinstance(value, dict):
        return {key: _passed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_passed(item) for item in value]
    return value


def _event(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor=None,
    subject=None,
    object_label: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            actor = request.user
    if subject is None:
        subject = actor
    return AuditEvent(
        actor=actor,
        subject=subject,
        action=_clean(action, 64),
        object_label=_passed(_clean(object_label, 200)),
        outcome=outcome,
        ip=client_ip(request) if request is not None else None,
        user_agent=_clean(request.META.get("HTTP_USER_AGENT", ""), 300) if request is not None else "",
        details=_passed(details or {}),
    )


def _logged(event: AuditEvent) -> AuditEvent:
    # Log lines travel further than the table (log shippers, support): the
    # label is shown with phone numbers and addresses masked, as to a lead.
    logger.info(
        "audit action=%s outcome=%s actor=%s subject=%s object=%s",
        event.action,
        event.outcome,
        event.actor_id,
        event.subject_id,
        mask_text(event.object_label),
    )
    return event


def record_event(**fields: Any) -> AuditEvent:
    """Append one audit event: ``action``, and optionally ``request``,
    ``actor``, ``subject``, ``object_label``, ``outcome``, ``details``.

    The actor defaults to the signed-in user of ``request`` and the subject to
    the actor. ``details`` must hold no secret: callers pass field names and
    non-secret values only.
    """
    event = _event(**fields)
    event.save()
    return _logged(event)


def record_read(**fields: Any) -> AuditEvent | None:
    """Audit a *read* (a page or export looked at): if the database refuses
    the row (full disk, read-only), the refusal is logged loudly and the
    reader still gets the page. Security changes use ``record_event``, which
    fails closed with the change it records."""
    try:
        with transaction.atomic():
            return record_event(**fields)
    except DatabaseError:
        logger.error("audit: the database refused the audit row of a read (%s); the page was shown", fields.get("action"), exc_info=True)
        return None


def record_events(events: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append many audit events (each given as to ``record_event``) in one insert."""
    created = AuditEvent.objects.bulk_create([_event(**fields) for fields in events])
    return [_logged(event) for event in created]
