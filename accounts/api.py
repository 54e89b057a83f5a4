"""What every ``/api/v1/`` route shares: the bearer token, the scope check,
RFC 9457 problem details, and the audit-event feed.

The routes of the other apps (``checklist.api``, ``devices.api``,
``desk.api``) use these; ``config.api`` puts them together.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.security.http import HttpAuthBase
from pydantic import BeforeValidator

from readiness.masking import mask_text

from . import tokens
from .audit import record_read
from .models import AuditEvent
from .net import client_ip
from .selectors import overseen_users

PROBLEM = "application/problem+json"
logger = logging.getLogger("gatecheck.api")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day_only(value: Any) -> Any:
    """A day is written YYYY-MM-DD; pydantic alone would also take a number of seconds."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


# The type of every day an API request carries.
Day = Annotated[date, BeforeValidator(_iso_day_only)]


def problem(status: int, detail: str = "", **extra: Any) -> HttpResponse:
    """An RFC 9457 problem details answer: ``type``, ``title`` (the status's phrase), ``status``, ``detail`` and any extra members."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, **({"detail": detail} if detail else {}), **extra}
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM)


class Problem(Schema):
    """The shape of every error answer (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


# What an operation may answer besides its success, for the schema.
ERRORS = {400: Problem, 401: Problem, 403: Problem, 404: Problem, 422: Problem, 429: Problem}


class BearerToken(HttpAuthBase):
    """``Authorization: Bearer gc_...`` (accounts.tokens). The request then
    acts as the token's person: ``request.user`` is set, so the audit trail
    names them, and ``request.auth`` is the ``tokens.Caller``. The header's
    value is never logged."""

    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> tokens.Caller | None:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return None
        try:
            caller = tokens.authenticate(secret.strip(), ip=client_ip(request))
        except tokens.RateLimited as limited:
            raise Throttled(limited.retry_after) from None
        if caller is not None:
            request.user = caller.user
        return caller


def require(request: HttpRequest, scope: str) -> tokens.Caller:
    """The caller, if its token's scope grants ``scope``; else a 403."""
    caller: tokens.Caller = request.auth
    if not caller.may(scope):
        raise HttpError(403, f"This token's scope ({caller.token.scope}) does not allow this; it needs {scope}.")
    return caller


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        response = problem(401, "Send a live API token as 'Authorization: Bearer <token>'.")
        response["WWW-Authenticate"] = 'Bearer realm="gatecheck"'
        return response
    response = problem(exc.status_code, str(exc.message))
    if isinstance(exc, Throttled) and exc.wait:
        response["Retry-After"] = str(exc.wait)
    return response


def _validation_error(request: HttpRequest, exc) -> HttpResponse:
    errors = [{"path": ".".join(str(part) for part in error.get("loc", ())), "message": error.get("msg", "")} for error in exc.errors]
    return problem(422, "The request's parameters or body are not valid.", errors=errors)


def _not_found(request: HttpRequest, exc) -> HttpResponse:
    return problem(404, "No such object, or not yours.")


def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("api: %s on %s", type(exc).__name__, request.path, exc_info=exc)
    return problem(500, "Something went wrong on our side; it was logged.")


def install_problem_handlers(api) -> None:
    from django.http import Http404
    from ninja.errors import ValidationError

    api.add_exception_handler(Exception, _server_error)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(ValidationError, _validation_error)
    api.add_exception_handler(Http404, _not_found)


def unknown_route(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/v1/: a problem, not the site's HTML 404."""
    return problem(404, "No such API route; see /api/v1/openapi.json.")


unknown_route.gatecheck_public = True  # type: ignore[attr-defined]


# --- Audit events -----------------------------------------------------------------

router = Router(tags=["audit"])

AUDIT_PAGE_MAX = 500


class AuditEventOut(Schema):
    id: int
    at: datetime
    action: str
    outcome: str
    actor: str | None
    subject: str | None
    object_label: str
    ip: str | None
    details: dict[str, Any]


class AuditPage(Schema):
    events: list[AuditEventOut]
    # Pass as ``after`` to get the next page; the same value when nothing is new.
    next_after: int


class AuditQuery(Schema):
    after: int = Field(0, ge=0, le=2**62, description="Return events with a larger id (the previous page's next_after).")
    limit: int = Field(100, ge=1, le=AUDIT_PAGE_MAX)


@router.get("/audit-events", response={200: AuditPage, **ERRORS}, summary="Audit events, oldest first, cursor-paged")
def audit_events(request: HttpRequest, params: Query[AuditQuery]):
    """With a ``read`` token, your own events; with ``desk:read``, those of
    the traders on your desks (every event for a superuser), with phone
    numbers and addresses masked for a lead. Poll with ``after`` set to the
    last ``next_after``: ids only grow, and events newer than a few seconds
    wait for the next poll, so that one still being written cannot be skipped."""
    caller: tokens.Caller = request.auth
    user = caller.user
    lead = caller.may("desk:read")
    if lead:
        # A superuser's feed is the whole trail, events about no one (a failed sign-in) included.
        events = AuditEvent.objects.all() if user.is_superuser else AuditEvent.objects.filter(subject__in=overseen_users(user))
    else:
        require(request, "read")
        events = AuditEvent.objects.for_user(user)
    settled = timezone.now() - timedelta(seconds=settings.GATECHECK_AUDIT_FEED_SETTLE_SECONDS)
    page = []
    for event in events.filter(pk__gt=params.after).select_related("actor", "subject").order_by("pk")[: params.limit]:
        if event.at > settled:
            break  # this one and every later id wait for the next poll
        page.append(event)
    if lead:
        record_read(action="audit.exported", request=request, details={"via": "api", "token": caller.token.pk, "events": len(page)})
    shown = [_as_led(e) if lead and not user.is_superuser else _as_owner(e) for e in page]
    return {"events": shown, "next_after": page[-1].pk if page else params.after}


def _as_owner(e: AuditEvent) -> dict[str, Any]:
    """An event as its own person (or a superuser) reads it."""
    return {
        "id": e.pk, "at": e.at, "action": e.action, "outcome": e.outcome,
        "actor": e.actor.username if e.actor else None, "subject": e.subject.username if e.subject else None,
        "object_label": e.object_label, "ip": e.ip, "details": e.details,
    }


def _as_led(e: AuditEvent) -> dict[str, Any]:
    """An event as a desk lead may read it: what happened, to whom and when,
    the label masked; never the address nor the details (free text, old values)."""
    return {**_as_owner(e), "object_label": mask_text(e.object_label), "ip": None, "details": {}}
