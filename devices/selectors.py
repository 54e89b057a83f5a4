"""Reads with logic: the one builder of immutable snapshots for the rules.

:func:`inventories_for` builds the :class:`readiness.rules.Inventory` of one
trader or many with one query per section asked for, whatever the number of
traders or items: the whole inventory lives in this app, so every section
and the profile are defined here, once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from readiness import rules
from readiness.brokers import BrokerCatalog, catalog_for
from readiness.masking import mask_label
from readiness.vocabulary import ACCESS_POINTS, TASKS

from .models import AcceptedRisk, ApiKey, Automation, Drill, Heartbeat, Permission, RecoveryMethod, Subscription, TradingProfile, TrustedDevice

PLAN_FIELDS = {task: f"plan_{task}" for task in TASKS}
# What a heartbeat's status is computed from (Heartbeat.status_at), read with its automation.
BEAT_FIELDS = ("last_kind", "last_at", "period_minutes", "grace_minutes", "created_at", *Heartbeat.SCHEDULE_FIELDS)


def broker_of(owner) -> BrokerCatalog:
    """The catalog of the trader's broker, from their profile (none: the default broker)."""
    return catalog_for(TradingProfile.objects.filter(owner=owner).values_list("broker", flat=True).first())


def profile_for(user) -> TradingProfile:
    """The trader's profile, or an unsaved default one (saved on the first edit)."""
    return TradingProfile.objects.for_owner(user).first() or TradingProfile(owner=user)


def limits() -> rules.Limits:
    """The readiness limits configured in settings (GATECHECK_LIMITS)."""
    return rules.Limits(**settings.GATECHECK_LIMITS)


@dataclass(frozen=True)
class Section:
    """How one inventory section is read: which columns, in which order, into which dataclass.

    Rows are read as tuples, not model instances: at hundreds of traders
    building instances was most of the desk page's time.
    """

    model: type[models.Model]
    columns: tuple[str, ...]
    order: tuple[str, ...]
    build: Callable[..., object]

    def query(self, ids: list[int]) -> models.QuerySet:
        return self.model.objects.filter(owner_id__in=ids).order_by("owner_id", *self.order).values_list("owner_id", "id", *self.columns)

    def rows(self, ids: list[int]) -> list:
        return list(self.query(ids)) if ids else []


SECTIONS: Mapping[str, Section] = {
    "devices": Section(
        TrustedDevice,
        ("name", "kind", "platforms", "validated_on", "status", "browser_saved_password"),
        ("name",),
        lambda pk, name, kind, platforms, validated_on, status, saved: rules.Device(
            name, kind, frozenset(platforms or ()), validated_on, status, saved, pk
        ),
    ),
    # Masked here, once: reasons, due dates, the calendar feed, the desk and
    # e-mails all quote this label, and only the owner's edit form shows it whole.
    "recovery_methods": Section(
        RecoveryMethod,
        ("kind", "label", "last_verified_on"),
        ("kind", "label"),
        lambda pk, kind, label, verified: rules.RecoveryMethod(kind, mask_label(kind, label), verified, pk),
    ),
    "api_keys": Section(
        ApiKey,
        ("label", "scopes", "service_account", "created_on", "last_rotated_on", "expires_on", "status", "ip_restricted"),
        ("label",),
        lambda pk, label, scopes, *values: rules.ApiKey(label, frozenset(scopes or ()), *values, id=pk),
    ),
    "automations": Section(
        Automation,
        (
            "name", "api_key__label", "token_refresh", "fallback_contact", "on_auth_failure", "status",
            "heartbeat__id", *(f"heartbeat__{name}" for name in BEAT_FIELDS),
        ),
        ("name",),
        lambda pk, name, key, refresh, contact, failure, status, beat, *observed: rules.Automation(
            name, key, refresh, contact, failure, status, id=pk,
            # Observed, not declared: the status is computed now, whatever day is scored.
            heartbeat=None if beat is None else Heartbeat(**dict(zip(BEAT_FIELDS, observed, strict=True))).status_at(timezone.now()),
        ),
    ),


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
    """Snapshots for many traders: one query per section asked for (and the
    profile's, when asked for); the others stay empty."""
    ids = list(user_ids)
    wanted = set(sections)
    parts: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for name, section in SECTIONS.items():
        if name in wanted:
            for owner_id, pk, *values in section.rows(ids):
                parts[name][owner_id].append(section.build(pk, *values))
    profiles = profiles_for(ids) if "profile" in wanted else {}
    return {
        uid: rules.Inventory(profile=profiles.get(uid, rules.Profile()), **{name: tuple(parts[name][uid]) for name in SECTIONS if name in wanted})
        for uid in ids
    }


def inventory_for(user) -> rules.Inventory:
    return inventories_for([user.pk])[user.pk]


def report_for(user, as_of: date) -> rules.Report:
    """Score one trader on ``as_of``."""
    return rules.evaluate(inventory_for(user), as_of, limits())


def findings_for(user, section: str, as_of: date) -> dict[int | str | None, tuple[rules.Finding, ...]]:
    """A section's findings for its page, keyed by row id (``None``: about
    something missing): the dashboard's own report, so the two agree."""
    return report_for(user, as_of).findings_by_ref(section)


def devices_unfit(user, catalog) -> list[tuple[str, list[str]]]:
    """Devices with access points the broker does not offer, and those points."""
    unfit = []
    for name, platforms in TrustedDevice.objects.for_owner(user).order_by("name").values_list("name", "platforms"):
        missing = [ACCESS_POINTS.get(code, code) for code in platforms or () if not catalog.offers(code)]
        if missing:
            unfit.append((name, missing))
    return unfit


def bots_by_state(now=None) -> dict[tuple[tuple[str, str], ...], float]:
    """Heartbeats by state for /metrics (``gatecheck_bots``): up, down
    (past deadline), failing (last signal a fail) and new (never pinged)."""
    now = now or timezone.now()
    counts = Heartbeat.objects.aggregate(
        up=Count("pk", filter=Q(last_kind="success", deadline__gte=now)),
        down=Count("pk", filter=Q(last_kind="success", deadline__lt=now)),
        failing=Count("pk", filter=Q(last_kind="fail")),
        new=Count("pk", filter=Q(last_kind="")),
    )
    return {(("state", state),): float(value) for state, value in counts.items()}
