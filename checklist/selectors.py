"""Reads with logic: build immutable inventory snapshots for the rules engine.

One call builds snapshots for one trader or many with a fixed number of
queries (one per table), whatever the number of traders or items.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings

from devices.models import ApiKey, Automation, RecoveryMethod, TrustedDevice
from readiness import rules
from readiness.masking import mask_label

from .models import AcceptedRisk, Drill, ReadinessSnapshot, Subscription, TradingProfile

PLAN_FIELDS = {
    "complex_orders": "plan_complex_orders",
    "transfers_statements": "plan_transfers_statements",
    "alerts_light_execution": "plan_alerts_light_execution",
}


def limits() -> rules.Limits:
    """The readiness limits configured in settings (GATECHECK_LIMITS)."""
    return rules.Limits(**settings.GATECHECK_LIMITS)


def profile_snapshot(profile: TradingProfile | None) -> rules.Profile:
    if profile is None:
        return rules.Profile()
    return rules.Profile(
        broker=profile.broker,
        broker_mfa=profile.broker_mfa,
        regions_traded=tuple(profile.regions_traded or ()),
        interface_plan=tuple((task, getattr(profile, field)) for task, field in PLAN_FIELDS.items()),
    )


def inventories_for(user_ids: Iterable[int]) -> dict[int, rules.Inventory]:
    """Snapshots for many traders in eight queries."""
    ids = list(user_ids)
    parts: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))

    for d in TrustedDevice.objects.filter(owner_id__in=ids).order_by("name"):
        parts["devices"][d.owner_id].append(
            rules.Device(
                name=d.name,
                kind=d.kind,
                platforms=frozenset(d.platforms or ()),
                validated_on=d.validated_on,
                status=d.status,
                browser_saved_password=d.browser_saved_password,
            )
        )
    for r in RecoveryMethod.objects.filter(owner_id__in=ids).order_by("kind", "label"):
        # Masked here, once: reasons, due dates, the calendar feed, the desk and
        # e-mails all quote this label, and only the owner's edit form shows it whole.
        parts["recovery_methods"][r.owner_id].append(
            rules.RecoveryMethod(kind=r.kind, label=mask_label(r.kind, r.label), last_verified_on=r.last_verified_on)
        )
    for k in ApiKey.objects.filter(owner_id__in=ids).order_by("label"):
        parts["api_keys"][k.owner_id].append(
            rules.ApiKey(
                label=k.label,
                scopes=frozenset(k.scopes or ()),
                service_account=k.service_account,
                created_on=k.created_on,
                last_rotated_on=k.last_rotated_on,
                expires_on=k.expires_on,
                status=k.status,
                ip_restricted=k.ip_restricted,
            )
        )
    for a in Automation.objects.filter(owner_id__in=ids).select_related("api_key").order_by("name"):
        parts["automations"][a.owner_id].append(
            rules.Automation(
                name=a.name,
                api_key=a.api_key.label if a.api_key else None,
                token_refresh=a.token_refresh,
                fallback_contact=a.fallback_contact,
                on_auth_failure=a.on_auth_failure,
                status=a.status,
            )
        )
    for s in Subscription.objects.filter(owner_id__in=ids).order_by("region", "feed"):
        parts["subscriptions"][s.owner_id].append(rules.Subscription(region=s.region, feed=s.feed, active=s.active))
    for dr in Drill.objects.filter(owner_id__in=ids).order_by("started_at"):
        parts["drills"][dr.owner_id].append(
            rules.Drill(started_at=dr.started_at, finished_at=dr.finished_at, lost_device=dr.lost_device, completed=dr.completed)
        )
    for ar in AcceptedRisk.objects.filter(owner_id__in=ids).order_by("rule"):
        parts["accepted_risks"][ar.owner_id].append(rules.AcceptedRisk(rule=ar.rule, reason=ar.reason, until=ar.until))
    profiles = {p.owner_id: p for p in TradingProfile.objects.filter(owner_id__in=ids)}

    return {
        uid: rules.Inventory(
            profile=profile_snapshot(profiles.get(uid)),
            **{section: tuple(parts[section][uid]) for section in (
                "devices", "recovery_methods", "api_keys", "automations", "subscriptions", "drills", "accepted_risks"
            )},
        )
        for uid in ids
    }


def inventory_for(user) -> rules.Inventory:
    return inventories_for([user.pk])[user.pk]


def report_for(user, as_of: date) -> rules.Report:
    """Score one trader on ``as_of``."""
    return rules.evaluate(inventory_for(user), as_of, limits())
def profile_for(user) -> TradingProfile:
    """The trader's profile, or an unsaved default one (saved on the first edit)."""
    return TradingProfile.objects.for_owner(user).first() or TradingProfile(owner=user)


def market_data_gaps(regions_traded: Iterable[str], subscriptions: Iterable[Subscription]) -> list[str]:
    """Regions traded with no active feed, in the order the trader listed them."""
    covered = {s.region for s in subscriptions if s.active}
    return [r for r in dict.fromkeys(regions_traded) if r not in covered]


HISTORY_DAYS = 90


@dataclass(frozen=True)
class Dashboard:
    """Everything the trader's dashboard shows, read in a fixed number of queries."""

    inventory: rules.Inventory
    report: rules.Report
    history: tuple[tuple[date, int, str], ...]
    week_ago: tuple[date, int] | None
    due: tuple[rules.DueItem, ...]

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
    rows = ReadinessSnapshot.objects.filter(
        user=user, date__gte=as_of - timedelta(days=HISTORY_DAYS - 1), date__lt=as_of
    ).values_list("date", "score", "level")
    history = (*sorted(rows), (as_of, report.score, report.level))
    # "Since last week": the newest score stored at least 7 days before today.
    older = [(day, score) for day, score, _ in history if day <= as_of - timedelta(days=7)]
    return Dashboard(
        inventory=inventory,
        report=report,
        history=history,
        week_ago=older[-1] if older else None,
        due=rules.coming_due(inventory, as_of, lim),
    )
