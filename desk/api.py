"""``/api/v1/desk/rows``: the desk table, paged, filtered and sorted exactly as ``/desk/``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from accounts.api import ERRORS, problem, require
from accounts.audit import record_read
from accounts.selectors import desks_for

from .forms import DeskFilterForm
from .selectors import desk_table

router = Router(tags=["desk"])

def _choices(name: str):
    """The desk page's own choices for a filter, as a schema type (written once, in DeskFilterForm)."""
    return Literal[tuple(str(value) for value, _ in DeskFilterForm.base_fields[name].choices if value != "")]  # type: ignore[misc]


class DeskRowsQuery(Schema):
    q: str = Field("", max_length=DeskFilterForm.base_fields["q"].max_length, description="Part of a name or username.")
    level: _choices("level") | None = None  # type: ignore[valid-type]
    failing: _choices("failing") | None = Field(None, description="A rule that fails outright.")  # type: ignore[valid-type]
    rule: _choices("rule") | None = Field(None, description="A rule that fails or is partial.")  # type: ignore[valid-type]
    due: _choices("due") | None = None  # type: ignore[valid-type]
    desk: int | None = Field(None, ge=1, le=2**62, description="One of your desks' ids.")
    sort: _choices("sort") = "score"  # type: ignore[valid-type]
    dir: _choices("dir") = "asc"  # type: ignore[valid-type]
    page: int = Field(1, ge=1, le=10**6)


class DeskRowOut(Schema):
    id: int
    username: str
    name: str
    score: int | None
    level: str | None
    scored_on: date | None
    change: int | None
    rules: dict[str, str | None] = Field(description="Each rule's stored status (pass, partial, fail, na, accepted) or null.")
    overdue: int
    due_soon: int


class DeskPage(Schema):
    page: int
    pages: int
    matching: int
    total: int
    rows: list[DeskRowOut]


@router.get("/desk/rows", response={200: DeskPage, **ERRORS}, summary="One page (50 rows) of your desks")
def desk_rows(request: HttpRequest, params: Query[DeskRowsQuery]):
    """The traders of the desks you lead (every desk for a superuser), with
    the filters and sorts of the desk page. Needs a ``desk:read`` token."""
    caller = require(request, "desk:read")
    user = caller.user
    if not user.oversees_desks:
        return problem(403, "You no longer lead a desk.")
    data = {key: value for key, value in params.dict().items() if value not in (None, "")}
    form = DeskFilterForm(desks_for(user), data)
    if not form.is_valid():
        if "desk" in form.errors:
            raise Http404
        return problem(422, "The filters are not valid.",
                       errors=[{"path": field, "message": str(errs[0])} for field, errs in form.errors.items()])
    table = desk_table(viewer=user, as_of=timezone.localdate(), query=form.query())
    record_read(action="desk.viewed", request=request, details={"rows": len(table.shown), "page": table.page, "via": "api", "token": caller.token.pk})
    rows = [
        {
            "id": row.id, "username": row.username, "name": row.name, "score": row.score, "level": row.level,
            "scored_on": row.scored_on, "change": row.change, "rules": row.cells, "overdue": row.overdue, "due_soon": row.due_soon,
        }
        for row in table.shown
    ]
    return {"page": table.page, "pages": table.pages, "matching": table.matching, "total": table.total, "rows": rows}
