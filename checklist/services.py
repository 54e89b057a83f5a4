"""Writes with side effects for readiness: stored daily snapshots, and the
trader's own inputs (profile, market data, drills, accepted risks, calendar feed)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from readiness import rules

from .models import AcceptedRisk, CalendarFeed, Drill, ReadinessSnapshot, Subscription, TradingProfile
from .selectors import inventories_for, limits

SNAPSHOT_BATCH = 500


def _row(user_id: int, report: rules.Report) -> ReadinessSnapshot:
    return ReadinessSnapshot(
        user_id=user_id,
        date=report.as_of,
        score=report.score,
        level=report.level,
        statuses={r.id: r.status for r in report.results},
    )


def _store(rows: list[ReadinessSnapshot]) -> None:
    # One upsert per batch: idempotent per user and day.
    ReadinessSnapshot.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["user", "date"],
        update_fields=["score", "level", "statuses", "updated_at"],
    )


def snapshot_refresh(user, as_of: date | None = None) -> rules.Report:
    """Re-score ``user`` and store today's (or ``as_of``'s) snapshot.

    Called after every change to a trader's inventory so that the desk page
    reads stored scores instead of re-scoring.
    """
    as_of = as_of or timezone.localdate()
    report = rules.evaluate(inventories_for([user.pk])[user.pk], as_of, limits())
    _store([_row(user.pk, report)])
    return report


def snapshot_all(as_of: date | None = None) -> int:
    """Score and store every active user on ``as_of``; returns how many."""
    as_of = as_of or timezone.localdate()
    ids = list(get_user_model().objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    lim = limits()
    for start in range(0, len(ids), SNAPSHOT_BATCH):
        batch = ids[start : start + SNAPSHOT_BATCH]
        inventories = inventories_for(batch)
        _store([_row(uid, rules.evaluate(inventories[uid], as_of, lim)) for uid in batch])
    return len(ids)


def snapshot_store(*, user, report: rules.Report) -> None:
    """Store a report already computed (the dashboard scores once and keeps it)."""
    _store([_row(user.pk, report)])


# --------------------------------------------------------------------------
# Inventory writes. Each one audits the change, then re-scores the trader so
# that today's stored snapshot (read by the desk page) stays current.
# --------------------------------------------------------------------------

PROFILE_FIELDS = (
    "broker",
    "broker_mfa",
    "regions_traded",
    "plan_complex_orders",
    "plan_transfers_statements",
    "plan_alerts_light_execution",
    "support_contact",
)


def _changes(instance, data: dict[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose value differs."""
    return {f: [_plain(getattr(instance, f)), _plain(data[f])] for f in fields if f in data and getattr(instance, f) != data[f]}


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


@transaction.atomic
def profile_update(*, request: HttpRequest, profile: TradingProfile, data: dict[str, Any]) -> dict[str, list[Any]]:
    """Save the trading profile (creating it on first save); returns the changes made."""
    changes = _changes(profile, data, PROFILE_FIELDS)
    if profile.pk and not changes:
        return {}
    for field_name in PROFILE_FIELDS:
        if field_name in data:
            setattr(profile, field_name, data[field_name])
    profile.save()
    record_event(action="profile.updated", request=request, object_label=profile.broker, details={"changed": changes})
    snapshot_refresh(profile.owner)
    return changes


SUBSCRIPTION_FIELDS = ("region", "feed", "active")


@transaction.atomic
def subscription_create(*, request: HttpRequest, owner, region: str, feed: str, active: bool = True) -> Subscription:
    """Add a market-data feed."""
    subscription = Subscription.objects.create(owner=owner, region=region, feed=feed, active=active)
    record_event(
        action="subscription.created",
        request=request,
        object_label=f"{region}: {feed}",
        details={"region": region, "feed": feed, "active": active},
    )
    snapshot_refresh(owner)
    return subscription


@transaction.atomic
def subscription_update(*, request: HttpRequest, subscription: Subscription, data: dict[str, Any]) -> dict[str, list[Any]]:
    """Change a feed's region, name or active flag; returns the changes made."""
    changes = _changes(subscription, data, SUBSCRIPTION_FIELDS)
    if not changes:
        return {}
    for field_name in SUBSCRIPTION_FIELDS:
        setattr(subscription, field_name, data[field_name])
    subscription.save()
    record_event(action="subscription.updated", request=request, object_label=str(subscription), details={"changed": changes})
    snapshot_refresh(subscription.owner)
    return changes


