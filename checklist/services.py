"""Writes with side effects for readiness: stored daily snapshots, and the
trader's own inputs (profile, market data, drills, accepted risks, calendar feed)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import ExtractIsoYear, ExtractWeek
from django.http import HttpRequest
from django.utils import timezone

from accounts import channels
from accounts.audit import record_event
from accounts.background import mark_get, mark_set, stop_point
from accounts.services import rows_delete_batched
from devices.selectors import DUE_SECTIONS, inventories_for, limits
from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_text

from . import tallies
from .models import RULE_COLUMNS, CalendarFeed, CurrentScore, ReadinessSnapshot

SNAPSHOT_BATCH = 500
logger = logging.getLogger("gatecheck.readiness")


def _row(user_id: int, report: rules.Report) -> ReadinessSnapshot:
    row = ReadinessSnapshot(
        user_id=user_id,
        date=report.as_of,
        score=report.score,
        level=report.level,
        statuses={r.id: r.status for r in report.results},
    )
    # Not a snapshot column: the current row keeps the lead's reasons (masked) for the desk.
    row.reasons = {r.id: mask_text(r.lead_reason) for r in report.results}
    return row


def snapshots_store(rows: list[ReadinessSnapshot], inventories: dict[int, rules.Inventory] | None = None, *, then=None) -> None:
    """The one write path of stored scores: upsert the snapshots (idempotent
    per user and day) and keep each trader's ``CurrentScore`` in step.

    ``inventories`` (from the caller that scored them) give the due dates;
    without them the due sections are read here, in five queries. ``then``
    runs in the same transaction (the nightly run's checkpoint).
    """
    if not rows:
        if then is not None:
            then()
        return
    with transaction.atomic():
        if then is not None:
            then()
        ReadinessSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "date"],
            update_fields=["score", "level", "statuses", "updated_at"],
        )
        _current_sync(rows, inventories)


def _current_sync(rows: list[ReadinessSnapshot], inventories: dict[int, rules.Inventory] | None) -> None:
    """Point each trader's current row at their newest snapshot, in four
    queries per batch (plus five when due dates must be read).

    A snapshot older than the current one (history written afterwards) can
    still change the 7-day change, so the current one is recomputed then.
    """
    ids = list({row.user_id for row in rows})
    # Locked (PostgreSQL), in one order: two writes of one trader at once must
    # not both start from the same row, or the desks' tallies would count both changes.
    held = CurrentScore.objects.select_for_update().filter(user_id__in=ids).order_by("user_id")
    current, ranks = {}, {}
    for uid, day, rank in held.values_list("user_id", "date", "level_rank"):
        current[uid], ranks[uid] = day, rank
    today = timezone.localdate()
    counted_before = tallies.count_each(ids, today)
    newest: dict[int, ReadinessSnapshot] = {}
    for row in rows:
        held = newest.get(row.user_id)
        if held is None or held.date < row.date:
            newest[row.user_id] = row
    behind = {uid: current[uid] for uid, row in newest.items() if uid in current and current[uid] > row.date}
    if behind:
        kept = dict(CurrentScore.objects.filter(user_id__in=list(behind)).values_list("user_id", "reasons"))
        for uid, day, score, level, statuses in ReadinessSnapshot.objects.filter(
            user_id__in=list(behind), date__in=set(behind.values())
        ).values_list("user_id", "date", "score", "level", "statuses"):
            if behind[uid] == day:
                newest[uid] = ReadinessSnapshot(user_id=uid, date=day, score=score, level=level, statuses=statuses)
                newest[uid].reasons = kept.get(uid, {})
    baselines = _baselines({uid: row.date for uid, row in newest.items()})
    if inventories is None or not all(uid in inventories for uid in newest):
        inventories = inventories_for(list(newest), DUE_SECTIONS)
    lim = limits()
    # Each trader's desks (a row per desk), for the desks' tallies.
    desks: dict[int, set[int]] = {}
    for uid, desk_id in get_user_model().objects.filter(pk__in=list(newest)).values_list("pk", "desks"):
        desks.setdefault(uid, set()).update([desk_id] if desk_id is not None else [])
    current_rows = []
    for uid, row in newest.items():
        stored_due = rules.due_stored(rules.upcoming_dates(inventories[uid], row.date, lim))
        dated = [day for day, _ in stored_due if day is not None]
        before = baselines.get(uid)
        current_rows.append(
            CurrentScore(
                user_id=uid,
                date=row.date,
                score=row.score,
                level=row.level,
                level_rank=words.LEVEL_ORDER.get(row.level, 0),
                change=row.score - before if before is not None else None,
                reasons=getattr(row, "reasons", {}),
                next_due_on=min(dated) if dated else None,
                due_now=any(day is None for day, _ in stored_due),
                due=[[day.isoformat() if day else None, kind] for day, kind in stored_due],
                **{column: row.statuses.get(rule, "") for rule, column in RULE_COLUMNS.items()},
            )
        )
    CurrentScore.objects.bulk_create(
        current_rows, update_conflicts=True, unique_fields=["user"], update_fields=CURRENT_FIELDS
    )
    # The desks' tiles and per-rule totals follow, in the same transaction.
    tallies.apply(counted_before, tallies.count_each(ids, today), desks)
    _tell_level_drops([row for row in current_rows if row.user_id in ranks and row.level_rank < ranks[row.user_id]])


def _tell_level_drops(rows: list[CurrentScore]) -> None:
    """A trader whose readiness fell a level hears it on the channels that take it."""
    messages = []
    for row in rows:
        label = words.LEVEL_LABELS.get(row.level, row.level)
        messages.append((row.user_id, f"Your readiness fell to {label} ({row.score})",
                         f"Your login readiness is now {label}, {row.score} of 100. Open Gatecheck to see what changed.", None))
    channels.send_each(messages, "level_dropped")


CURRENT_FIELDS = [
    "date", "score", "level", "level_rank", "change", "reasons", "next_due_on", "due_now", "due", "updated_at",
    *RULE_COLUMNS.values(),
]


def _baselines(days: dict[int, date]) -> dict[int, int]:
    """Each trader's score to compare their score of ``days[uid]`` with
    (``rules.week_baseline``): one query bounded by date."""
    if not days:
        return {}
    reach = timedelta(days=rules.CHANGE_DAYS + rules.CHANGE_LOOKBACK_DAYS)
    rows = ReadinessSnapshot.objects.filter(
        user_id__in=list(days), date__gte=min(days.values()) - reach, date__lt=max(days.values())
    ).values_list("user_id", "date", "score")
    history: dict[int, list[tuple[date, int]]] = {}
    for uid, day, score in rows:
        history.setdefault(uid, []).append((day, score))
    found = {uid: rules.week_baseline(history.get(uid, ()), day) for uid, day in days.items()}
    return {uid: baseline[1] for uid, baseline in found.items() if baseline}


def snapshot_refresh(user, as_of: date | None = None) -> rules.Report:
    """Re-score ``user`` and store today's (or ``as_of``'s) snapshot.

    Called after every change to a trader's inventory so that the desk page
    reads stored scores instead of re-scoring.
    """
    return snapshots_refresh([user.pk], as_of)[user.pk]


def snapshots_refresh(ids: list[int], as_of: date | None = None) -> dict[int, rules.Report]:
    """Re-score these traders and store their snapshots, in a fixed number of queries."""
    as_of = as_of or timezone.localdate()
    inventories = inventories_for(ids)
    lim = limits()
    reports = {uid: rules.evaluate(inventories[uid], as_of, lim) for uid in ids}
    snapshots_store([_row(uid, report) for uid, report in reports.items()], inventories)
    return reports


def on_desk_members_added(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A trader who joins a desk is scored at once: the lead sees their
    readiness straight away, and a desk's page by score never has to look for
    unscored members."""
    if action != "post_add" or not pk_set:
        return
    joined = [instance.pk] if reverse else list(pk_set)
    unscored = set(joined) - set(CurrentScore.objects.filter(user_id__in=joined).values_list("user_id", flat=True))
    if unscored:
        snapshots_refresh(sorted(unscored))


