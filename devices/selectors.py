"""Reads with logic: the one builder of immutable snapshots for the rules.

:func:`inventories_for` builds the :class:`readiness.rules.Inventory` of one
trader or many with one query per section asked for, whatever the number of
traders or items. The sections of this app are defined here; the checklist
app passes its own sections along with these (it cannot be imported from
here), so there is one builder, parameterised by what a page needs.
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

from .models import ApiKey, Automation, Heartbeat, RecoveryMethod, TrustedDevice
from .signals import broker_wanted


def broker_of(owner) -> BrokerCatalog:
    """The catalog of the trader's broker (asked of the app that keeps the profile)."""
    answers = [code for _, code in broker_wanted.send(sender=None, owner=owner) if code]
    return catalog_for(answers[0] if answers else None)


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
            "heartbeat__id", "heartbeat__last_kind", "heartbeat__last_at", "heartbeat__period_minutes", "heartbeat__grace_minutes",
        ),
        ("name",),
        lambda pk, name, key, refresh, contact, failure, status, beat, kind, at, period, grace: rules.Automation(
            name, key, refresh, contact, failure, status, id=pk,
            # Observed, not declared: the status is computed now, whatever day is scored.
            heartbeat=None if beat is None else rules.heartbeat_status(kind or None, at, period, grace, timezone.now()),
        ),
    ),
}


def inventories_for(
    user_ids: Iterable[int],
    sections: Mapping[str, Section] = SECTIONS,
    profiles: Mapping[int, rules.Profile] | None = None,
) -> dict[int, rules.Inventory]:
    """Snapshots for many traders: one query per section given; the others stay empty."""
    ids = list(user_ids)
    parts: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for name, section in sections.items():
        for owner_id, pk, *values in section.rows(ids):
            parts[name][owner_id].append(section.build(pk, *values))
    profiles = profiles or {}
    return {
        uid: rules.Inventory(profile=profiles.get(uid, rules.Profile()), **{name: tuple(parts[name][uid]) for name in sections})
        for uid in ids
    }


def findings_for(user, section: str, as_of: date) -> dict[int | str | None, tuple[rules.Finding, ...]]:
    """The findings of one of this app's sections for a list page, keyed by row id
    (``None``: about something missing). They depend only on this app's tables,
    so the page reads four snapshot queries and agrees with the dashboard."""
    report = rules.evaluate(inventories_for([user.pk])[user.pk], as_of, limits())
    return report.findings_by_ref(section)


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
