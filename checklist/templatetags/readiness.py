"""Words for statuses, levels and findings, and numbers as people read them.

Every label and glyph comes from ``readiness.vocabulary``; these filters only
look them up, so a page never spells a status its own way.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from readiness import rules
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


@register.simple_tag
def due_soon_days() -> int:
    """The due-soon window, for the pages that say it (readiness.rules)."""
    return rules.DUE_SOON_DAYS


@register.filter
def severity_status(severity: str) -> str:
    """The tag colour of a finding: critical reads as a fail, the rest as partial."""
    return words.FAIL if severity == "critical" else words.PARTIAL


@register.filter
def in_voice(finding, voice: str = "trader") -> str:
    """A finding as the rules word it: to the trader, or (``"lead"``) about them."""
    return finding.in_voice(LEAD if voice == "lead" else TRADER)
