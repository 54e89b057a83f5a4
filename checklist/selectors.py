"""What the trader's dashboard reads: today's report from the inventory's
snapshot (devices.selectors, the one builder) and the stored history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Case, When

from devices.selectors import inventory_for, limits
from readiness import rules

from .models import ReadinessSnapshot

HISTORY_DAYS = 90


@dataclass(frozen=True)
class Dashboard:
    """Everything the trader's dashboard shows, read in a fixed number of queries."""

    inventory: rules.Inventory
    report: rules.Report
    history: tuple[tuple[date, int, str], ...]
    week_ago: tuple[date, int] | None
    due: tuple[rules.DueItem, ...]
    # The first date after the window, so the list never ends in silence.
    next_due: rules.DueItem | None = None
    # Today's stored (score, level, statuses), or None: the page writes a
    # snapshot only when the score it shows differs from it.
    stored_today: tuple[int, str, dict[str, str]] | None = None

    @property
    def week_change(self) -> int | None:
        return None if self.week_ago is None else self.report.score - self.week_ago[1]


def dashboard_for(user, as_of: date) -> Dashboard:
    """Score ``user`` on ``as_of`` and read the last 90 days of stored scores.

    The day scored replaces any stored snapshot of that day in the history,
    so the chart ends on the score shown, whether or not it was stored yet.
    """
    inventory = inventory_for(user)
    lim = limits()
    report = rules.evaluate(inventory, as_of, lim)
    # Only today's statuses are read (to tell whether the score changed):
    # decoding 90 days of them was a tenth of the page.
    rows = ReadinessSnapshot.objects.filter(
        user=user, date__gte=as_of - timedelta(days=HISTORY_DAYS - 1), date__lte=as_of
    ).values_list("date", "score", "level", Case(When(date=as_of, then="statuses"), output_field=ReadinessSnapshot._meta.get_field("statuses")))
    stored_today = next(((score, level, statuses) for day, score, level, statuses in rows if day == as_of), None)
    history = (*sorted((day, score, level) for day, score, level, _ in rows if day < as_of), (as_of, report.score, report.level))
    due = rules.merge_due(rules.coming_due(inventory, as_of, lim))
    return Dashboard(
        inventory=inventory,
        report=report,
        history=history,
        week_ago=rules.week_baseline(((day, score) for day, score, _ in history), as_of),
        due=due,
        next_due=next((i for i in rules.merge_due(rules.upcoming_dates(inventory, as_of, lim)) if i not in due and i.due_on > as_of), None),
        stored_today=stored_today,
    )
