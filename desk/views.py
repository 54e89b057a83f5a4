"""The desk lead's pages: the desk table, a trader's detail, reminders,
the CSV export and the MFA reset of a locked-out trader."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import once
from accounts.audit import record_read
from accounts.decorators import desk_lead_required
from accounts.selectors import desks_for, overseen_users
from accounts.signin import enrolment_code_for
from devices import incidents
from devices.models import Incident
from readiness import rules
from readiness import vocabulary as words

from . import services
from .forms import DeskFilterForm, MfaResetForm
from .selectors import (
    LEVEL_LABELS,
    RULE_IDS,
    RULE_SHORT,
    RULE_TITLES,
    DeskRow,
    can_act_on,
    can_reset_mfa,
    desk_table,
    open_incidents,
    trader_detail,
)

# A primary key no row has: the row URLs are built once per page around it.
_PK_SLOT = 2147483647

COLUMNS = (("name", "Trader"), ("score", "Score"), ("level", "Level"), ("change", "7 days"), ("due", "Due"))


def _filter_form(request: HttpRequest) -> DeskFilterForm:
    form = DeskFilterForm(desks_for(request.user), request.GET or None)
    if form.is_bound and not form.is_valid():
        if "desk" in form.errors:
            # Another desk's id: as if it did not exist.
            raise Http404
        # Anything else malformed falls back to the unfiltered table.
        form = DeskFilterForm(desks_for(request.user))
    if not form.is_bound:
        form.cleaned_data = {}
    return form


# A short name without the soft hyphens the column heads break at.
RULE_SHORT_PLAIN = {rid: RULE_SHORT[rid].replace("\u00ad", "") for rid in RULE_IDS}
NO_REASON = "Open the trader's page for the reason."
# A heatmap cell's own words, escaped once: the template writes them as they are.
CELL_WORDS = {status: (status, escape(words.STATUS_GLYPHS[status]), escape(word)) for status, word in words.STATUS_WORDS.items()}
CELL_TITLES = {rid: escape(RULE_TITLES[rid]) for rid in RULE_IDS}


@lru_cache(maxsize=1024)
def status_tag(status: str, text: str, glyph: str = "", extra: str = "") -> SafeString:
    """A status tag as ``_partials.html#tag`` writes it (the one place of its
    markup), rendered once per process for each tag: a desk page shows few distinct ones."""
    context = {"status": status, "text": text, "glyph": glyph, "extra": extra}
    return mark_safe(render_to_string("_partials.html#tag", context))  # noqa: S308 - Django's escaping template output


class ShownRow(NamedTuple):
    """A desk row as the heatmap shows it (``templates/jinja2/desk/heatmap.html``)."""

    row: DeskRow
    # The trader's page, escaped once: the heatmap's cells write it as it is.
    url: SafeString
    # The reminder's form action, when one can be sent today.
    remind: str
    level_tag: SafeString
    change: str
    change_class: str
    # Overdue and due-soon tags, and today's reminder (empty when none).
    due_tags: SafeString
    sent_tag: SafeString
    # The phone's summary cell: (status, glyph, short rule names) for fails, then partials.
    shortfalls: tuple[tuple[str, str, str], ...]
    # Per rule: (status or None, glyph, word, rule id, tooltip id, rule title, reason).
    cells: tuple[tuple, ...]


def _shown(row: DeskRow, url: str, remind: str) -> ShownRow:
    """What the row's markup needs, worded: the heatmap cells link to the
    rule on the trader's page, with the stored reason as their tooltip."""
    reasons = row.reasons or {}
    if row.change is None:
        change, change_class = "—", "chg"
    else:
        change = f"{row.change:+d}" if row.change else "±0"
        change_class = "chg chg-up" if row.change > 0 else ("chg chg-down" if row.change < 0 else "chg")
    shortfalls = tuple(
        (status, words.STATUS_GLYPHS[status], ", ".join(names))
        for status in (words.FAIL, words.PARTIAL)
        if (names := [RULE_SHORT_PLAIN[rid] for rid in RULE_IDS if row.cells[rid] == status])
    )
    cells = tuple(
        (*CELL_WORDS[status], rid, f"tip-{row.id}-{n}", CELL_TITLES[rid], reasons.get(rid) or NO_REASON)
        if (status := row.cells[rid]) is not None
        else (None,) * 7
        for n, rid in enumerate(RULE_IDS)
    )
    due = [status_tag(words.FAIL, f"overdue {row.overdue}")] if row.overdue else []
    due += [status_tag(words.PARTIAL, f"due soon {row.due_soon}")] if row.due_soon else []
    sent = f"Reminder sent {timezone.localtime(row.reminded_at):%H:%M}" if row.reminded_at else ""
    return ShownRow(
        row=row,
        url=escape(url),
        remind=remind if (row.overdue or row.due_soon) and row.reminded_at is None else "",
        level_tag=status_tag(words.level_status(row.level), LEVEL_LABELS.get(row.level or "", "Not scored")),
        change=change,
        change_class=change_class,
        due_tags=mark_safe(" ".join(due)),  # noqa: S308 - joined tags, each escaped by its template
        sent_tag=status_tag(words.PASS, sent, "✓", "reminded") if sent else SafeString(""),
        shortfalls=shortfalls,
        cells=cells,
    )


