"""Reads for desk leads: who a lead oversees, the desk table, one trader's detail.

Everything a lead may see is reached through ``desks_for`` and ``traders_for``;
views, exports, reminders and the admin never filter by desk on their own.

The desk table reads each trader's ``CurrentScore`` (their newest stored
score, with their due dates) and never re-scores inventories. Search, filters,
sort, paging and the summary's counts all run in SQL, so a page costs the same
few queries for a desk of 50 and for a superuser's 50,000 traders, and a long
history changes nothing: the table reads no snapshot at all. For one desk or
every desk the tiles and per-rule totals are that scope's tallies
(``checklist.tallies``, kept in step with the current rows). Each page order
is written once (``_ordered``), and each row read once (``desk_rows``, which
the CSV export shares).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, CharField, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Concat
from django.utils.functional import SimpleLazyObject

from accounts.models import Desk, User
from accounts.selectors import overseen_users, traders_for
from accounts.signin import enrolment_pending
from checklist import tallies
from checklist.models import RULE_COLUMNS, CurrentScore, ReadinessSnapshot
from devices.models import AcceptedRisk, ApiKey, Drill, Incident
from devices.selectors import inventory_for, limits
from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_text

from .models import ReminderLog

# The desk average's trend: one point a week over four weeks, then today.
TREND_WEEKS = 4
# Past days' averages do not change once stored: computed once an hour per scope.
TREND_CACHE_SECONDS = 3600
HISTORY_DAYS = 90
PAGE_SIZE = 50
DRILLS_SHOWN = 20
ACCEPTED = words.ACCEPTED

# Short column heads for the heatmap; the full rule title is in the tooltip.
# Soft hyphens (\u00ad) let the longer ones break, so that all eleven rule
# columns fit a 1280 px screen.
RULE_SHORT: dict[str, str] = {
    "devices.trusted": "Dev\u00adices",
    "recovery.current": "Recov\u00adery",
    "credentials.segmented": "Seg\u00admented",
    "credentials.rotation": "Rota\u00adtion",
    "interfaces.mapped": "Inter\u00adfaces",
    "marketdata.covered": "Mkt data",
    "drill.rehearsed": "Drill",
    "automation.failsafe": "Fail-safe",
    "mfa.broker": "Broker MFA",
    "permissions.cleared": "Permis\u00adsions",
    "automation.alive": "Heart\u00adbeat",
}
RULE_IDS = rules.RULE_IDS
RULE_TITLES = rules.RULE_TITLES
LEVEL_LABELS = words.LEVEL_LABELS
SORT_KEYS = ("name", "score", "level", "change", "due", *RULE_IDS)


# --------------------------------------------------------------------------
# Who a lead oversees
# --------------------------------------------------------------------------


def can_reset_mfa(actor: User, trader: User) -> bool:
    """Who may reset a trader's factors (``can_act_on``), and not again while
    the last reset's enrolment code can still be used."""
    return can_act_on(actor, trader) and not enrolment_pending(trader)


def can_act_on(actor: User, trader: User) -> bool:
    """Whom a lead may reset, deactivate or remove: a trader of their own
    desk; a superuser anyone. Never oneself, and a lead never another lead,
    a superuser or other staff: those accounts reach other traders' data or
    the admin."""
    if actor.pk == trader.pk:
        return False
    if actor.is_superuser:
        return True
    if trader.oversees_desks or trader.is_staff:
        return False
    return traders_for(actor).filter(pk=trader.pk).exists()


# --------------------------------------------------------------------------
# The desk table
# --------------------------------------------------------------------------


@dataclass
class DeskRow:
    """One trader in the desk table."""

    id: int
    username: str
    name: str
    score: int | None
    level: str | None
    scored_on: date | None
    change: int | None
    cells: dict[str, str | None]
    overdue: int
    due_soon: int
    overdue_kinds: tuple[str, ...] = ()
    # Rule id -> the lead's reason, stored with the score (masked).
    reasons: dict[str, str] | None = None
    # When a lead's reminder went to this trader today, if one did.
    reminded_at: datetime | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.username


@dataclass
class DeskTable:
    """The desk page: one page of rows, and the summary of the whole desk."""

    as_of: date
    shown: list[DeskRow]
    total: int
    matching: int
    page: int
    pages: int
    average: int | None
    level_counts: dict[str, int]
    unscored: int
    overdue_traders: int
    # Traders with a bot whose heartbeat is down or failing (automation.alive fails).
    bots_down: int = 0
    # Rule id -> (failing, partial) among the traders matching the filters.
    rule_totals: dict[str, tuple[int, int]] | None = None
    # The desk average over the last weeks, oldest first, today last.
    trend: list[tuple[date, int]] | None = None

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.shown else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * PAGE_SIZE + len(self.shown)


