"""``/api/v1/readiness``: the trader's report with findings, as ``readiness --json``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema

from accounts.api import ERRORS, Day, require
from devices import selectors as devices_selectors

router = Router(tags=["readiness"])


class ReadinessQuery(Schema):
    as_of: Day | None = None


@router.get("/readiness", response={200: dict[str, Any], **ERRORS}, summary="Your readiness report with findings")
def readiness(request: HttpRequest, params: Query[ReadinessQuery]):
    """The ``readiness --json`` object of INVENTORY.md; ``as_of`` (YYYY-MM-DD) scores another day."""
    caller = require(request, "read")
    report = devices_selectors.report_for(caller.user, params.as_of or timezone.localdate())
    return report.as_dict(caller.user.get_username())
