"""Reads for desk leads: who a lead oversees, the desk table, one trader's detail.

Everything a lead may see is reached through ``desks_for`` and ``traders_for``;
views, exports, reminders and the admin never filter by desk on their own.

The desk table reads stored ``ReadinessSnapshot`` rows and never re-scores
inventories: at 500 traders re-scoring would dominate the page. It does read
the dated parts of the inventories (``inventories_for`` with ``DUE_SECTIONS``,
five queries whatever the number of traders) because the "overdue" and "due soon" tags come from
the coming-due dates, which move with today's date.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils.safestring import SafeString

from accounts.models import Desk, User
from accounts.selectors import overseen_users, traders_for
from checklist.models import Drill, ReadinessSnapshot
from checklist.selectors import DUE_SECTIONS, inventories_for, inventory_for, limits
from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_text

from .models import ReminderLog

DUE_SOON_DAYS = 14
CHANGE_DAYS = 7
HISTORY_DAYS = 90
DRILLS_SHOWN = 20
ACCEPTED = words.ACCEPTED

# Short column heads for the heatmap; the full rule title is in the tooltip.
RULE_SHORT: dict[str, str] = {
    "devices.trusted": "Devices",
    "recovery.current": "Recovery",
    "credentials.segmented": "Segmented",
    "credentials.rotation": "Rotation",
    "interfaces.mapped": "Interfaces",
    "marketdata.covered": "Mkt data",
    "drill.rehearsed": "Drill",
    "automation.failsafe": "Fail-safe",
    "mfa.broker": "Broker MFA",
    "permissions.cleared": "Permissions",
    "automation.alive": "Heartbeat",
}
RULE_IDS = rules.RULE_IDS
RULE_TITLES = rules.RULE_TITLES
LEVEL_LABELS = words.LEVEL_LABELS
SORT_KEYS = ("name", "score", "level", "change", "due", *RULE_IDS)


# --------------------------------------------------------------------------
# Who a lead oversees
# --------------------------------------------------------------------------


def can_reset_mfa(actor: User, trader: User) -> bool:
    """A lead may reset a trader of their own desk; a superuser anyone's.

    Never one's own factors, and a lead never resets another lead (or a
    superuser): those accounts can reach other traders' data.
    """
    if actor.pk == trader.pk:
        return False
    if actor.is_superuser:
        return True
    if trader.is_superuser or trader.is_desk_lead:
        return False
    return traders_for(actor).filter(pk=trader.pk).exists()


# --------------------------------------------------------------------------
# The desk table
# --------------------------------------------------------------------------


@dataclass
class DeskRow:
    """One trader in the desk table; ``html`` is the whole ``<tr>``, built once."""

    id: int
    username: str
    name: str
    score: int | None
    level: str | None
    scored_on: date | None
    change: int | None
    statuses: dict[str, str | None]
    cells: dict[str, str | None]
    overdue: int
    due_soon: int
    overdue_kinds: tuple[str, ...] = ()
    html: SafeString = field(default=SafeString(""), repr=False)

    @property
    def display_name(self) -> str:
        return self.name or self.username


@dataclass
class DeskTable:
    """The desk page: every row for the summary, the shown rows after filters."""

    as_of: date
    rows: list[DeskRow]
    shown: list[DeskRow]
    average: int | None
    level_counts: dict[str, int]
    unscored: int
    overdue_traders: int


@dataclass(frozen=True)
class DeskQuery:
    """What the lead asked for: filters and sort, already validated."""

    q: str = ""
    level: str = ""
    failing: str = ""
    due: str = ""
    sort: str = "score"
    descending: bool = False
    desks: tuple[Desk, ...] | None = None
    trader_ids: tuple[int, ...] | None = None


class Snap(NamedTuple):
    user_id: int
    date: date
    score: int
    level: str
    statuses: dict[str, str]


def latest_snapshots(user_ids: list[int], on_or_before: date) -> dict[int, Snap]:
    """Each trader's most recent snapshot on or before a day, in one query."""
    rows = (
        ReadinessSnapshot.objects.filter(user_id__in=user_ids, date__lte=on_or_before)
        .annotate(rank=Window(RowNumber(), partition_by=[F("user_id")], order_by=[F("date").desc()]))
        .filter(rank=1)
        .values_list("user_id", "date", "score", "level", "statuses")
    )
    return {row[0]: Snap(*row) for row in rows}


def _accepted_rules(inventory: rules.Inventory, as_of: date) -> set[str]:
    return {risk.rule for risk in inventory.accepted_risks if as_of <= risk.until}


def cell_status(status: str | None, rule_id: str, accepted: set[str]) -> str | None:
    """A heatmap cell: the stored status, or "accepted" for a fail or partial
    the trader's lead has accepted as a risk that still holds."""
    if status in (rules.FAIL, rules.PARTIAL) and rule_id in accepted:
        return ACCEPTED
    return status


def due_counts(items: Iterable[rules.DueItem], as_of: date) -> tuple[int, int]:
    """(overdue, due soon) among coming-due items."""
    overdue = due_soon = 0
    for item in items:
        if item.overdue(as_of):
            overdue += 1
        else:
            due_soon += 1
    return overdue, due_soon