def _heatmap(form: DeskFilterForm, table, query, rows: list[ShownRow]) -> SafeString:
    context = {"headers": _headers(form, query), "totals": _rule_totals(form, table, query), "matching": table.matching, "rows": rows}
    return mark_safe(render_to_string("desk/heatmap.html", context, using="jinja2"))  # noqa: S308 - Jinja2 escapes (autoescape on)


def _query_string(form: DeskFilterForm, **changes) -> str:
    # A new sort or filter starts again at page 1; only the pager sets a page.
    params = {k: v for k, v in (form.data.items() if form.is_bound else []) if k not in ("trader", "page") and v}
    params.update({k: v for k, v in changes.items() if v})
    return urlencode(params)


def _pager(form: DeskFilterForm, table) -> dict | None:
    if table.pages <= 1:
        return None
    return {
        "previous": "?" + _query_string(form, page=table.page - 1) if table.page > 1 else "",
        "next": "?" + _query_string(form, page=table.page + 1) if table.page < table.pages else "",
    }


def _rule_totals(form: DeskFilterForm, table, query) -> list[dict]:
    """Per rule, how many of the matching traders fail it or are partial,
    each a link to the "failing or partial" filter of that rule."""
    totals = table.rule_totals or {}
    return [
        {
            "rule": rid,
            "title": RULE_TITLES[rid],
            "fail": totals.get(rid, (0, 0))[0],
            "partial": totals.get(rid, (0, 0))[1],
            "url": "?" + _query_string(form, rule=rid),
            "active": query.rule == rid,
        }
        for rid in RULE_IDS
    ]


def _trend(table) -> dict | None:
    """The desk average's trend: first and last points, the change, and a sparkline."""
    points = table.trend or []
    if len(points) < 2:
        return None
    (first_day, first), (_, last) = points[0], points[-1]
    weeks = round((table.as_of - first_day).days / 7)
    return {"from": first, "to": last, "since": first_day, "change": last - first, "weeks": weeks, "svg": _sparkline(points)}


def _headers(form: DeskFilterForm, query) -> list[dict]:
    heads = [(key, label, "") for key, label in COLUMNS] + [(rid, RULE_SHORT[rid], RULE_TITLES[rid]) for rid in RULE_IDS]
    out = []
    for key, label, title in heads:
        active = query.sort == key
        direction = "asc" if (not active or query.descending) else "desc"
        out.append(
            {
                "key": key,
                "label": label,
                "title": title,
                "url": "?" + _query_string(form, sort=key, dir=direction),
                "aria_sort": ("descending" if query.descending else "ascending") if active else "",
                "rule": key in RULE_TITLES,
            }
        )
    return out


@desk_lead_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request)
    query = form.query()
    table = desk_table(viewer=request.user, as_of=timezone.localdate(), query=query)
    detail = reverse("desk:trader_detail", args=[_PK_SLOT])
    remind_action = reverse("desk:trader_remind", args=[_PK_SLOT])
    slot = str(_PK_SLOT)
    rows = [_shown(row, detail.replace(slot, str(row.id)), remind_action.replace(slot, str(row.id))) for row in table.shown]
    record_read(action="desk.viewed", request=request, details={"rows": len(table.shown), "page": table.page})
    return render(
        request,
        "desk/dashboard.html",
        {
            "form": form,
            "controls": form.controls(),
            "table": table,
            "heatmap": _heatmap(form, table, query, rows),
            "trend": _trend(table),
            "back_query": _query_string(form, page=table.page if table.page > 1 else None),
            "levels": [(level, label, table.level_counts[level], words.level_status(level)) for level, label in LEVEL_LABELS.items()],
            "export_query": _query_string(form),
            "pager": _pager(form, table),
            "filtered": bool(query.filtered or query.desks),
            "many_desks": len(form.desk_choices) > 1,
            "incidents": open_incidents(request.user),
        },
    )


@desk_lead_required
@never_cache
def export_csv(request: HttpRequest) -> HttpResponse:
    """The whole desk table as CSV (every page), with the page's filters (or
    the traders an admin action selected), streamed. A download is a GET, so
    after a step-up the lead comes straight back to it."""
    form = _filter_form(request)
    today = timezone.localdate()
    lines = services.desk_export(request=request, viewer=request.user, as_of=today, query=form.query(), filters=form.cleaned_data)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="desk-readiness-{today:%Y-%m-%d}.csv"'
    return response


@desk_lead_required
@never_cache
def trader_view(request: HttpRequest, pk: int) -> HttpResponse:
    trader = get_object_or_404(overseen_users(request.user), pk=pk)
    detail = trader_detail(trader, timezone.localdate())
    record_read(action="desk.trader_viewed", request=request, subject=trader, object_label=trader.username)
    return render(
        request,
        "desk/trader_detail.html",
        {
            "d": detail,
            "level_label": LEVEL_LABELS[detail.report.level],
            "level_tag": words.level_status(detail.report.level),
            "can_reset": can_reset_mfa(request.user, trader),
            "can_act": can_act_on(request.user, trader),
            "enrolment_code": enrolment_code_for(trader),
            "sparkline": _sparkline(detail.history),
        },
    )