@dataclass
class SnapshotRun:
    """What one run of ``snapshot_all`` did: users stored, and the ids of those that failed."""

    stored: int = 0
    failed: list[int] = field(default_factory=list)


def snapshot_all(as_of: date | None = None) -> SnapshotRun:
    """Score and store every active user on ``as_of``.

    Batches of 500 read by primary key (no list of every id in memory), each
    scored and stored in a fixed number of queries; running it twice on a day
    rewrites the same rows. A trader whose inventory cannot be scored is
    logged and skipped: one trader's data never stops the nightly run for
    everyone else."""
    as_of = as_of or timezone.localdate()
    lim = limits()
    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    # The checkpoint moves with each batch's rows, in one transaction: a run
    # killed mid-way is resumed after its last committed batch.
    key = f"snapshots:{as_of.isoformat()}"
    mark = mark_get(key)
    run, last = SnapshotRun(), (mark.value.get("last", 0) if mark and not mark.value.get("finished") else 0)
    while batch := list(users.filter(pk__gt=last).values_list("pk", flat=True)[:SNAPSHOT_BATCH]):
        stop_point()  # a stopping worker stops here, after the last committed batch
        last = batch[-1]
        inventories = inventories_for(batch)
        rows = []
        for uid in batch:
            try:
                rows.append(_row(uid, rules.evaluate(inventories[uid], as_of, lim)))
            except Exception:
                logger.exception("snapshot_readiness: scoring user %s on %s failed; skipped", uid, as_of.isoformat())
                run.failed.append(uid)
        snapshots_store(rows, inventories, then=lambda last=last: mark_set(key, {"last": last}))
        run.stored += len(rows)
    mark_set(key, {"last": last, "finished": True})
    return run