def _full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def desk_rows(user_ids_names: list[tuple[int, str, str, str]], as_of: date) -> list[DeskRow]:
    """Rows (without html) for the given traders: snapshots plus due counts.

    Two snapshot queries and five inventory queries, whatever the count.
    """
    ids = [uid for uid, *_ in user_ids_names]
    current = latest_snapshots(ids, as_of)
    baseline = latest_snapshots(ids, as_of - timedelta(days=CHANGE_DAYS))
    inventories = inventories_for(ids, DUE_SECTIONS)
    lim = limits()
    rows = []
    for uid, username, first, last in user_ids_names:
        snap = current.get(uid)
        inventory = inventories[uid]
        accepted = _accepted_rules(inventory, as_of)
        statuses = snap.statuses if snap else {}
        before = baseline.get(uid)
        items = rules.coming_due(inventory, as_of, lim, window_days=DUE_SOON_DAYS)
        overdue, due_soon = due_counts(items, as_of)
        rows.append(
            DeskRow(
                id=uid,
                username=username,
                name=_full_name(first, last),
                score=snap.score if snap else None,
                level=snap.level if snap else None,
                scored_on=snap.date if snap else None,
                change=(snap.score - before.score) if snap and before and before.date < snap.date else None,
                statuses={rid: statuses.get(rid) for rid in RULE_IDS},
                cells={rid: cell_status(statuses.get(rid), rid, accepted) for rid in RULE_IDS},
                overdue=overdue,
                due_soon=due_soon,
                overdue_kinds=tuple(sorted({i.kind for i in items if i.overdue(as_of)})),
            )
        )
    return rows


def _sort_key(sort: str):
    if sort == "name":
        return lambda r: r.display_name.lower()
    if sort == "score":
        return lambda r: -1 if r.score is None else r.score
    if sort == "level":
        return lambda r: words.LEVEL_ORDER.get(r.level or "", -1)
    if sort == "change":
        return lambda r: -1000 if r.change is None else r.change
    if sort == "due":
        return lambda r: (-r.overdue, -r.due_soon)
    return lambda r: words.STATUS_ORDER.get(r.cells.get(sort) or "", 5)


def _matches(row: DeskRow, query: DeskQuery) -> bool:
    if query.q:
        needle = query.q.lower()
        if needle not in row.username.lower() and needle not in row.name.lower():
            return False
    if query.level and row.level != query.level:
        return False
    # "Failing" is the stored status: a fail stays a fail when its risk is accepted.
    if query.failing and row.statuses.get(query.failing) != rules.FAIL:
        return False
    if query.due == "overdue" and not row.overdue:
        return False
    if query.due == "due_soon" and not (row.overdue or row.due_soon):
        return False
    return True


def desk_table(*, viewer: User, as_of: date, query: DeskQuery) -> DeskTable:
    """The desk page for ``viewer``: all their traders, filtered and sorted.

    A fixed number of queries: traders, two snapshot reads, five inventory
    reads. Search, filters and sort run in Python over at most a few hundred
    rows, so the summary always describes the whole desk.
    """
    if query.trader_ids is not None:
        # Rows picked in the admin: anyone the viewer oversees.
        traders = overseen_users(viewer).filter(pk__in=query.trader_ids)
    else:
        traders = traders_for(viewer, query.desks)
    people = list(traders.order_by("username").values_list("id", "username", "first_name", "last_name"))
    rows = desk_rows(people, as_of)
    shown = [row for row in rows if _matches(row, query)]
    shown.sort(key=lambda r: r.display_name.lower())
    shown.sort(key=_sort_key(query.sort), reverse=query.descending)
    scored = [row.score for row in rows if row.score is not None]
    counts = Counter(row.level for row in rows if row.level)
    return DeskTable(
        as_of=as_of,
        rows=rows,
        shown=shown,
        # Rounded half up, like the scores themselves.
        average=words.round_half_up(sum(scored), len(scored)) if scored else None,
        level_counts={level: counts.get(level, 0) for level in LEVEL_LABELS},
        unscored=len(rows) - len(scored),
        overdue_traders=sum(1 for row in rows if row.overdue),
    )


# --------------------------------------------------------------------------
# One trader, read-only, for their lead
# --------------------------------------------------------------------------


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
    on_target: bool
    # Run in Gatecheck (server clock and confirmed steps), or typed into an imported file.
    recorded: bool = False
    # Each confirmed step and how long after the start it was confirmed.
    steps: tuple[tuple[str, str], ...] = ()


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
        if as_of <= risk.until:
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
            findings=tuple((f.severity, mask_text(f.in_voice(rules.LEAD))) for f in r.findings),
            accepted_until=accepted[r.id].until if r.id in accepted else None,
            accepted_reason=mask_text(accepted[r.id].reason) if r.id in accepted else "",
        )
        for r in report.results
    ]
    due = [
        DueLine(due_on=item.due_on, what=mask_text(item.what), overdue=item.overdue(as_of))
        for item in rules.coming_due(inventory, as_of, lim, window_days=DUE_SOON_DAYS)
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
    week_ago = [score for day, score in history if day <= as_of - timedelta(days=CHANGE_DAYS)]
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
        history=history,
        change=report.score - week_ago[-1] if week_ago else None,
        reminded_today=ReminderLog.objects.filter(recipient=trader, kind=ReminderLog.Kind.MANUAL, date=as_of).exists(),
    )
