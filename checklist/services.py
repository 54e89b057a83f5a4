"""Writes with side effects for readiness: stored daily snapshots."""

from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.utils import timezone

from . import rules
from .models import ReadinessSnapshot
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