def snapshot_keep(
    *, user, report: rules.Report, stored: tuple[int, str, dict[str, str]] | None, inventory: rules.Inventory | None = None
) -> bool:
    """The dashboard's write: store today's report only when it differs from
    the ``stored`` (score, level, statuses), so that plain page views do not
    write. A refused write (a read-only or full database) is logged and the
    page is still shown from the computed report. Returns whether it wrote."""
    row = _row(user.pk, report)
    if stored == (row.score, row.level, row.statuses):
        return False
    try:
        with transaction.atomic():
            snapshots_store([row], {user.pk: inventory} if inventory is not None else None)
    except DatabaseError:
        logger.warning("dashboard: storing today's snapshot of user %s failed; page shown from the computed score", user.pk, exc_info=True)
        return False
    return True


def calendar_feed_rotate(*, request: HttpRequest, owner) -> str:
    """Make a new feed token (the old URL stops working) and return it; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # One row per owner, replaced in place under a row lock (update_or_create
        # retries the read when a parallel first rotation inserted the row first),
        # never delete-then-insert, which two parallel rotations both did.
        _, created = CalendarFeed.objects.update_or_create(
            owner=owner, defaults={"token": CalendarFeed.digest(token), "created_at": timezone.now()}
        )
        # The token itself never goes into the audit log.
        record_event(action="calendar.token_rotated", request=request, details={"replaced": not created})
    return token


@transaction.atomic
def calendar_feed_revoke(*, request: HttpRequest, owner) -> bool:
    """Turn the feed off; returns whether there was one."""
    deleted = CalendarFeed.objects.filter(owner=owner).delete()[0] > 0
    if deleted:
        record_event(action="calendar.token_revoked", request=request)
    return deleted


def on_inventory_changed(*, owner, owners=(), **_) -> None:
    """Receiver of devices' ``inventory_changed``: keep today's stored score
    current for the desk (of one owner, or of a batch in a fixed number of queries)."""
    if owner is not None:
        snapshot_refresh(owner)
    if owners:
        snapshots_refresh([o.pk for o in owners])


def on_access_revoked(*, user, **_) -> None:
    """Receiver of accounts' ``access_revoked``: the feed token is a credential too."""
    CalendarFeed.objects.filter(owner=user).delete()


def snapshots_thin(*, as_of: date | None = None) -> int:
    """Thin the stored scores older than GATECHECK_SNAPSHOT_THIN_DAYS to one
    per trader and ISO week, the week's last; for the hourly task, returns
    how many went. A snapshot goes only when a later one of the same trader
    and week is past the horizon too, so a trader's newest is never deleted,
    and a second run finds nothing more."""
    horizon = (as_of or timezone.localdate()) - timedelta(days=settings.GATECHECK_SNAPSHOT_THIN_DAYS)
    old = ReadinessSnapshot.objects.filter(date__lt=horizon)
    later_same_week = old.filter(
        user=OuterRef("user"), date__gt=OuterRef("date"), date__iso_year=OuterRef("iso_year"), date__week=OuterRef("week")
    )
    thinned = old.annotate(iso_year=ExtractIsoYear("date"), week=ExtractWeek("date")).filter(Exists(later_same_week))
    return rows_delete_batched(thinned)
