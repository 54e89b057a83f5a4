"""Words for statuses, levels and findings, and numbers as people read them.

Every label and glyph comes from ``readiness.vocabulary``; these filters only
look them up, so a page never spells a status its own way.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from readiness import vocabulary as words
from readiness.masking import mask_label
from readiness.rules import LEAD, TRADER, duration_text

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    return words.STATUS_LABELS.get(status, status)


@register.filter
def status_glyph(status: str) -> str:
    """A shape for each status, so that it reads without colour."""
    return words.STATUS_GLYPHS.get(status, "")


@register.filter
def level_label(level: str) -> str:
    return words.LEVEL_LABELS.get(level, level)


@register.filter
def level_status(level: str | None) -> str:
    """The status whose colour and glyph a level borrows (``na`` when unscored)."""
    return words.LEVEL_STATUS.get(level or "", words.NA)


@register.filter
def severity_label(severity: str) -> str:
    return words.SEVERITY_LABELS.get(severity, severity)


@register.filter
def severity_glyph(severity: str) -> str:
    return words.SEVERITY_GLYPHS.get(severity, "")


@register.filter
def with_article(word: str) -> str:
    """``an EU``, ``a US``."""
    return words.with_article(word)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def points(value: float) -> str:
    """7.5 -> "7.5", 15.0 -> "15"."""
    return f"{value:g}"


@register.filter
def duration(value: timedelta | None) -> str:
    return "" if value is None else duration_text(value)


@register.filter
def signed(value: int) -> str:
    """+5, −3 (a real minus sign), 0."""
    if value > 0:
        return f"+{value}"
    if value < 0:
        return f"\u2212{-value}"
    return "0"


@register.filter
def clock(value: timedelta) -> str:
    """A running clock: 07:05, or 1:02:09 past an hour."""
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


@register.filter
def recovery_kind(kind: str) -> str:
    return words.RECOVERY_KIND_TITLES.get(kind, kind)


@register.filter
def masked(method) -> str:
    """A recovery method's label with phone numbers and e-mail addresses masked."""
    return mask_label(method.kind, method.label)


@register.filter
def access_points(codes) -> str:
    """``["tws", "mobile"]`` -> ``Trader Workstation, IBKR Mobile``, in catalog order."""
    order = list(words.ACCESS_POINTS)
    return ", ".join(
        words.ACCESS_POINTS.get(code, code) for code in sorted(codes, key=lambda c: (order.index(c) if c in order else len(order), c))
    )


@register.filter
def access_points_for(codes, catalog) -> str:
    """Access-point codes by the trader's broker's own names, in catalog order."""
    order = list(words.ACCESS_POINTS)
    ordered = sorted(codes or (), key=lambda c: (order.index(c) if c in order else len(order), c))
    return ", ".join(catalog.point_name(code) for code in ordered)


@register.filter
def device_kind(kind: str) -> str:
    return words.DEVICE_KIND_WORDS.get(kind, kind)


@register.simple_tag
def history_dots(chart) -> SafeString:
    """The history chart's dots, built in one pass: 90 points through the
    template engine's date and number filters were half the dashboard's time."""
    return mark_safe(  # noqa: S308 - every value is escaped here
        "".join(
            f'<circle class="history-dot dot-{escape(p.level)}" cx="{p.x}" cy="{p.y}" r="3"><title>{p.day.isoformat()}: {p.score}</title></circle>'
            for p in chart.points
        )
    )


@register.simple_tag
def history_rows(chart) -> SafeString:
    """The same scores as table rows, newest first."""
    return mark_safe(  # noqa: S308 - every value is escaped here
        "".join(
            f"<tr><td>{p.day.isoformat()}</td><td>{p.score}</td><td>{escape(level_label(p.level))}</td></tr>" for p in reversed(chart.points)
        )
    )


def _findings_html(findings, lead: bool = False) -> str:
    """The findings of one item (or of what is missing) as the rules word
    them, severity as a glyph and a word (readable without colour)."""
    if not findings:
        return ""
    items = "".join(
        f'<li class="finding finding-{escape(f.severity)}"><span class="tag tag-{"fail" if f.severity == "critical" else "partial"}">'
        f'<span aria-hidden="true">{escape(severity_glyph(f.severity))}</span> {escape(severity_label(f.severity))}</span> '
        f'<span class="finding-text">{escape(f.in_voice(LEAD if lead else TRADER))}</span></li>'
        for f in findings
    )
    return f'<ul class="findings">{items}</ul>'


@register.simple_tag
def findings_list(findings, lead=False) -> SafeString:
    """``_findings.html``: one implementation for every page that lists findings."""
    return mark_safe(_findings_html(findings, bool(lead)))  # noqa: S308 - every value is escaped in _findings_html


# Findings shown on a dashboard card before "and N more".
CARD_FINDINGS = 3


@register.simple_tag
def rule_cards(cards) -> SafeString:
    """The dashboard's rule cards (``checklist.views.Card``), built in one
    pass: eleven cards of includes and filters were a third of the page."""
    accept = reverse("checklist:risk_accept")
    out = []
    for card in cards:
        r, slug = card.result, escape(card.slug)
        glyph, word = card.status
        if r.findings:
            body = _findings_html(r.findings[:CARD_FINDINGS])
            if len(r.findings) > CARD_FINDINGS:
                body += (
                    f'<details class="more-findings"><summary>and {len(r.findings) - CARD_FINDINGS} more</summary>'
                    f"{_findings_html(r.findings[CARD_FINDINGS:])}</details>"
                )
        else:
            body = f'<p class="dash-rule-reason">{escape(r.reason)}</p>'
        if r.accepted_until:
            body += (
                f'<p class="risk-note"><span class="tag tag-accepted"><span aria-hidden="true">{escape(status_glyph("accepted"))}</span> '
                f"Risk accepted</span> until {r.accepted_until.isoformat()}: {escape(card.accepted_reason)}</p>"
            )
        fix = (
            f'<a class="btn btn-small btn-primary" href="{escape(card.href)}">Fix this</a>'
            if card.to_fix
            else f'<a class="btn btn-small" href="{escape(card.href)}">Review</a>'
        )
        if card.open_risk:
            fix += f'<a class="btn btn-small btn-quiet" href="{accept}?{escape(urlencode({"rule": r.id}))}">Accept this risk…</a>'
        status = escape(r.status)
        out.append(
            f'<article class="card dash-rule dash-rule-{status}" id="rule-{slug}" aria-labelledby="rule-{slug}-title">'
            f'<div class="dash-rule-head"><h3 id="rule-{slug}-title">{escape(r.title)}</h3>'
            f'<span class="tag tag-{status} rule-status"><span aria-hidden="true">{escape(glyph)}</span> {escape(word)}</span></div>'
            f'<p class="dash-rule-points muted small">{escape(card.points_text)}</p>{body}'
            f'<div class="dash-rule-foot">{fix}</div></article>'
        )
    return mark_safe("".join(out))  # noqa: S308 - every value is escaped above