@dataclass(frozen=True)
class DeskQuery:
    """What the lead asked for: filters, sort and page, already validated."""

    q: str = ""
    level: str = ""
    failing: str = ""
    # A rule whose stored status is a fail or a partial.
    rule: str = ""
    due: str = ""
    sort: str = "score"
    descending: bool = False
    desks: tuple[Desk, ...] | None = None
    trader_ids: tuple[int, ...] | None = None
    page: int = 1
    # The id of the one desk on view, when it is one (see ``_tally_scope``).
    one_desk: int | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.level or self.failing or self.rule or self.due)


def cell_status(status: str | None, rule_id: str, accepted: set[str] | frozenset[str]) -> str | None:
    """A heatmap cell: the stored status, or "accepted" for a fail or partial
    the trader's lead has accepted as a risk that still holds."""
    if status in (rules.FAIL, rules.PARTIAL) and rule_id in accepted:
        return ACCEPTED
    return status


def _full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def _traders(viewer: User, query: DeskQuery) -> QuerySet[User]:
    if query.trader_ids is not None:
        # Rows picked in the admin: anyone the viewer oversees.
        return overseen_users(viewer).filter(pk__in=query.trader_ids)
    return traders_for(viewer, query.desks)


def _col(rule_id: str) -> str:
    return f"current_score__{RULE_COLUMNS[rule_id]}"


def _risks_holding(as_of: date) -> QuerySet[AcceptedRisk]:
    """Accepted risks that still hold on ``as_of``: ``readiness.rules.risk_holds`` in SQL."""
    return AcceptedRisk.objects.filter(until__gte=as_of)


def _filtered(traders: QuerySet[User], query: DeskQuery, as_of: date) -> QuerySet[User]:
    if query.q:
        traders = traders.annotate(full_name=Concat("first_name", Value(" "), "last_name", output_field=CharField())).filter(
            Q(username__icontains=query.q) | Q(full_name__icontains=query.q)
        )
    if query.level:
        traders = traders.filter(current_score__level=query.level)
    if query.failing:
        # "Failing" is the stored status: a fail stays a fail when its risk is accepted.
        traders = traders.filter(**{_col(query.failing): rules.FAIL})
    if query.rule:
        traders = traders.filter(**{f"{_col(query.rule)}__in": (rules.FAIL, rules.PARTIAL)})
    if query.due == "overdue":
        traders = traders.filter(current_score__next_due_on__lt=as_of)
    elif query.due == "due_soon":
        traders = traders.filter(
            Q(current_score__next_due_on__lte=as_of + timedelta(days=rules.DUE_SOON_DAYS)) | Q(current_score__due_now=True)
        )
    return traders


def _ordered(traders: QuerySet[User], query: DeskQuery, as_of: date) -> QuerySet[User]:
    """Sorted as asked, ties by name: unscored traders count lowest, and for
    "due" the earliest due date (a never-done item is due today) comes first."""
    sort = query.sort
    nulls_low = {"nulls_last": True} if query.descending else {"nulls_first": True}
    if sort == "name":
        key = F("sort_name")
    elif sort == "score":
        key = F("current_score__score")
    elif sort == "level":
        key = F("current_score__level_rank")
    elif sort == "change":
        key = F("current_score__change")
    elif sort == "due":
        key = Case(
            When(current_score__due_now=True, current_score__next_due_on__lt=as_of, then=F("current_score__next_due_on")),
            When(current_score__due_now=True, then=Value(as_of)),
            default=F("current_score__next_due_on"),
        )
        nulls_low = {"nulls_first": True} if query.descending else {"nulls_last": True}
    else:
        column = _col(sort)
        accepted = Exists(_risks_holding(as_of).filter(owner=OuterRef("pk"), rule=sort))
        key = Case(
            When(Q(**{f"{column}__in": (rules.FAIL, rules.PARTIAL)}) & accepted, then=Value(words.STATUS_ORDER[ACCEPTED])),
            *(When(**{column: status}, then=Value(rank)) for status, rank in words.STATUS_ORDER.items() if status != ACCEPTED),
            default=Value(5),
            output_field=IntegerField(),
        )
    order = key.desc(**nulls_low) if query.descending else key.asc(**nulls_low)
    if sort == "name":
        # Namesakes by id, the same way round: the order of the users' (sort name, id) index.
        return traders.order_by(order, "-pk" if query.descending else "pk")
    return traders.order_by(order, "sort_name", "pk")


