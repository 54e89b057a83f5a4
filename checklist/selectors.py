"""Reads with logic: build immutable inventory snapshots for the rules engine.

One call builds snapshots for one trader or many with a fixed number of
queries (one per table), whatever the number of traders or items.
``limits`` is re-exported from devices.selectors, where it is defined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Case, When

from devices import selectors as devices_selectors
from devices.models import TrustedDevice
from devices.selectors import Section, limits
from readiness import rules
from readiness.vocabulary import ACCESS_POINTS, TASKS

from .models import AcceptedRisk, Drill, Permission, ReadinessSnapshot, Subscription, TradingProfile

PLAN_FIELDS = {task: f"plan_{task}" for task in TASKS}

SECTIONS: Mapping[str, Section] = {
    **devices_selectors.SECTIONS,
    "subscriptions": Section(Subscription, ("region", "feed", "active"), ("region", "feed"), lambda pk, *values: rules.Subscription(*values, id=pk)),
    "drills": Section(Drill, ("started_at", "finished_at", "lost_device", "completed"), ("started_at",), lambda pk, *values: rules.Drill(*values, id=pk)),
    "accepted_risks": Section(AcceptedRisk, ("rule", "reason", "until"), ("rule",), lambda pk, *values: rules.AcceptedRisk(*values, id=pk)),
    "permissions": Section(
        Permission, ("product", "region", "status", "requested_on"), ("product", "region"), lambda pk, *values: rules.Permission(*values, id=pk)
    ),
}
ALL_SECTIONS = ("profile", *SECTIONS)
# What due dates and accepted risks read: the desk table needs no more.
DUE_SECTIONS = ("devices", "recovery_methods", "api_keys", "drills", "accepted_risks", "permissions")


def profiles_for(ids: list[int]) -> dict[int, rules.Profile]:
    rows = TradingProfile.objects.filter(owner_id__in=ids).values_list(
        "owner_id", "broker", "broker_mfa", "regions_traded", "products_traded", *PLAN_FIELDS.values()
    )
    return {
        owner_id: rules.Profile(broker, mfa, tuple(regions or ()), tuple(zip(PLAN_FIELDS, plan, strict=True)), tuple(products or ()))
        for owner_id, broker, mfa, regions, products, *plan in rows
    }


def inventories_for(user_ids: Iterable[int], sections: Iterable[str] = ALL_SECTIONS) -> dict[int, rules.Inventory]:
    """Snapshots for many traders, one query per section asked for (see
    devices.selectors.inventories_for, the one builder); sections not asked for stay empty."""
    ids = list(user_ids)
    wanted = set(sections)
    profiles = profiles_for(ids) if "profile" in wanted else None
    return devices_selectors.inventories_for(ids, {name: s for name, s in SECTIONS.items() if name in wanted}, profiles)


def inventory_for(user) -> rules.Inventory:
    return inventories_for([user.pk])[user.pk]


def report_for(user, as_of: date) -> rules.Report:
    """Score one trader on ``as_of``."""
    return rules.evaluate(inventory_for(user), as_of, limits())


def devices_unfit(user, catalog) -> list[tuple[str, list[str]]]:
    """Devices with access points the broker does not offer, and those points."""
    unfit = []
    for name, platforms in TrustedDevice.objects.for_owner(user).order_by("name").values_list("name", "platforms"):
        missing = [ACCESS_POINTS.get(code, code) for code in platforms or () if not catalog.offers(code)]
        if missing:
            unfit.append((name, missing))
    return unfit


def findings_for(user, section: str, as_of: date) -> dict[int | str | None, tuple[rules.Finding, ...]]:
    """A section's findings for its page, keyed by row id (``None``: something missing)."""
    return report_for(user, as_of).findings_by_ref(section)
def profile_for(user) -> TradingProfile:
    """The trader's profile, or an unsaved default one (saved on the first edit)."""
    return TradingProfile.objects.for_owner(user).first() or TradingProfile(owner=user)


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
