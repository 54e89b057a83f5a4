"""Words for statuses and levels, and numbers as people read them."""

from __future__ import annotations

from datetime import timedelta

from django import template

from checklist.recovery import KIND_NAMES, RECOVERY_KIND_NAMES, duration_text
from devices.models import Platform
from readiness import rules
from readiness.masking import mask_label

register = template.Library()

STATUS_LABELS = {rules.PASS: "Pass", rules.PARTIAL: "Partial", rules.FAIL: "Fail", rules.NA: "Not applicable"}
LEVEL_LABELS = {rules.READY: "Ready", rules.AT_RISK: "At risk", rules.NOT_READY: "Not ready"}


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@register.filter
def level_label(level: str) -> str:
    return LEVEL_LABELS.get(level, level)


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
    return RECOVERY_KIND_NAMES.get(kind, kind)


@register.filter
def masked(method) -> str:
    """A recovery method's label with phone numbers and e-mail addresses masked."""
    return mask_label(method.kind, method.label)


@register.filter
def access_points(codes) -> str:
    """``["tws", "mobile"]`` -> ``Trader Workstation, IBKR Mobile``."""
    names = dict(Platform.choices)
    order = list(names)
    return ", ".join(names.get(code, code) for code in sorted(codes, key=lambda c: (order.index(c) if c in order else len(order), c)))


@register.filter
def device_kind(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)