def _sparkline(history: list[tuple]) -> SafeString:
    """Score history as a small inline SVG (no script, no inline style)."""
    if len(history) < 2:
        return SafeString("")
    width, height = 360, 60
    first = history[0][0]
    span = max((history[-1][0] - first).days, 1)
    points = " ".join(f"{(day - first).days / span * width:.1f},{height - score / 100 * height:.1f}" for day, score in history)
    return format_html(
        '<svg class="spark" viewBox="0 -2 {} {}" role="img" aria-label="Score from {} to {}: {} to {}" preserveAspectRatio="none">'
        '<line class="spark-line-85" x1="0" x2="{}" y1="{}" y2="{}"></line>'
        '<line class="spark-line-60" x1="0" x2="{}" y1="{}" y2="{}"></line>'
        '<polyline points="{}"></polyline></svg>',
        width,
        height + 4,
        history[0][0],
        history[-1][0],
        history[0][1],
        history[-1][1],
        width,
        height * (1 - rules.READY_FROM / 100),
        height * (1 - rules.READY_FROM / 100),
        width,
        height * (1 - rules.AT_RISK_FROM / 100),
        height * (1 - rules.AT_RISK_FROM / 100),
        points,
    )


@desk_lead_required
@require_POST
def trader_remind(request: HttpRequest, pk: int) -> HttpResponse:
    trader = get_object_or_404(overseen_users(request.user), pk=pk)
    result = services.reminder_send(request=request, trader=trader, as_of=timezone.localdate())
    name = trader.get_full_name() or trader.username
    if result is services.Sent.SENT:
        messages.success(request, f"Reminder e-mailed to {name}.")
    elif result is services.Sent.ALREADY:
        messages.warning(request, f"{name} already got a reminder today; one a day is the limit.")
    elif result is services.Sent.FAILED:
        messages.error(request, f"The reminder to {name} could not be sent just now (the mail server did not answer). Try again later.")
    else:
        messages.error(request, f"{name} has no verified e-mail address: reminders go only to a confirmed address.")
    if request.POST.get("next") == "desk":
        # Back to the same filters, sort and page (only the table's own parameters).
        back = QueryDict(request.POST.get("back", ""))
        params = urlencode([(key, value) for key in DeskFilterForm.base_fields if key != "trader" for value in back.getlist(key)])
        return redirect(reverse("desk:dashboard") + (f"?{params}" if params else ""))
    return redirect("desk:trader_detail", pk=trader.pk)


@desk_lead_required
@require_POST
def incident_ack(request: HttpRequest, pk: int) -> HttpResponse:
    """A lead says "I'm on it" for a bot incident of one of their traders."""
    incident = get_object_or_404(Incident.objects.filter(owner__in=overseen_users(request.user)).select_related("heartbeat__automation"), pk=pk)
    name = incident.heartbeat.automation.name
    if incidents.acknowledge(incident=incident, by=request.user, request=request, via="desk"):
        messages.success(request, f"You are on '{name}': the desk sees it, and it will not be escalated.")
    else:
        messages.info(request, f"'{name}' was acknowledged already, or is over.")
    if request.POST.get("next") == "trader":
        return redirect("desk:trader_detail", pk=incident.owner_id)
    return redirect("desk:dashboard")


@desk_lead_required
@never_cache
def trader_mfa_reset(request: HttpRequest, pk: int) -> HttpResponse:
    trader = get_object_or_404(overseen_users(request.user), pk=pk)
    if not can_reset_mfa(request.user, trader):
        pending = enrolment_code_for(trader)
        return render(request, "desk/mfa_reset_refused.html", {"trader": trader, "pending": pending if pending and pending.pending else None}, status=403)
    form = MfaResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = services.trader_mfa_reset(request=request, trader=trader, reason=form.cleaned_data["reason"])
        # POST, redirect, GET: the next page shows the code exactly once
        # (accounts.once: never in the session table; only its hash is stored).
        return once.show_once(request, "enrolment_code", {"trader": trader.pk, "code": code}, "desk:trader_enrolment_code", trader.pk)
    return render(request, "desk/mfa_reset.html", {"form": form, "trader": trader})


@desk_lead_required
@never_cache
def trader_enrolment_code(request: HttpRequest, pk: int) -> HttpResponse:
    """The enrolment code of the reset just made, shown once."""
    trader = get_object_or_404(overseen_users(request.user), pk=pk)
    shown = once.take(request, "enrolment_code")
    code = shown["code"] if shown and shown.get("trader") == trader.pk else None
    response = render(request, "desk/enrolment_code.html", {"trader": trader, "code": code, "pending": enrolment_code_for(trader)})
    return once.forget(request, response, "enrolment_code") if code else response
