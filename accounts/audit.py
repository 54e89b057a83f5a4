"""The one way to write an audit event (SECURITY.md 29-31)."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from .models import AuditEvent
from .net import client_ip

logger = logging.getLogger("gatecheck.audit")


def _clean(value: str, limit: int) -> str:
    # Line breaks and control characters would let a value forge log lines.
    return "".join(ch if ch.isprintable() else " " for ch in str(value))[:limit]


def record_event(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor=None,
    subject=None,
    object_label: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event.

    The actor defaults to the signed-in user of ``request`` and the subject to
    the actor. ``details`` must hold no secret: callers pass field names and
    non-secret values only.
    """
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            actor = request.user
    if subject is None:
        subject = actor
    event = AuditEvent.objects.create(
        actor=actor,
        subject=subject,
        action=_clean(action, 64),
        object_label=_clean(object_label, 200),
        outcome=outcome,
        ip=client_ip(request) if request is not None else None,
        user_agent=_clean(request.META.get("HTTP_USER_AGENT", ""), 300) if request is not None else "",
        details=details or {},
    )
    logger.info(
        "audit action=%s outcome=%s actor=%s subject=%s object=%s",
        event.action,
        event.outcome,
        getattr(actor, "pk", None),
        getattr(subject, "pk", None),
        event.object_label,
    )
    return event