# Ids per read: far below any database's limit of parameters.
ROWS_BATCH = 2000


def _current_rows(ids: list[int]) -> list[tuple]:
    """The traders' names and current rows (``desk_row``'s record), in one
    plain SQL query: the ORM's ``values()`` of these 22 columns cost three
    times the query. The JSON comes back as text on every database (cast),
    so one decoding serves both; the date comes as the driver gives it."""
    user, current = User._meta.db_table, CurrentScore._meta.db_table
    statuses = ", ".join(f"c.{column}" for column in RULE_COLUMNS.values())
    marks = ", ".join(["%s"] * len(ids))
    # Our own tables and columns; every value is a parameter.
    sql = (
        f"SELECT u.id, u.username, u.first_name, u.last_name, c.date, c.score, c.level, c.change, "  # noqa: S608
        f"CAST(c.due AS TEXT), CAST(c.reasons AS TEXT), {statuses} "
        f"FROM {user} u LEFT JOIN {current} c ON c.user_id = u.id WHERE u.id IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return cursor.fetchall()


def desk_row(record: tuple, as_of: date, accepted: frozenset[str] = frozenset(), reminded_at: datetime | None = None) -> DeskRow:
    """A row from one ``_current_rows`` record (stored statuses and due
    dates), the rules whose risk the trader accepted and today's lead reminder."""
    pk, username, first, last, scored_on, score, level, change, due, reasons, *statuses = record
    stored_due = [(date.fromisoformat(day) if day else None, kind) for day, kind in json.loads(due or "[]")]
    overdue, due_soon, kinds = rules.due_tally(stored_due, as_of)
    return DeskRow(
        id=pk,
        username=username,
        name=_full_name(first, last),
        score=score,
        level=level,
        # SQLite gives the text, PostgreSQL a date (casting it to text would follow the server's DateStyle).
        scored_on=date.fromisoformat(scored_on) if isinstance(scored_on, str) else scored_on,
        change=change,
        cells={rid: cell_status(status or None, rid, accepted) for rid, status in zip(RULE_COLUMNS, statuses, strict=True)},
        overdue=overdue,
        due_soon=due_soon,
        overdue_kinds=kinds,
        reasons=json.loads(reasons or "{}"),
        reminded_at=reminded_at,
    )


def desk_rows(ids: Iterable[int], as_of: date) -> list[DeskRow]:
    """The rows of these traders (in no particular order): the one reader of
    desk rows, for the page, the CSV export and the digests. Three plain
    queries per 2,000 traders: current rows, the risks that hold, today's reminders."""
    ids = list(ids)
    out = []
    for start in range(0, len(ids), ROWS_BATCH):
        batch = ids[start : start + ROWS_BATCH]
        held: dict[int, set[str]] = {}
        for owner, rule in _risks_holding(as_of).filter(owner_id__in=batch).values_list("owner_id", "rule"):
            held.setdefault(owner, set()).add(rule)
        # The (recipient, kind, date) unique constraint is this lookup's index.
        reminded = dict(
            ReminderLog.objects.filter(recipient_id__in=batch, kind=ReminderLog.Kind.MANUAL, date=as_of).values_list("recipient_id", "sent_at")
        )
        out += [desk_row(record, as_of, frozenset(held.get(record[0], ())), reminded.get(record[0])) for record in _current_rows(batch)]
    return out


@dataclass(frozen=True)
class Summary:
    total: int
    average: int | None
    level_counts: dict[str, int]
    unscored: int
    overdue_traders: int
    # Traders with a bot whose heartbeat is down or failing (automation.alive fails).
    bots_down: int = 0
    rule_totals: dict[str, tuple[int, int]] | None = None


def _rule_totals(totals: dict) -> dict[str, tuple[int, int]]:
    return {rid: (totals[f"fail_{rid}"], totals[f"partial_{rid}"]) for rid in RULE_IDS}


def desk_summary(traders: QuerySet[User], as_of: date, *, with_rules: bool = False, scope: str | None = None) -> Summary:
    """The whole desk's tiles (with the per-rule totals too when the table is
    not filtered: the same set of traders): the ``scope``'s tallies when it
    has one, kept in step with the current scores, else one aggregate query."""
    if scope is not None:
        totals = tallies.read(scope, as_of, lambda: tallies.count(traders, as_of))
    else:
        totals = tallies.count(traders, as_of, by_rule=with_rules)
    scored = totals["scored"]
    return Summary(
        total=totals["total"],
        # Rounded half up, like the scores themselves.
        average=words.round_half_up(totals["score_sum"], scored) if scored else None,
        level_counts={level: totals[f"level_{level}"] for level in LEVEL_LABELS},
        unscored=totals["total"] - scored,
        overdue_traders=totals["overdue"],
        bots_down=totals["bots_down"],
        rule_totals=_rule_totals(totals) if with_rules else None,
    )


def _trend_key(viewer: User, query: DeskQuery, as_of: date) -> str:
    if query.desks is not None:
        scope = ",".join(str(d.pk) for d in query.desks)
    else:
        scope = "all" if viewer.is_superuser else f"lead{viewer.pk}"
    return f"desk-trend:{as_of.isoformat()}:{viewer.pk}:{scope}"


def desk_trend(traders: QuerySet[User], as_of: date, today: int | None, key: str | None = None) -> list[tuple[date, int]]:
    """The desk average one week apart over the last four weeks, from the
    stored daily scores, then ``today``'s (the live current rows).

    One aggregate query, bounded to four days and read through the (user,
    date) index; as stored past days do not change, it runs once an hour per
    viewer and scope (``key``), not on every page view.
    """
    days = [as_of - timedelta(weeks=w) for w in range(TREND_WEEKS, 0, -1)]
    past = cache.get(key) if key else None
    if past is None:
        rows = (
            ReadinessSnapshot.objects.filter(user__in=traders.values("pk"), date__in=days)
            .values("date")
            .annotate(total=Sum("score"), n=Count("pk"))
            .order_by()
        )
        found = {row["date"]: words.round_half_up(row["total"], row["n"]) for row in rows if row["n"]}
        past = [(day, found[day]) for day in days if day in found]
        if key:
            cache.set(key, past, TREND_CACHE_SECONDS)
    return [*past, (as_of, today)] if today is not None else list(past)


def _tally_scope(viewer: User, query: DeskQuery) -> str | None:
    """Whose tallies hold this page's tiles: one desk's, or for a superuser
    every desk's; a lead's several desks (a trader may be on two) are counted."""
    if query.trader_ids is not None:
        return None
    if query.one_desk is not None:
        return tallies.desk_scope(query.one_desk)
    return tallies.ALL if viewer.is_superuser and query.desks is None else None


def desk_table(*, viewer: User, as_of: date, query: DeskQuery) -> DeskTable:
    """One page (50 rows) of the desk for ``viewer``, with the summary of all
    their traders: a few queries whatever the number of traders. A page past
    the end shows the last one.
    """
    # Built only if a query needs it: with the tallies and the trend kept, a
    # first page never does (building a queryset costs more than running one here).
    traders = SimpleLazyObject(lambda: _traders(viewer, query))
    scope = _tally_scope(viewer, query)
    summary = desk_summary(traders, as_of, with_rules=not query.filtered, scope=scope)
    matching_qs = SimpleLazyObject(lambda: _filtered(traders, query, as_of))
    if query.filtered:
        counted = tallies.count(matching_qs, as_of, tiles=False)
        matching, rule_totals = counted["total"], _rule_totals(counted)
    else:
        matching, rule_totals = summary.total, summary.rule_totals
    trend = None
    if query.trader_ids is None:
        trend = desk_trend(traders, as_of, summary.average, _trend_key(viewer, query, as_of))
    pages = max(1, -(-matching // PAGE_SIZE))
    page = min(max(query.page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    shown = []
    if matching:
        # The sort reads only narrow columns; the page's 50 rows are then read whole.
        ids = list(_ordered(matching_qs, query, as_of).values_list("pk", flat=True)[start : start + PAGE_SIZE])
        shown = _in_order(ids, as_of)
    return DeskTable(
        as_of=as_of,
        shown=shown,
        total=summary.total,
        matching=matching,
        page=page,
        pages=pages,
        average=summary.average,
        level_counts=summary.level_counts,
        unscored=summary.unscored,
        overdue_traders=summary.overdue_traders,
        bots_down=summary.bots_down,
        rule_totals=rule_totals,
        trend=trend,
    )


def desk_export_rows(*, viewer: User, as_of: date, query: DeskQuery, chunk_size: int = 2000) -> Iterator[DeskRow]:
    """Every row matching ``query``, sorted as the page is: the order read
    through one streaming query of ids (a server-side cursor on PostgreSQL),
    the rows a chunk at a time, so memory stays bounded however many traders match."""
    ordered = _ordered(_filtered(_traders(viewer, query), query, as_of), query, as_of).values_list("pk", flat=True)
    chunk: list[int] = []
    for pk in ordered.iterator(chunk_size=chunk_size):
        chunk.append(pk)
        if len(chunk) == chunk_size:
            yield from _in_order(chunk, as_of)
            chunk = []
    yield from _in_order(chunk, as_of)


def _in_order(ids: list[int], as_of: date) -> list[DeskRow]:
    by_id = {row.id: row for row in desk_rows(ids, as_of)}
    # A trader deleted between the order and the rows is left out, not an error.
    return [by_id[pk] for pk in ids if pk in by_id]


def desk_export_count(*, viewer: User, as_of: date, query: DeskQuery) -> int:
    return _filtered(_traders(viewer, query), query, as_of).count()


def previous_levels(user_ids: Iterable[int], before: date, lookback_days: int = rules.CHANGE_DAYS) -> dict[int, tuple[date, int, str]]:
    """Each trader's newest (date, score, level) stored before ``before``, at
    most ``lookback_days`` earlier: one query bounded by date."""
    found: dict[int, tuple[date, int, str]] = {}
    rows = ReadinessSnapshot.objects.filter(
        user_id__in=list(user_ids), date__lt=before, date__gte=before - timedelta(days=lookback_days)
    ).values_list("user_id", "date", "score", "level")
    for uid, day, score, level in rows:
        if uid not in found or found[uid][0] < day:
            found[uid] = (day, score, level)
    return found


# --------------------------------------------------------------------------
# One trader, read-only, for their lead
# --------------------------------------------------------------------------


class ShownFinding(NamedTuple):
    """A finding as a lead reads it: worded about the trader, masked."""

    severity: str
    text: str


@dataclass(frozen=True)
class RuleCard:
    id: str
    title: str
    status: str
    cell: str
    points: float
    weight: int
    reason: str
    accepted_until: date | None
    accepted_reason: str
    # The rule's findings as (severity, text), in the third person and masked.
    findings: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        if self.cell == ACCEPTED:
            return f"accepted · {words.STATUS_WORDS[self.status]}"
        return words.STATUS_WORDS[self.status]

    @property
    def glyph(self) -> str:
        return words.STATUS_GLYPHS[self.cell]


@dataclass(frozen=True)
class DueLine:
    due_on: date
    what: str
    overdue: bool


@dataclass(frozen=True)
class RecoveryLine:
    kind: str
    label: str
    last_verified_on: date | None

    @property
    def kind_label(self) -> str:
        return words.RECOVERY_KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class DrillLine:
    started_on: date
    lost_device: str
    completed: bool
    took: str | None
    # Completed faster than a real re-entry can be: it does not count (Catalog v2.1).
    too_fast: bool
    on_target: bool
    # Run in Gatecheck (server clock and confirmed steps), or typed into an imported file.
    recorded: bool = False
    # Each confirmed step and how long after the start it was confirmed.
    steps: tuple[tuple[str, str], ...] = ()


INCIDENTS_SHOWN = 20


def open_incidents(viewer: User) -> list[Incident]:
    """The bot incidents still open among the traders ``viewer`` oversees, oldest first, in one query."""
    return list(
        Incident.objects.filter(closed_at__isnull=True, owner__in=overseen_users(viewer))
        .select_related("heartbeat__automation", "owner", "acked_by")
        .order_by("opened_at", "pk")[:INCIDENTS_SHOWN]
    )


@dataclass(frozen=True)
class KeyLine:
    """An active API key's rotation date and whether a pipeline recorded it
    (the server's clock and the token's name) or the trader typed it."""

    label: str
    last_rotated_on: date | None
    recorded_at: datetime | None
    token: str


@dataclass
class TraderDetail:
    """What a lead may know about one trader: statuses, dates and counts,
    with recovery labels masked and nothing free-form (no notes)."""

    trader: User
    report: rules.Report
    cards: list[RuleCard]
    due: list[DueLine]
    recovery: list[RecoveryLine]
    counts: dict[str, list[tuple[str, int]]]
    expired_keys: int
    regions: tuple[str, ...]
    drills: list[DrillLine]
    keys: list[KeyLine]
    incidents: list[Incident]
    history: list[tuple[date, int]]
    change: int | None
    reminded_today: bool

    @property
    def overdue(self) -> int:
        return sum(1 for line in self.due if line.overdue)

    @property
    def due_soon(self) -> int:
        return sum(1 for line in self.due if not line.overdue)


def _tally(values: Iterable[str]) -> list[tuple[str, int]]:
    """(value, count) pairs, most common first; templates cannot iterate a Counter."""
    return Counter(values).most_common()


def trader_detail(trader: User, as_of: date) -> TraderDetail:
    """Score one trader live (reasons are not stored) and gather their counts."""
    inventory = inventory_for(trader)
    lim = limits()
    report = rules.evaluate(inventory, as_of, lim)
    accepted = {}
    for risk in inventory.accepted_risks:
        if rules.risk_holds(risk.until, as_of):
            accepted[risk.rule] = risk
    cards = [
        RuleCard(
            id=r.id,
            title=r.title,
            status=r.status,
            cell=cell_status(r.status, r.id, set(accepted)),
            points=r.points,
            weight=r.weight,
            # Recovery labels come masked in the snapshot; this catches a
            # number or address typed into any other name.
            reason=mask_text(r.lead_reason),
            findings=tuple(ShownFinding(f.severity, mask_text(f.in_voice(rules.LEAD))) for f in r.findings),
            accepted_until=accepted[r.id].until if r.id in accepted else None,
            accepted_reason=mask_text(accepted[r.id].reason) if r.id in accepted else "",
        )
        for r in report.results
    ]
    due = [
        DueLine(due_on=item.due_on, what=mask_text(item.what), overdue=item.overdue(as_of))
        for item in rules.coming_due(inventory, as_of, lim)
    ]
    expired = sum(1 for k in rules.active_keys(inventory) if rules.is_expired(k, as_of))
    counts = {
        "devices": _tally(d.status for d in inventory.devices),
        "device_kinds": _tally(d.kind for d in inventory.devices if d.status == rules.ACTIVE),
        "api_keys": _tally(k.status for k in inventory.api_keys),
        "automations": _tally(a.status for a in inventory.automations),
        "subscriptions": _tally("active" if s.active else "inactive" for s in inventory.subscriptions),
    }
    target = timedelta(minutes=lim.drill_target_minutes)
    drills = []
    for drill in Drill.objects.filter(owner=trader).prefetch_related("steps").order_by("-started_at")[:DRILLS_SHOWN]:
        took = drill.reentry
        drills.append(
            DrillLine(
                started_on=drill.started_at.date(),
                # A device name can hold a phone number.
                lost_device=mask_text(drill.lost_device),
                completed=drill.completed,
                took=rules.duration_text(took) if took is not None else None,
                on_target=took is not None and took <= target,
                too_fast=drill.too_fast,
                recorded=drill.recorded,
                steps=tuple(
                    (mask_text(step.title), rules.duration_text(step.confirmed_at - drill.started_at))
                    for step in drill.steps.all()
                    if step.confirmed_at is not None
                ),
            )
        )
    history = list(
        ReadinessSnapshot.objects.filter(user=trader, date__gt=as_of - timedelta(days=HISTORY_DAYS), date__lte=as_of)
        .order_by("date")
        .values_list("date", "score")
    )
    baseline = rules.week_baseline(history, as_of)
    return TraderDetail(
        trader=trader,
        report=report,
        cards=cards,
        due=due,
        # Labels come masked in the snapshot.
        recovery=[RecoveryLine(m.kind, m.label, m.last_verified_on) for m in inventory.recovery_methods],
        counts=counts,
        expired_keys=expired,
        regions=inventory.profile.regions_traded,
        drills=drills,
        keys=[
            KeyLine(mask_text(k.label), k.last_rotated_on, k.rotation_recorded_at, mask_text(k.rotation_token.name) if k.rotation_token else "")
            for k in ApiKey.objects.filter(owner=trader, status=ApiKey.Status.ACTIVE).select_related("rotation_token").order_by("label", "pk")
        ],
        incidents=list(Incident.objects.filter(owner=trader).select_related("heartbeat__automation", "acked_by")[:10]),
        history=history,
        change=report.score - baseline[1] if baseline else None,
        reminded_today=ReminderLog.objects.filter(recipient=trader, kind=ReminderLog.Kind.MANUAL, date=as_of).exists(),
    )