@transaction.atomic
def subscription_delete(*, request: HttpRequest, subscription: Subscription) -> None:
    """Remove a feed."""
    label = str(subscription)
    owner = subscription.owner
    subscription.delete()
    record_event(action="subscription.deleted", request=request, object_label=label)
    snapshot_refresh(owner)


def running_drill(owner) -> Drill | None:
    return Drill.objects.for_owner(owner).filter(completed=False, abandoned_at__isnull=True).order_by("-started_at").first()


@transaction.atomic
def drill_start(*, request: HttpRequest, owner, lost_device: str) -> Drill:
    """Start a device-loss drill now (server time); a drill already running is returned instead."""
    current = running_drill(owner)
    if current is not None:
        return current
    drill = Drill.objects.create(owner=owner, lost_device=lost_device, started_at=timezone.now())
    record_event(action="drill.started", request=request, object_label=lost_device, details={"started_at": drill.started_at.isoformat()})
    snapshot_refresh(owner)
    return drill


@transaction.atomic
def drill_finish(*, request: HttpRequest, drill: Drill) -> Drill:
    """"I'm back in": completes a running drill at server time. A second press changes nothing."""
    drill = Drill.objects.select_for_update().get(pk=drill.pk)
    if not drill.is_running:
        return drill
    drill.finished_at = timezone.now()
    drill.completed = True
    drill.save(update_fields=["finished_at", "completed"])
    record_event(
        action="drill.finished",
        request=request,
        object_label=drill.lost_device,
        details={"started_at": drill.started_at.isoformat(), "finished_at": drill.finished_at.isoformat(), "seconds": int(drill.reentry.total_seconds())},
    )
    snapshot_refresh(drill.owner)
    return drill


@transaction.atomic
def drill_abandon(*, request: HttpRequest, drill: Drill) -> Drill:
    """Stop a running drill without a result; it does not count for the score."""
    drill = Drill.objects.select_for_update().get(pk=drill.pk)
    if not drill.is_running:
        return drill
    drill.abandoned_at = timezone.now()
    drill.save(update_fields=["abandoned_at"])
    record_event(action="drill.abandoned", request=request, object_label=drill.lost_device)
    snapshot_refresh(drill.owner)
    return drill


@transaction.atomic
def risk_accept(*, request: HttpRequest, owner, rule: str, reason: str, until: date) -> AcceptedRisk:
    """Accept the risk of one rule until ``until``; accepting it again replaces reason and date."""
    risk = AcceptedRisk.objects.for_owner(owner).filter(rule=rule).first()
    if risk is None:
        risk = AcceptedRisk.objects.create(owner=owner, rule=rule, reason=reason, until=until)
        details: dict[str, Any] = {"rule": rule, "reason": reason, "until": until.isoformat()}
    else:
        details = {"rule": rule, "changed": _changes(risk, {"reason": reason, "until": until}, ("reason", "until"))}
        risk.reason, risk.until, risk.created_on = reason, until, timezone.localdate()
        risk.save(update_fields=["reason", "until", "created_on"])
    record_event(action="risk.accepted", request=request, object_label=rule, details=details)
    snapshot_refresh(owner)
    return risk


@transaction.atomic
def risk_withdraw(*, request: HttpRequest, risk: AcceptedRisk) -> None:
    """End an accepted risk early: the rule returns to the next best actions."""
    owner, rule = risk.owner, risk.rule
    risk.delete()
    record_event(action="risk.withdrawn", request=request, object_label=rule)
    snapshot_refresh(owner)


def calendar_feed_rotate(*, request: HttpRequest, owner) -> str:
    """Make a new feed token (the old URL stops working) and return it; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        existed = CalendarFeed.objects.filter(owner=owner).delete()[0] > 0
        CalendarFeed.objects.create(owner=owner, token=CalendarFeed.digest(token))
        # The token itself never goes into the audit log.
        record_event(action="calendar.token_rotated", request=request, details={"replaced": existed})
    return token


@transaction.atomic
def calendar_feed_revoke(*, request: HttpRequest, owner) -> bool:
    """Turn the feed off; returns whether there was one."""
    deleted = CalendarFeed.objects.filter(owner=owner).delete()[0] > 0
    if deleted:
        record_event(action="calendar.token_revoked", request=request)
    return deleted
