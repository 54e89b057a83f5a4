"""Readiness rules (rule catalog v1) and their findings: data plus pure functions.

This module imports no Django on purpose. The apps build one immutable
:class:`Inventory` snapshot with a bounded number of queries, and everything
here scores that snapshot, so the rules can be tested without a database.

Each rule lists its *findings*: every item that keeps it from ``pass``, with a
severity (``critical`` when it is part of what makes the rule fail). The
status follows from them (a critical finding fails the rule, warnings alone
make it partial, none is a pass) and so does the one-line reason. Every page
that shows an item's problem reads these findings; none re-derives them.

The specification is ``CHECKLIST.md`` (rules, weights, terms, findings) and
``INVENTORY.md`` (field names, allowed values, the ``--json`` report shape).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from .brokers import catalog_for
from .vocabulary import (
    ACTIVE,
    AT_RISK,
    BACKUP_FACTORS,
    BROKER_MFA_WORDS,
    COMPUTER_KINDS,
    CRITICAL,
    DEVICE_KIND_WORDS,
    FAIL,
    MONEY_SCOPES,
    NA,
    NOT_READY,
    PARTIAL,
    PASS,
    PERMISSION_PENDING_DAYS,
    PRODUCTS,
    READY,
    SAFE_AUTH_FAILURE,
    SECTIONS,
    STRONG_MFA,
    TASKS,
    WARNING,
    join_words,
    round_half_up,
)

__all__ = ["ACTIVE", "AT_RISK", "CRITICAL", "FAIL", "NA", "NOT_READY", "PARTIAL", "PASS", "READY", "WARNING"]

# --------------------------------------------------------------------------
# The snapshot. ``id`` is the stored row's primary key when the snapshot was
# read from the database (list pages match findings to rows by it); rules
# never read it.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """A machine or phone the trader signs in from."""

    name: str
    kind: str
    platforms: frozenset[str]
    validated_on: date | None
    status: str
    browser_saved_password: bool
    id: int | None = None


@dataclass(frozen=True)
class RecoveryMethod:
    """A way back into the account (phone, email, backup factor)."""

    kind: str
    label: str
    last_verified_on: date | None
    id: int | None = None


@dataclass(frozen=True)
class ApiKey:
    """A programmatic credential; never holds the secret itself."""

    label: str
    scopes: frozenset[str]
    service_account: bool
    created_on: date
    last_rotated_on: date | None
    expires_on: date | None
    status: str
    ip_restricted: bool = False
    id: int | None = None

    @property
    def age_from(self) -> date:
        """The day the key's age counts from: the later of creation and last rotation."""
        if self.last_rotated_on is None:
            return self.created_on
        return max(self.created_on, self.last_rotated_on)


@dataclass(frozen=True)
class Automation:
    """An automated strategy; ``api_key`` is a key label, or None for the human login."""

    name: str
    api_key: str | None
    token_refresh: bool
    fallback_contact: str
    on_auth_failure: str
    status: str
    id: int | None = None
    # The heartbeat's status when the snapshot was read (observed, not
    # declared), or None when the automation has no heartbeat.
    heartbeat: str | None = None


@dataclass(frozen=True)
class Subscription:
    """A market data feed for one region."""

    region: str
    feed: str
    active: bool
    id: int | None = None


@dataclass(frozen=True)
class Drill:
    """A rehearsed device loss; timestamps are timezone-aware."""

    started_at: datetime
    finished_at: datetime | None
    lost_device: str
    completed: bool
    id: int | None = None


@dataclass(frozen=True)
class Permission:
    """A trading permission: may the account trade ``product`` in ``region``."""

    product: str
    region: str
    status: str
    requested_on: date | None = None
    id: int | None = None


@dataclass(frozen=True)
class AcceptedRisk:
    """A rule the desk lead has knowingly accepted until a date."""

    rule: str
    reason: str
    until: date
    id: int | None = None


@dataclass(frozen=True)
class Profile:
    """Broker-level facts about the trader."""

    broker: str = "IBKR"
    broker_mfa: str | None = None
    regions_traded: tuple[str, ...] = ()
    interface_plan: tuple[tuple[str, str | None], ...] = ()
    products_traded: tuple[str, ...] = ()

    def plan(self) -> dict[str, str | None]:
        """The interface plan as ``{task: access_point}`` (a fresh dict each call)."""
        return dict(self.interface_plan)


