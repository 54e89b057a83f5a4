"""``/api/v1/`` routes over the inventory: the ``/2`` document (GET and PUT
through the importer's one write path), heartbeat statuses and recorded key
rotations. Authentication, scopes and errors: ``accounts.api``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError

from accounts.api import ERRORS, Day, Problem, problem, require
from accounts.audit import record_read
from readiness.secrets import fingerprint_problem
from readiness.validators import text_problem

from . import selectors, services
from .inventory import FORMAT, FORMATS, MAX_IMPORT_BYTES, SECTIONS, InventoryInvalid, export_inventory, load, replace_inventory
from .models import ApiKey, Heartbeat

router = Router()

# The /2 document as the schema describes it; the importer checks every
# field and answers each refusal with its JSON path (INVENTORY.md).
_SECTION_SCHEMAS = {section.key: ({"type": "object"} if section.key == "profile" else {"type": "array", "items": {"type": "object"}}) for section in SECTIONS}
INVENTORY_SCHEMA = {
    "type": "object",
    "description": f"A {FORMAT} document (INVENTORY.md). At most {MAX_IMPORT_BYTES // 1024} KB.",
    "required": ["format"],
    "additionalProperties": False,
    "properties": {"format": {"type": "string", "enum": list(FORMATS)}, **_SECTION_SCHEMAS},
}


@router.get("/inventory", tags=["inventory"], response={200: dict[str, Any], **ERRORS}, summary="Your whole inventory as a /2 document",
            openapi_extra={"responses": {200: {"content": {"application/json": {"schema": INVENTORY_SCHEMA}}}}})
def inventory_get(request: HttpRequest):
    caller = require(request, "read")
    record_read(action="inventory.exported", request=request, details={"via": "api", "token": caller.token.pk})
    return export_inventory(caller.user)


class Replaced(Schema):
    counts: dict[str, int]
    score: int
    level: str


@router.put(
    "/inventory", tags=["inventory"], response={200: Replaced, **ERRORS, 413: Problem},
    summary="Replace your whole inventory",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": INVENTORY_SCHEMA}}}},
)
def inventory_put(request: HttpRequest):
    """The same checks, limits and write as an uploaded file: every problem
    comes back with its JSON path in ``errors``, and nothing is written
    unless the whole document is accepted."""
    caller = require(request, "inventory:write")
    declared = request.headers.get("Content-Length", "0")
    if not declared.isdigit():
        return problem(400, "Content-Length must be a number of bytes.")
    if int(declared) > MAX_IMPORT_BYTES:
        return problem(413, f"An inventory is at most {MAX_IMPORT_BYTES // 1024} KB.")
    try:
        plan = load(request.body)
    except InventoryInvalid as invalid:
        errors = [{"path": p.path, "message": p.message} for p in invalid.problems]
        return problem(422, f"The document was refused ({invalid.total} problem{'s' if invalid.total != 1 else ''}); nothing changed.",
                       errors=errors, more=invalid.more)
    counts = replace_inventory(user=caller.user, plan=plan, request=request, source="api")
    report = selectors.report_for(caller.user, timezone.localdate())
    return {"counts": counts, "score": report.score, "level": report.level}


class HeartbeatOut(Schema):
    automation: str
    status: str = Field(description="new, up, late, down, failing or idle (outside its market window) (CHECKLIST.md); paused when the automation is paused")
    last_ping_kind: str | None
    last_ping_at: datetime | None
    period_minutes: int
    grace_minutes: int


@router.get("/heartbeats", tags=["heartbeats"], response={200: list[HeartbeatOut], **ERRORS}, summary="Your bots' heartbeat statuses")
def heartbeats(request: HttpRequest):
    """Statuses only: a ping address or token is never part of an answer."""
    caller = require(request, "read")
    now = timezone.now()
    out = []
    for beat in Heartbeat.objects.for_owner(caller.user).select_related("automation").order_by("automation__name", "pk"):
        status = beat.status_at(now)
        out.append({
            "automation": beat.automation.name,
            "status": "paused" if beat.automation.status == beat.automation.Status.PAUSED else status,
            "last_ping_kind": beat.last_kind or None,
            "last_ping_at": beat.last_at,
            "period_minutes": beat.period_minutes,
            "grace_minutes": beat.grace_minutes,
        })
    return out


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fingerprint: str | None = Field(
        None, max_length=ApiKey._meta.get_field("fingerprint").max_length, description="The new key's last characters, never the key."
    )
    expires_on: Day | None = Field(None, description="The new key's expiry, if it has one.")


class RotationOut(Schema):
    label: str
    last_rotated_on: date
    recorded_at: datetime
    token: str


@router.post(
    "/keys/{label}/rotated", tags=["inventory"], response={200: RotationOut, **ERRORS}, summary="Record that a key was rotated",
    openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": Rotation.model_json_schema()}}}},
)
def key_rotated(request: HttpRequest, label: str):
    """A pipeline that rotated a broker API key says so: the key's rotation
    date becomes today by Gatecheck's clock, marked *recorded* with this
    token and the time (the desk shows it apart from dates a trader typed).
    The key is found by its label; an unknown label is 404."""
    caller = require(request, "inventory:write")
    key = get_object_or_404(ApiKey.objects.for_owner(caller.user), label=label)
    try:
        # The body is optional: a bare POST records the rotation alone.
        rotation = Rotation.model_validate_json(request.body) if request.body.strip() else Rotation()
    except PydanticError as error:
        errors = [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()]
        return problem(422, "The body is not valid.", errors=errors)
    if rotation.fingerprint and (why := fingerprint_problem(rotation.fingerprint) or text_problem(rotation.fingerprint)):
        return problem(422, "The fingerprint is refused.", errors=[{"path": "fingerprint", "message": why}])
    services.key_rotation_record(request=request, key=key, token=caller.token, fingerprint=rotation.fingerprint, expires_on=rotation.expires_on)
    key.refresh_from_db()
    return {"label": key.label, "last_rotated_on": key.last_rotated_on, "recorded_at": key.rotation_recorded_at, "token": caller.token.name}