@dataclass(frozen=True)
class Inventory:
    """One trader's whole readiness inventory, immutable."""

    profile: Profile = field(default_factory=Profile)
    devices: tuple[Device, ...] = ()
    recovery_methods: tuple[RecoveryMethod, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    automations: tuple[Automation, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    drills: tuple[Drill, ...] = ()
    accepted_risks: tuple[AcceptedRisk, ...] = ()
    permissions: tuple[Permission, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing has been recorded yet (profile and accepted risks aside)."""
        return not (
            self.devices
            or self.recovery_methods
            or self.api_keys
            or self.automations
            or self.subscriptions
            or self.drills
            or self.permissions
        )


@dataclass(frozen=True)
class Limits:
    """The configurable limits of CHECKLIST.md, in days and minutes."""

    device_days: int = 365
    recovery_days: int = 180
    rotation_days: int = 90
    drill_days: int = 90
    drill_target_minutes: int = 30


# --------------------------------------------------------------------------
# Findings, in the trader's voice and in the lead's
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """Who a message speaks to: the trader ("your login") or their lead ("the trader's login")."""

    you: str
    You: str
    your: str
    Your: str
    s: str  # the verb ending that goes with ``you`` ("you trade", "the trader trades")


TRADER = Voice("you", "You", "your", "Your", "")
LEAD = Voice("the trader", "The trader", "the trader's", "The trader's", "s")

Text = Callable[[Voice], str]


@dataclass(frozen=True)
class Finding:
    """One item that keeps a rule from passing.

    ``section`` is an inventory section (``devices``, ``api_keys``...);
    ``item`` the item's name or label, or None when something is missing;
    ``ref`` the stored row's id (or, for something missing, the code it is
    about, such as a region), so a list page can put the finding on its row;
    ``tag`` the word for the item's status tag ("Expired", "Lost").
    """

    severity: str
    section: str
    item: str | None
    message: str
    lead_message: str
    tag: str
    ref: int | str | None = None
    place: int = -1

    def in_voice(self, voice: Voice) -> str:
        return self.lead_message if voice is LEAD else self.message

    def as_dict(self) -> dict[str, object]:
        """The finding object of ``readiness --json`` (INVENTORY.md)."""
        return {"severity": self.severity, "section": self.section, "item": self.item, "message": self.message}


def _finding(severity: str, section: str, text: Text, tag: str, *, item: str | None = None, ref: int | str | None = None, place: int = -1) -> Finding:
    return Finding(severity, section, item, text(TRADER), text(LEAD), tag, ref, place)


def _order(findings: list[Finding]) -> tuple[Finding, ...]:
    """Critical first, then by section in the order of the format, then by the
    item's place in its list, then what is missing; otherwise as found."""
    return tuple(
        sorted(findings, key=lambda f: (f.severity != CRITICAL, SECTIONS.index(f.section), f.item is None, f.place))
    )


def reason_of(findings: tuple[Finding, ...], voice: Voice = TRADER) -> str:
    """The first finding's message, and how many more there are."""
    first = findings[0].in_voice(voice)
    return first if len(findings) == 1 else f"{first} (and {len(findings) - 1} more)"


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule for one snapshot."""

    id: str
    title: str
    weight: int
    status: str
    points: float
    reason: str
    fix_url: str
    accepted_until: date | None
    findings: tuple[Finding, ...] = ()
    lead_reason: str = ""

    @property
    def points_lost(self) -> float:
        """Weight minus points; what fixing the rule would earn back."""
        return self.weight - self.points


# The level thresholds of CHECKLIST.md: READY from 85, AT_RISK from 60.
READY_FROM = 85
AT_RISK_FROM = 60
# An item due within this many days is "due soon" (dashboard, desk, reminders).
DUE_SOON_DAYS = 14


def level_for(score: int) -> str:
    """The readiness level for a whole-number score."""
    if score >= READY_FROM:
        return READY
    if score >= AT_RISK_FROM:
        return AT_RISK
    return NOT_READY


# "Since last week": a score is compared with the newest one stored 7 to 14
# days before it (none in that week: no change is shown). The dashboard, the
# desk's column and the desk's trader page all read it from here.
CHANGE_DAYS = 7
CHANGE_LOOKBACK_DAYS = 7


def week_baseline(history: Iterable[tuple[date, int]], as_of: date) -> tuple[date, int] | None:
    """The (day, score) a score on ``as_of`` is compared with, from the stored ``history``."""
    target = as_of - timedelta(days=CHANGE_DAYS)
    older = [(day, score) for day, score in history if target - timedelta(days=CHANGE_LOOKBACK_DAYS) <= day <= target]
    return max(older) if older else None


def points_to_ready(score: int) -> int:
    """How many points a score is short of READY (0 once there)."""
    return max(0, READY_FROM - score)


def due_soon(due_on: date, as_of: date) -> bool:
    """Not overdue, and due within DUE_SOON_DAYS."""
    return as_of <= due_on <= as_of + timedelta(days=DUE_SOON_DAYS)


@dataclass(frozen=True)
class Report:
    """A scored snapshot: every rule of the catalog, in catalog order."""

    as_of: date
    score: int
    level: str
    results: tuple[RuleResult, ...]

    @property
    def next_actions(self) -> tuple[RuleResult, ...]:
        """Failing and partial rules, most points lost first, ties in catalog order.

        Rules under an accepted risk are left out until the risk lapses.
        """
        open_results = [
            r for r in self.results if r.status in (FAIL, PARTIAL) and r.accepted_until is None
        ]
        # sorted() is stable, and results are in catalog order, so ties keep it.
        return tuple(sorted(open_results, key=lambda r: -r.points_lost))

    def result(self, rule_id: str) -> RuleResult:
        return next(r for r in self.results if r.id == rule_id)

    def findings(self, section: str | None = None) -> tuple[Finding, ...]:
        """Every finding of every rule (of one section), worst first, each once.

        Two rules never word the same problem the same way, but a message
        repeated by two rules would show once.
        """
        seen: dict[tuple[str, object, str], Finding] = {}
        for r in self.results:
            for f in r.findings:
                if section is None or f.section == section:
                    seen.setdefault((f.section, f.ref, f.message), f)
        return _order(list(seen.values()))

    def findings_by_ref(self, section: str) -> dict[int | str | None, tuple[Finding, ...]]:
        """A section's findings grouped by the row (or code) they are about."""
        grouped: dict[int | str | None, list[Finding]] = {}
        for f in self.findings(section):
            grouped.setdefault(f.ref if f.item is not None else None, []).append(f)
        return {ref: tuple(found) for ref, found in grouped.items()}

    def as_dict(self, user: str) -> dict[str, object]:
        """The ``readiness --json`` object of INVENTORY.md, keys in its order."""
        return {
            "user": user,
            "as_of": self.as_of.isoformat(),
            "catalog": CATALOG_VERSION,
            "score": self.score,
            "level": self.level,
            "rules": [
                {
                    "id": r.id,
                    "status": r.status,
                    "weight": r.weight,
                    "points": float(r.points),
                    "reason": r.reason,
                    "accepted_until": (
                        r.accepted_until.isoformat() if r.accepted_until is not None else None
                    ),
                    "findings": [f.as_dict() for f in r.findings],
                }
                for r in self.results
            ],
        }


# --------------------------------------------------------------------------
# Shared terms
# --------------------------------------------------------------------------


def add_days(day: date, days: int) -> date:
    """``day`` plus ``days``, held at the ends of the calendar instead of
    raising OverflowError: one stored date near 9999-12-31 must not break the
    pages and jobs that compute a due date from it (anyone's desk page, the
    nightly jobs)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def within_days(day: date | None, as_of: date, days: int) -> bool:
    """True if ``day`` is not after ``as_of`` and at most ``days`` days before it."""
    if day is None:
        return False
    return day <= as_of and (as_of - day).days <= days


def qualifies(device: Device, as_of: date, limits: Limits) -> bool:
    """A qualifying device: active and validated within the device limit."""
    return device.status == ACTIVE and within_days(device.validated_on, as_of, limits.device_days)


def qualifying_devices(inventory: Inventory, as_of: date, limits: Limits) -> tuple[Device, ...]:
    """Active devices validated within the device limit."""
    return tuple(d for d in inventory.devices if qualifies(d, as_of, limits))


def active_automations(inventory: Inventory) -> tuple[Automation, ...]:
    """Automations that are running; paused ones are ignored everywhere."""
    return tuple(a for a in inventory.automations if a.status == ACTIVE)


def active_keys(inventory: Inventory) -> tuple[ApiKey, ...]:
    """API keys that have not been revoked."""
    return tuple(k for k in inventory.api_keys if k.status == ACTIVE)


def key_for(inventory: Inventory, automation: Automation) -> ApiKey | None:
    """The key an automation names; a label that names no key counts as no key."""
    if automation.api_key is None:
        return None
    for key in inventory.api_keys:
        if key.label == automation.api_key:
            return key
    return None


def is_expired(key: ApiKey, as_of: date) -> bool:
    """A key is still valid on its expiry day."""
    return key.expires_on is not None and key.expires_on < as_of


def key_age_days(key: ApiKey, as_of: date) -> int:
    """Days since the later of creation and last rotation."""
    return (as_of - key.age_from).days


def _utc(moment: datetime) -> datetime:
    # Timestamps should be aware; a naive one is taken as UTC rather than local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _finished_at(drill: Drill) -> datetime:
    if drill.finished_at is None:
        raise ValueError(f"drill of '{drill.lost_device}' has not finished")
    return _utc(drill.finished_at)


def drill_day(drill: Drill) -> date:
    """The day of a completed drill: the UTC date of ``finished_at``."""
    return _finished_at(drill).date()


def reentry_time(drill: Drill) -> timedelta:
    """How long re-entry took in a completed drill."""
    return _finished_at(drill) - _utc(drill.started_at)


# Catalog v2.1: a re-entry faster than this cannot have been a real one
# (a new phone, a password, a second factor), so the drill does not count.
PLAUSIBLE_REENTRY = timedelta(minutes=2)


def reentry_plausible(took: timedelta) -> bool:
    """Whether a drill's re-entry time is long enough to have been real."""
    return took >= PLAUSIBLE_REENTRY


def _finished_drills(inventory: Inventory, as_of: date) -> list[Drill]:
    return [d for d in inventory.drills if d.completed and d.finished_at is not None and drill_day(d) <= as_of]


def completed_drills(inventory: Inventory, as_of: date) -> tuple[Drill, ...]:
    """Completed drills whose day is not after ``as_of``, most recent first;
    one clicked through too fast to be real (``reentry_plausible``) does not count."""
    drills = [d for d in _finished_drills(inventory, as_of) if reentry_plausible(reentry_time(d))]
    return tuple(sorted(drills, key=_finished_at, reverse=True))


def duration_text(duration: timedelta) -> str:
    """``1 h 5 min``, ``18 min 12 s``, ``40 s``: a re-entry time for people."""
    seconds = max(0, int(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def _dated(day: date | None, as_of: date, limit: int, what: str) -> tuple[str, str] | None:
    """Why a validation or verification day does not count, with a tag, or None if it does."""
    if day is None:
        return f"has never been {what}", "Never " + what
    if day > as_of:
        return f"has a {what} date in the future ({day.isoformat()}); record the day it really happened", "Future date"
    if (as_of - day).days > limit:
        return f"was last {what} on {day.isoformat()}, over {limit} days ago", "Stale"
    return None


# --------------------------------------------------------------------------
# The rules. Each returns its findings and the reason it gives when it has
# none (a pass), or, when it does not apply, ``NotApplicable``.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NotApplicable:
    reason: Text


@dataclass(frozen=True)
class Checked:
    findings: list[Finding]
    pass_reason: Text


Check = Callable[[Inventory, date, Limits], "Checked | NotApplicable"]


def check_devices_trusted(inventory: Inventory, as_of: date, limits: Limits) -> Checked:
    """At least two validated devices, a phone and a desktop or laptop among them."""
    found: list[Finding] = []
    qualifying = qualifying_devices(inventory, as_of, limits)
    for place, device in enumerate(inventory.devices):
        name, ref = device.name, device.id

        def add(severity: str, text: Text, tag: str) -> None:
            found.append(_finding(severity, "devices", text, tag, item=name, ref=ref, place=place))

        if device.status == "lost":
            add(CRITICAL, lambda v: f"Device '{name}' is reported lost; revoke it at the broker", "Lost")
        if device.status != ACTIVE:
            continue
        problem = _dated(device.validated_on, as_of, limits.device_days, "validated")
        if problem is not None:
            # Part of the fail condition when no device qualifies at all.
            words, tag = problem
            add(WARNING if qualifying else CRITICAL, lambda v, w=words: f"Device '{name}' {w}", tag)
        if device.browser_saved_password:
            add(
                WARNING,
                lambda v: f"Device '{name}' keeps the broker password in the browser; remove it and use a password manager",
                "Saved password",
            )
    kinds = {d.kind for d in qualifying}
    has_mobile, has_computer = "mobile" in kinds, bool(kinds & COMPUTER_KINDS)
    if not qualifying:
        found.append(
            _finding(
                CRITICAL,
                "devices",
                lambda v: (
                    f"No active device validated in the last {limits.device_days} days; "
                    f"validate {v.your} workstation and {v.your} phone"
                ),
                "Missing",
            )
        )
    elif len(qualifying) == 1:
        second = "a desktop or laptop" if has_mobile else "a phone"
        found.append(_finding(WARNING, "devices", lambda v: f"Only 1 validated device; add {second} as a second", "Missing"))
    elif not has_mobile:
        found.append(
            _finding(WARNING, "devices", lambda v: f"None of {v.your} {len(qualifying)} validated devices is a phone; validate one", "Missing")
        )
    elif not has_computer:
        found.append(
            _finding(
                WARNING,
                "devices",
                lambda v: f"None of {v.your} {len(qualifying)} validated devices is a desktop or laptop; validate one",
                "Missing",
            )
        )
    kind_names = sorted({DEVICE_KIND_WORDS.get(k, k) for k in kinds}, key=lambda k: (k != "phone", k))
    return Checked(found, lambda v: f"{len(qualifying)} validated devices, {join_words(kind_names)}")


def check_recovery_current(inventory: Inventory, as_of: date, limits: Limits) -> Checked:
    """A fresh phone and email plus at least one backup factor."""
    found: list[Finding] = []
    methods = inventory.recovery_methods
    missing = [noun for noun, kind in (("phone", "phone"), ("email", "email")) if not any(m.kind == kind for m in methods)]
    if len(missing) == 2:
        found.append(_finding(CRITICAL, "recovery_methods", lambda v: "No recovery phone or email; add both", "Missing"))
    elif missing:
        noun = missing[0]
        found.append(_finding(CRITICAL, "recovery_methods", lambda v: f"No recovery {noun}; add one", "Missing", ref=noun))
    for kind in ("phone", "email"):
        group = [(place, m) for place, m in enumerate(methods) if m.kind == kind]
        if any(within_days(m.last_verified_on, as_of, limits.recovery_days) for _, m in group):
            continue  # one current method of the kind is enough
        for place, method in group:
            words, tag = _dated(method.last_verified_on, as_of, limits.recovery_days, "verified") or ("", "")
            label = method.label
            found.append(
                _finding(
                    WARNING, "recovery_methods", lambda v, w=words, k=kind, lb=label: f"Recovery {k} '{lb}' {w}", tag,
                    item=label, ref=method.id, place=place,
                )
            )
    backups = sorted({m.kind for m in methods if m.kind in BACKUP_FACTORS})
    if not backups:
        found.append(
            _finding(
                WARNING,
                "recovery_methods",
                lambda v: "No backup factor; add an authenticator, backup codes, a hardware key or a secondary device",
                "Missing",
            )
        )
    backup_names = join_words(b.replace("_", " ") for b in backups)
    return Checked(
        found, lambda v: f"Phone and email verified within {limits.recovery_days} days, backed up by {backup_names}"
    )


def check_credentials_segmented(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Every active automation has its own service-account key without money movement."""
    automations = active_automations(inventory)
    if not automations:
        return NotApplicable(lambda v: "No active automation")
    found: list[Finding] = []
    users: dict[str, list[str]] = {}
    for place, automation in enumerate(inventory.automations):
        if automation.status != ACTIVE:
            continue
        name, label = automation.name, automation.api_key

        def add(text: Text, tag: str) -> None:
            found.append(_finding(CRITICAL, "automations", text, tag, item=name, ref=automation.id, place=place))

        key = key_for(inventory, automation)
        if key is None:
            if label is None:
                add(lambda v: f"Automation '{name}' runs on {v.your} human login", "Human login")
            else:
                add(
                    lambda v: f"Automation '{name}' names API key '{label}', which does not exist; it counts as running on {v.your} human login",
                    "Human login",
                )
            continue
        users.setdefault(key.label, []).append(name)
        if key.status != ACTIVE:
            add(lambda v: f"Automation '{name}' uses revoked API key '{label}'", "Revoked key")
        elif not key.service_account:
            add(lambda v: f"Automation '{name}' uses API key '{label}', which is not held by a service account", "Personal key")
    for place, key in enumerate(inventory.api_keys):
        if key.label not in users:
            continue
        label = key.label
        money = join_words(sorted(key.scopes & MONEY_SCOPES))
        if money:
            found.append(
                _finding(
                    WARNING, "api_keys", lambda v, m=money: f"API key '{label}' has the {m} scope; remove it from the key", "Moves money",
                    item=label, ref=key.id, place=place,
                )
            )
        names = users[label]
        if len(names) > 1:
            quoted = join_words(f"'{n}'" for n in names)
            found.append(
                _finding(
                    WARNING, "api_keys", lambda v, q=quoted: f"API key '{label}' is shared by automations {q}; give each its own key", "Shared",
                    item=label, ref=key.id, place=place,
                )
            )
    if len(automations) == 1:
        only = automations[0].name
        return Checked(found, lambda v: f"Automation '{only}' has its own service-account key with no money-movement scope")
    return Checked(
        found,
        lambda v: f"{len(automations)} active automations, each with its own service-account key and no money-movement scope",
    )


def check_credentials_rotation(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Every active key has an expiry and was rotated within the limit."""
    keys = active_keys(inventory)
    if not keys:
        return NotApplicable(lambda v: "No active API key")
    found: list[Finding] = []
    every = f"rotate every {limits.rotation_days} days"
    for place, key in enumerate(inventory.api_keys):
        if key.status != ACTIVE:
            continue
        label, age, expires = key.label, key_age_days(key, as_of), key.expires_on

        def add(severity: str, text: Text, tag: str) -> None:
            found.append(_finding(severity, "api_keys", text, tag, item=label, ref=key.id, place=place))

        if expires is not None and is_expired(key, as_of):
            add(CRITICAL, lambda v: f"API key '{label}' expired on {expires.isoformat()}", "Expired")
        elif expires is None and age > limits.rotation_days:
            add(CRITICAL, lambda v: f"API key '{label}' has no expiry and is {age} days old ({every})", "Overdue rotation")
        else:
            if age > limits.rotation_days:
                add(WARNING, lambda v: f"API key '{label}' is {age} days old ({every})", "Rotation due")
            if expires is None:
                add(WARNING, lambda v: f"API key '{label}' has no expiry date; set one", "No expiry")
    if len(keys) == 1:
        only = keys[0]
        return Checked(
            found,
            lambda v: f"API key '{only.label}' expires on {only.expires_on} and was rotated within {limits.rotation_days} days",
        )
    return Checked(
        found, lambda v: f"{len(keys)} active API keys, all with an expiry and rotated within {limits.rotation_days} days"
    )


def check_interfaces_mapped(inventory: Inventory, as_of: date, limits: Limits) -> Checked:
    """Every task has a suitable access point that a validated device offers."""
    found: list[Finding] = []
    plan = inventory.profile.plan()
    platforms: set[str] = set()
    for device in qualifying_devices(inventory, as_of, limits):
        platforms |= device.platforms
    broker = catalog_for(inventory.profile.broker)
    for task, task_name in TASKS.items():
        point = plan.get(task)
        if not point:
            found.append(_finding(CRITICAL, "profile", lambda v, t=task_name: f"No access point chosen for {t}", "Missing", ref=task))
            continue
        # The broker's own names and, where it differs from IBKR, its own table.
        point_name = broker.point_name(point)
        if point not in broker.suitable[task]:
            suitable = join_words(sorted(broker.point_name(p) for p in broker.suitable[task]), "or") or "another broker tool"
            found.append(
                _finding(
                    WARNING, "profile", lambda v, p=point_name, t=task_name, s=suitable: f"{p} does not suit {t}; use {s}", "Unsuitable",
                    ref=task,
                )
            )
        if point != "api" and point not in platforms:
            found.append(
                _finding(
                    WARNING, "profile", lambda v, p=point_name, t=task_name: f"{p}, planned for {t}, is on no validated device", "No device",
                    ref=task,
                )
            )
    return Checked(found, lambda v: "Every task has a suitable access point on a validated device")


def check_marketdata_covered(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Every region traded has an active data feed."""
    regions = tuple(dict.fromkeys(inventory.profile.regions_traded))
    if not regions:
        return NotApplicable(lambda v: "No region traded")
    covered = {s.region for s in inventory.subscriptions if s.active}
    missing = [r for r in regions if r not in covered]
    # Fewer than half covered, in integers: together the gaps fail the rule.
    severity = CRITICAL if 2 * (len(regions) - len(missing)) < len(regions) else WARNING
    found = [
        _finding(severity, "subscriptions", lambda v, r=region: f"{v.You} trade{v.s} {r} with no active {r} feed", "No feed", ref=region)
        for region in missing
    ]
    return Checked(found, lambda v: f"Active feed for every region traded ({join_words(regions)})")


def check_drill_rehearsed(inventory: Inventory, as_of: date, limits: Limits) -> Checked:
    """A recent device-loss drill re-entered within the target time."""
    target = timedelta(minutes=limits.drill_target_minutes)
    target_text = duration_text(target)
    done = completed_drills(inventory, as_of)
    recent = [d for d in done if within_days(drill_day(d), as_of, limits.drill_days)]
    found: list[Finding] = [
        _finding(
            WARNING, "drills", lambda v: f"Drill of {duration_text(reentry_time(d))} is too fast to count", "Too fast",
            item=d.lost_device, ref=d.id, place=inventory.drills.index(d),
        )
        for d in _finished_drills(inventory, as_of)
        if within_days(drill_day(d), as_of, limits.drill_days) and not reentry_plausible(reentry_time(d))
    ]
    if not recent:
        if done:
            last = drill_day(done[0]).isoformat()
            found.append(
                _finding(
                    CRITICAL, "drills", lambda v: f"Last device-loss drill was on {last}, over {limits.drill_days} days ago; rehearse again", "Stale"
                )
            )
        else:
            found.append(_finding(CRITICAL, "drills", lambda v: "No device-loss drill completed yet; rehearse one", "Missing"))
        return Checked(found, lambda v: "")
    fast = next((d for d in recent if reentry_time(d) <= target), None)
    if fast is None:
        # No drill on target: the latest one is what to beat.
        latest = recent[0]
        took = duration_text(reentry_time(latest))
        found.append(
            _finding(
                WARNING, "drills", lambda v: f"Last drill took {took} (target {target_text})", "Slow",
                item=latest.lost_device, ref=latest.id, place=inventory.drills.index(latest),
            )
        )
        return Checked(found, lambda v: "")
    day, took = drill_day(fast).isoformat(), duration_text(reentry_time(fast))
    return Checked(found, lambda v: f"Drill on {day} re-entered in {took} (target {target_text})")


def check_automation_failsafe(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Active automations refresh tokens and flatten or close on auth failure."""
    automations = active_automations(inventory)
    if not automations:
        return NotApplicable(lambda v: "No active automation")
    found: list[Finding] = []
    for place, automation in enumerate(inventory.automations):
        if automation.status != ACTIVE:
            continue
        name = automation.name

        def add(severity: str, text: Text, tag: str) -> None:
            found.append(_finding(severity, "automations", text, tag, item=name, ref=automation.id, place=place))

        if not automation.token_refresh:
            add(CRITICAL, lambda v: f"Automation '{name}' has no token refresh", "No token refresh")
        if not automation.fallback_contact.strip():
            add(CRITICAL, lambda v: f"Automation '{name}' has no fallback contact", "No fallback")
        if automation.on_auth_failure == "none":
            add(CRITICAL, lambda v: f"Automation '{name}' does nothing when authentication fails", "Unattended")
        elif automation.on_auth_failure not in SAFE_AUTH_FAILURE:
            add(
                WARNING,
                lambda v: f"Automation '{name}' only halts when authentication fails; make it flatten or close positions",
                "Halt only",
            )
    if len(automations) == 1:
        only = automations[0].name
        return Checked(
            found,
            lambda v: f"Automation '{only}' refreshes tokens, has a fallback contact and closes out positions when authentication fails",
        )
    return Checked(
        found,
        lambda v: (
            f"{len(automations)} active automations refresh tokens, have a fallback "
            "contact and close out positions when authentication fails"
        ),
    )


def check_mfa_broker(inventory: Inventory, as_of: date, limits: Limits) -> Checked:
    """The broker login has a strong second factor."""
    mfa = inventory.profile.broker_mfa
    broker = inventory.profile.broker
    found: list[Finding] = []
    if mfa is None:
        found.append(_finding(CRITICAL, "profile", lambda v: f"No second factor recorded for {v.your} {broker} login", "Missing", ref="broker_mfa"))
    elif mfa == "none":
        found.append(_finding(CRITICAL, "profile", lambda v: f"{v.Your} {broker} login has no second factor", "No second factor", ref="broker_mfa"))
    elif mfa not in STRONG_MFA:
        words = BROKER_MFA_WORDS.get(mfa, mfa)
        found.append(
            _finding(
                WARNING,
                "profile",
                lambda v: f"{v.Your} {broker} login uses {words}; switch to app approval, an authenticator app or a hardware key",
                "Weak",
                ref="broker_mfa",
            )
        )
    return Checked(found, lambda v: f"{v.Your} {broker} login uses {BROKER_MFA_WORDS.get(mfa or '', mfa)}")


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def ping_slug(name: str) -> str:
    """An automation's slug for ``/ping/<ping key>/<slug>`` (INVENTORY.md):
    its name lower-cased, each run of other characters one ``-``."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-")


@dataclass(frozen=True)
class Run:
    """A bot's run: from a start to the success or failure that ended it."""

    ended_at: datetime
    took: timedelta
    outcome: str  # "success" or "failure"
    rid: object = None


def run_durations(signals: Iterable[tuple[str, datetime, object]]) -> list[Run]:
    """Runs found in ``(kind, at, rid)`` signals, newest first: a start pairs
    with the next success or failure of the same ``rid``, or, for a start
    without one, with the next success or failure at all (CHECKLIST.md
    "Heartbeats v2"). A start never ended is no run."""
    runs, open_by_rid, open_plain = [], {}, None
    for kind, at, rid in sorted(signals, key=lambda s: s[1]):
        if kind == "start":
            if rid is None:
                open_plain = at
            else:
                open_by_rid[rid] = at
        elif kind in ("success", "failure"):
            started = open_by_rid.pop(rid, None) if rid is not None else None
            if started is None:
                started, open_plain = open_plain, None
            if started is not None:
                runs.append(Run(at, at - started, kind, rid))
    return runs[::-1]


def check_automation_alive(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Every active automation checks in on its heartbeat."""
    automations = active_automations(inventory)
    if not automations:
        return NotApplicable(lambda v: "No active automation")
    found: list[Finding] = []
    for place, automation in enumerate(inventory.automations):
        if automation.status != ACTIVE:
            continue
        name, beat = automation.name, automation.heartbeat

        def add(severity: str, text: Text, tag: str) -> None:
            found.append(_finding(severity, "automations", text, tag, item=name, ref=automation.id, place=place))

        if beat == "down":
            add(CRITICAL, lambda v: f"Automation '{name}' stopped checking in: its login may have died", "Down")
        elif beat == "failing":
            add(CRITICAL, lambda v: f"Automation '{name}' reported an authentication failure", "Failing")
        elif beat is None:
            add(WARNING, lambda v: f"Automation '{name}' has no heartbeat; nobody would notice if its login died", "No heartbeat")
        elif beat == "new":
            add(WARNING, lambda v: f"Automation '{name}' has not checked in yet", "Waiting")
    return Checked(found, lambda v: f"{len(automations)} active automation{'s' if len(automations) != 1 else ''} checking in on time")


def needed_pairs(profile: Profile) -> tuple[tuple[str, str], ...]:
    """Every product traded with every region traded, in the order listed."""
    return tuple(
        (product, region)
        for product in dict.fromkeys(profile.products_traded)
        for region in dict.fromkeys(profile.regions_traded)
    )


def check_permissions_cleared(inventory: Inventory, as_of: date, limits: Limits) -> Checked | NotApplicable:
    """Every pair of product and region traded has a granted trading permission."""
    pairs = needed_pairs(inventory.profile)
    if not pairs:
        return NotApplicable(lambda v: "No products or regions traded")
    found: list[Finding] = []
    for product, region in pairs:
        held = [(place, p) for place, p in enumerate(inventory.permissions) if (p.product, p.region) == (product, region)]
        what = f"{PRODUCTS.get(product, product).lower()} in {region}"
        granted = [p for _, p in held if p.status == "granted"]
        pending = [(place, p) for place, p in held if p.status == "pending"]
        if granted:
            continue
        if pending:
            place, permission = pending[0]
            since = f" since {permission.requested_on.isoformat()}" if permission.requested_on else ""
            found.append(
                _finding(
                    WARNING, "permissions", lambda v, w=what, s=since: f"The permission for {w} is still pending{s}", "Pending",
                    item=f"{product}/{region}", ref=permission.id, place=place,
                )
            )
        else:
            ref = held[0][1].id if held else f"{product}/{region}"
            found.append(
                _finding(
                    CRITICAL, "permissions", lambda v, w=what: f"{v.You} trade{v.s} {w} with no trading permission for it", "No permission",
                    item=f"{product}/{region}" if held else None, ref=ref, place=held[0][0] if held else -1,
                )
            )
    return Checked(found, lambda v: f"A granted permission for every product and region traded ({len(pairs)} pair{'s' if len(pairs) != 1 else ''})")


@dataclass(frozen=True)
class Rule:
    """One entry of the rule catalog; ``fix_url`` is a Django URL name."""

    id: str
    title: str
    weight: int
    fix_url: str
    check: Check


CATALOG: tuple[Rule, ...] = (
    Rule("devices.trusted", "Trusted devices", 15, "devices:device_list", check_devices_trusted),
    Rule("recovery.current", "Recovery methods", 15, "devices:recovery_list", check_recovery_current),
    Rule("credentials.segmented", "Segmented credentials", 15, "devices:automation_list", check_credentials_segmented),
    Rule("credentials.rotation", "Key rotation", 10, "devices:key_list", check_credentials_rotation),
    Rule("interfaces.mapped", "Interface plan", 5, "checklist:profile", check_interfaces_mapped),
    Rule("marketdata.covered", "Market data", 10, "checklist:subscription_list", check_marketdata_covered),
    Rule("drill.rehearsed", "Device-loss drill", 15, "checklist:drill_list", check_drill_rehearsed),
    Rule("automation.failsafe", "Automation fail-safe", 10, "devices:automation_list", check_automation_failsafe),
    Rule("mfa.broker", "Broker second factor", 5, "checklist:profile", check_mfa_broker),
    Rule("permissions.cleared", "Trading permissions", 10, "checklist:permission_list", check_permissions_cleared),
    Rule("automation.alive", "Bot heartbeats", 10, "devices:automation_list", check_automation_alive),
)
CATALOG_VERSION = "v2"
RULE_IDS: tuple[str, ...] = tuple(rule.id for rule in CATALOG)
RULE_TITLES = {rule.id: rule.title for rule in CATALOG}


def risk_holds(until: date, as_of: date) -> bool:
    """An accepted risk holds through its ``until`` day, inclusive. (The
    desk's stored read model asks the same in SQL: ``until >= as_of``.)"""
    return as_of <= until


def _accepted_until(inventory: Inventory, rule_id: str, as_of: date) -> date | None:
    """The latest ``until`` of a risk accepted for the rule that still holds on ``as_of``."""
    dates = [r.until for r in inventory.accepted_risks if r.rule == rule_id and risk_holds(r.until, as_of)]
    return max(dates) if dates else None


def _result(rule: Rule, inventory: Inventory, as_of: date, limits: Limits) -> RuleResult:
    outcome = rule.check(inventory, as_of, limits)
    findings: tuple[Finding, ...] = ()
    if isinstance(outcome, NotApplicable):
        status, reason, lead_reason = NA, outcome.reason(TRADER), outcome.reason(LEAD)
    else:
        findings = _order(outcome.findings)
        if findings:
            status = FAIL if findings[0].severity == CRITICAL else PARTIAL
            reason, lead_reason = reason_of(findings), reason_of(findings, LEAD)
        else:
            status, reason, lead_reason = PASS, outcome.pass_reason(TRADER), outcome.pass_reason(LEAD)
    halves = {PASS: 2 * rule.weight, PARTIAL: rule.weight}.get(status, 0)
    return RuleResult(
        id=rule.id,
        title=rule.title,
        weight=rule.weight,
        status=status,
        points=halves / 2,
        reason=reason,
        fix_url=rule.fix_url,
        accepted_until=_accepted_until(inventory, rule.id, as_of),
        findings=findings,
        lead_reason=lead_reason,
    )


def evaluate(inventory: Inventory, as_of: date, limits: Limits = Limits()) -> Report:
    """Score a snapshot on ``as_of`` against every rule of the catalog."""
    results = tuple(_result(rule, inventory, as_of, limits) for rule in CATALOG)
    counted = [r for r in results if r.status != NA]
    # Points are whole or half weights: count halves to stay exact. Several
    # rules are never na, so the total weight is never zero.
    earned_halves = sum(int(2 * r.points) for r in counted)
    score = round_half_up(100 * earned_halves, 2 * sum(r.weight for r in counted))
    return Report(as_of=as_of, score=score, level=level_for(score), results=results)


# --------------------------------------------------------------------------
# Dates coming due
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DueItem:
    """Something the trader must do by a date; ``fix_url`` is a Django URL name."""

    due_on: date
    kind: str
    label: str
    what: str
    fix_url: str
    # Never done at all (never validated, verified or rehearsed): due from the start.
    never: bool = False

    def overdue(self, as_of: date) -> bool:
        """True once the due day has passed (an item due today is not overdue)."""
        return self.due_on < as_of


def upcoming_dates(
    inventory: Inventory, as_of: date, limits: Limits = Limits()
) -> tuple[DueItem, ...]:
    """Every due date, past and future, sorted by date then label (for a calendar feed).

    Anything never done (a device never validated, a method never verified, no
    drill ever) is due on ``as_of``.
    """
    items: list[DueItem] = []
    for key in active_keys(inventory):
        if key.expires_on is not None:
            items.append(
                DueItem(
                    key.expires_on,
                    "key_expiry",
                    key.label,
                    f"API key '{key.label}' expires",
                    "devices:key_list",
                )
            )
        items.append(
            DueItem(
                add_days(key.age_from, limits.rotation_days),
                "key_rotation",
                key.label,
                f"Rotate API key '{key.label}'",
                "devices:key_list",
            )
        )
    for method in inventory.recovery_methods:
        noun = method.kind.replace("_", " ")
        if method.last_verified_on is None:
            items.append(
                DueItem(
                    as_of,
                    "recovery_verify",
                    method.label,
                    f"Verify recovery {noun} '{method.label}' (never verified)",
                    "devices:recovery_list",
                    never=True,
                )
            )
        else:
            items.append(
                DueItem(
                    add_days(method.last_verified_on, limits.recovery_days),
                    "recovery_verify",
                    method.label,
                    f"Re-verify recovery {noun} '{method.label}'",
                    "devices:recovery_list",
                )
            )
    for device in inventory.devices:
        if device.status != ACTIVE:
            continue
        if device.validated_on is None:
            items.append(
                DueItem(
                    as_of,
                    "device_validate",
                    device.name,
                    f"Validate device '{device.name}' (never validated)",
                    "devices:device_list",
                    never=True,
                )
            )
        else:
            items.append(
                DueItem(
                    add_days(device.validated_on, limits.device_days),
                    "device_validate",
                    device.name,
                    f"Re-validate device '{device.name}'",
                    "devices:device_list",
                )
            )
    for permission in inventory.permissions:
        if permission.status == "pending" and permission.requested_on is not None:
            what = f"{PRODUCTS.get(permission.product, permission.product).lower()} in {permission.region}"
            items.append(
                DueItem(
                    permission.requested_on + timedelta(days=PERMISSION_PENDING_DAYS),
                    "permission_pending",
                    f"{permission.product}/{permission.region}",
                    f"Ask the broker about the pending permission for {what}",
                    "checklist:permission_list",
                )
            )
    done = completed_drills(inventory, as_of)
    if done:
        items.append(
            DueItem(
                add_days(drill_day(done[0]), limits.drill_days),
                "drill",
                "Device-loss drill",
                "Rehearse a device loss again",
                "checklist:drill_list",
            )
        )
    else:
        items.append(
            DueItem(
                as_of,
                "drill",
                "Device-loss drill",
                "Run your first device-loss drill",
                "checklist:drill_list",
                never=True,
            )
        )
    return tuple(sorted(items, key=lambda i: (i.due_on, i.label)))


# A due date as stored with a trader's current score: (due day, kind), the
# day None for an item never done (due on whatever day is asked about, so
# never overdue; ``upcoming_dates`` dates it on the day it is asked).
StoredDue = tuple[date | None, str]


def due_stored(items: Iterable[DueItem]) -> tuple[StoredDue, ...]:
    """Every due date of a trader, in the form kept with the current score."""
    return tuple((None if item.never else item.due_on, item.kind) for item in items)


def due_tally(stored: Iterable[StoredDue], as_of: date, window_days: int = DUE_SOON_DAYS) -> tuple[int, int, tuple[str, ...]]:
    """(overdue, due soon, kinds overdue) on ``as_of`` from stored due dates,
    counted as :func:`coming_due` counts the items themselves."""
    horizon = as_of + timedelta(days=window_days)
    overdue = due_soon = 0
    kinds = set()
    for day, kind in stored:
        day = as_of if day is None else day
        if day < as_of:
            overdue += 1
            kinds.add(kind)
        elif day <= horizon:
            due_soon += 1
    return overdue, due_soon, tuple(sorted(kinds))


def coming_due(
    inventory: Inventory, as_of: date, limits: Limits = Limits(), window_days: int = DUE_SOON_DAYS
) -> tuple[DueItem, ...]:
    """Items overdue or due within the next ``window_days`` days, by date then label."""
    horizon = add_days(as_of, window_days)
    return tuple(i for i in upcoming_dates(inventory, as_of, limits) if i.due_on <= horizon)


def merge_due(items) -> tuple[DueItem, ...]:
    """One line per thing to do: a key's expiry and its rotation are one job
    (rotating it renews both), so only the earlier of the two stays."""
    kept: dict[tuple[str, str], DueItem] = {}
    for item in items:
        key = ("key" if item.kind in ("key_expiry", "key_rotation") else item.kind, item.label)
        if key not in kept or item.due_on < kept[key].due_on:
            kept[key] = item
    return tuple(sorted(kept.values(), key=lambda i: (i.due_on, i.label)))
