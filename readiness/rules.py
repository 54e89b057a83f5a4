"""Readiness rules (rule catalog v1): data plus pure functions.

This module imports no Django on purpose. The views build one immutable
:class:`Inventory` snapshot with a bounded number of queries, and everything
here scores that snapshot, so the rules can be tested without a database.

The specification is ``CHECKLIST.md`` (rules, weights, terms) and
``INVENTORY.md`` (field names, allowed values, the ``--json`` report shape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

PASS = "pass"
PARTIAL = "partial"
FAIL = "fail"
NA = "na"

READY = "ready"
AT_RISK = "at_risk"
NOT_READY = "not_ready"

ACTIVE = "active"

TASKS: tuple[str, ...] = ("complex_orders", "transfers_statements", "alerts_light_execution")

SUITABLE_ACCESS_POINTS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "complex_orders": frozenset({"tws", "desktop"}),
        "transfers_statements": frozenset({"client_portal"}),
        "alerts_light_execution": frozenset({"mobile"}),
    }
)

TASK_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "complex_orders": "complex orders and spreads",
        "transfers_statements": "cash transfers and statements",
        "alerts_light_execution": "alerts and light execution",
    }
)

ACCESS_POINT_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "tws": "Trader Workstation",
        "desktop": "IBKR Desktop",
        "client_portal": "Client Portal",
        "mobile": "IBKR Mobile",
        "api": "the API",
    }
)

BACKUP_FACTORS = frozenset({"authenticator", "backup_codes", "hardware_key", "secondary_device"})
MONEY_SCOPES = frozenset({"transfer", "withdraw"})
STRONG_MFA = frozenset({"hardware_key", "ib_key", "authenticator_app"})
SAFE_AUTH_FAILURE = frozenset({"flatten", "close"})

MFA_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "hardware_key": "a hardware key",
        "ib_key": "IB Key",
        "authenticator_app": "an authenticator app",
        "sms": "SMS codes",
    }
)


# --------------------------------------------------------------------------
# The snapshot
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


@dataclass(frozen=True)
class RecoveryMethod:
    """A way back into the account (phone, email, backup factor)."""

    kind: str
    label: str
    last_verified_on: date | None


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


@dataclass(frozen=True)
class Subscription:
    """A market data feed for one region."""

    region: str
    feed: str
    active: bool


@dataclass(frozen=True)
class Drill:
    """A rehearsed device loss; timestamps are timezone-aware."""

    started_at: datetime
    finished_at: datetime | None
    lost_device: str
    completed: bool


@dataclass(frozen=True)
class AcceptedRisk:
    """A rule the desk lead has knowingly accepted until a date."""

    rule: str
    reason: str
    until: date


@dataclass(frozen=True)
class Profile:
    """Broker-level facts about the trader."""

    broker: str = "IBKR"
    broker_mfa: str | None = None
    regions_traded: tuple[str, ...] = ()
    interface_plan: tuple[tuple[str, str | None], ...] = ()

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

    @property
    def points_lost(self) -> float:
        """Weight minus points; what fixing the rule would earn back."""
        return self.weight - self.points


def level_for(score: int) -> str:
    """The readiness level for a whole-number score."""
    if score >= 85:
        return READY
    if score >= 60:
        return AT_RISK
    return NOT_READY


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

    def as_dict(self, user: str) -> dict[str, object]:
        """The ``readiness --json`` object of INVENTORY.md, keys in its order."""
        return {
            "user": user,
            "as_of": self.as_of.isoformat(),
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
                }
                for r in self.results
            ],
        }


# --------------------------------------------------------------------------
# Shared terms
# --------------------------------------------------------------------------


def within_days(day: date | None, as_of: date, days: int) -> bool:
    """True if ``day`` is not after ``as_of`` and at most ``days`` days before it."""
    if day is None:
        return False
    return day <= as_of and (as_of - day).days <= days


def qualifying_devices(inventory: Inventory, as_of: date, limits: Limits) -> tuple[Device, ...]:
    """Active devices validated within the device limit."""
    return tuple(
        d
        for d in inventory.devices
        if d.status == ACTIVE and within_days(d.validated_on, as_of, limits.device_days)
    )


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


def completed_drills(inventory: Inventory, as_of: date) -> tuple[Drill, ...]:
    """Completed drills whose day is not after ``as_of``, most recent first."""
    drills = [
        d
        for d in inventory.drills
        if d.completed and d.finished_at is not None and drill_day(d) <= as_of
    ]
    return tuple(sorted(drills, key=_finished_at, reverse=True))


def _minutes(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    if minutes and seconds:
        return f"{minutes} min {seconds} s"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def _join(words: Iterable[str]) -> str:
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _kind_name(kind: str) -> str:
    return "phone" if kind == "mobile" else kind


# --------------------------------------------------------------------------
# The rules; each returns (status, reason) and checks na, fail, pass, partial.
# --------------------------------------------------------------------------

Check = Callable[[Inventory, date, Limits], tuple[str, str]]


def check_devices_trusted(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """At least two validated devices, a phone and a desktop or laptop among them."""
    for device in inventory.devices:
        if device.status == "lost":
            return FAIL, f"Device '{device.name}' is reported lost; revoke it at the broker"
    qualifying = qualifying_devices(inventory, as_of, limits)
    if not qualifying:
        return FAIL, (
            f"No active device validated in the last {limits.device_days} days; "
            "validate your workstation and your phone"
        )
    kinds = {d.kind for d in qualifying}
    has_mobile = "mobile" in kinds
    has_computer = bool(kinds & {"desktop", "laptop"})
    saved = [d for d in inventory.devices if d.status == ACTIVE and d.browser_saved_password]
    if len(qualifying) >= 2 and has_mobile and has_computer and not saved:
        kind_names = sorted({_kind_name(k) for k in kinds}, key=lambda k: (k != "phone", k))
        return PASS, f"{len(qualifying)} validated devices, {_join(kind_names)}"
    if saved:
        return PARTIAL, (
            f"Device '{saved[0].name}' keeps the broker password in the browser; "
            "remove it and use a password manager"
        )
    if len(qualifying) == 1:
        second = "a desktop or laptop" if has_mobile else "a phone"
        return PARTIAL, f"Only 1 validated device; add {second} as a second"
    if not has_mobile:
        return PARTIAL, f"None of your {len(qualifying)} validated devices is a phone; validate one"
    return PARTIAL, (
        f"None of your {len(qualifying)} validated devices is a desktop or laptop; validate one"
    )


def check_recovery_current(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """A fresh phone and email plus at least one backup factor."""
    methods = inventory.recovery_methods
    phones = [m for m in methods if m.kind == "phone"]
    emails = [m for m in methods if m.kind == "email"]
    if not phones and not emails:
        return FAIL, "No recovery phone or email; add both"
    if not phones:
        return FAIL, "No recovery phone; add one"
    if not emails:
        return FAIL, "No recovery email; add one"

    def fresh(group: list[RecoveryMethod]) -> bool:
        return any(within_days(m.last_verified_on, as_of, limits.recovery_days) for m in group)

    backups = sorted({m.kind for m in methods if m.kind in BACKUP_FACTORS})
    if fresh(phones) and fresh(emails) and backups:
        backup_names = _join(b.replace("_", " ") for b in backups)
        return PASS, (
            f"Phone and email verified within {limits.recovery_days} days, "
            f"backed up by {backup_names}"
        )
    for noun, group in (("phone", phones), ("email", emails)):
        if not fresh(group):
            verified = [
                m for m in group if m.last_verified_on is not None and m.last_verified_on <= as_of
            ]
            if not verified:
                return PARTIAL, f"Recovery {noun} '{group[0].label}' has never been verified"
            # Name the method closest to being current: the one verified last.
            latest = max(verified, key=lambda m: m.last_verified_on or date.min)
            return PARTIAL, (
                f"Recovery {noun} '{latest.label}' was last verified on "
                f"{latest.last_verified_on}, over {limits.recovery_days} days ago"
            )
    return PARTIAL, (
        "No backup factor; add an authenticator, backup codes, a hardware key or a secondary device"
    )


def check_credentials_segmented(
    inventory: Inventory, as_of: date, limits: Limits
) -> tuple[str, str]:
    """Every active automation has its own service-account key without money movement."""
    automations = active_automations(inventory)
    if not automations:
        return NA, "No active automation"
    for automation in automations:
        key = key_for(inventory, automation)
        if key is None:
            if automation.api_key is None:
                return FAIL, f"Automation '{automation.name}' runs on your human login"
            return FAIL, (
                f"Automation '{automation.name}' names API key '{automation.api_key}', "
                "which does not exist; it counts as running on your human login"
            )
        if key.status != ACTIVE:
            return FAIL, f"Automation '{automation.name}' uses revoked API key '{key.label}'"
        if not key.service_account:
            return FAIL, (
                f"Automation '{automation.name}' uses API key '{key.label}', "
                "which is not held by a service account"
            )
    users: dict[str, list[str]] = {}
    for automation in automations:
        users.setdefault(automation.api_key or "", []).append(automation.name)
    shared = [(label, names) for label, names in users.items() if len(names) > 1]
    money = [
        key
        for key in (key_for(inventory, a) for a in automations)
        if key is not None and key.scopes & MONEY_SCOPES
    ]
    if not shared and not money:
        if len(automations) == 1:
            return PASS, (
                f"Automation '{automations[0].name}' has its own service-account key "
                "with no money-movement scope"
            )
        return PASS, (
            f"{len(automations)} active automations, each with its own "
            "service-account key and no money-movement scope"
        )
    if money:
        key = money[0]
        scopes = _join(sorted(key.scopes & MONEY_SCOPES))
        return PARTIAL, f"API key '{key.label}' has the {scopes} scope; remove it from the key"
    label, names = shared[0]
    quoted = _join(f"'{n}'" for n in names)
    return PARTIAL, f"API key '{label}' is shared by automations {quoted}; give each its own key"


def check_credentials_rotation(
    inventory: Inventory, as_of: date, limits: Limits
) -> tuple[str, str]:
    """Every active key has an expiry and was rotated within the limit."""
    keys = active_keys(inventory)
    if not keys:
        return NA, "No active API key"
    for key in keys:
        if key.expires_on is not None and is_expired(key, as_of):
            return FAIL, f"API key '{key.label}' expired on {key.expires_on.isoformat()}"
    for key in keys:
        age = key_age_days(key, as_of)
        if key.expires_on is None and age > limits.rotation_days:
            return FAIL, (
                f"API key '{key.label}' has no expiry and is {age} days old "
                f"(rotate every {limits.rotation_days} days)"
            )
    stale = [k for k in keys if key_age_days(k, as_of) > limits.rotation_days]
    no_expiry = [k for k in keys if k.expires_on is None]
    if not stale and not no_expiry:
        if len(keys) == 1:
            return PASS, (
                f"API key '{keys[0].label}' expires on {keys[0].expires_on} and was "
                f"rotated within {limits.rotation_days} days"
            )
        return PASS, (
            f"{len(keys)} active API keys, all with an expiry and rotated "
            f"within {limits.rotation_days} days"
        )
    if stale:
        key = stale[0]
        return PARTIAL, (
            f"API key '{key.label}' is {key_age_days(key, as_of)} days old "
            f"(rotate every {limits.rotation_days} days)"
        )
    return PARTIAL, f"API key '{no_expiry[0].label}' has no expiry date; set one"


def check_interfaces_mapped(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """Every task has a suitable access point that a validated device offers."""
    plan = inventory.profile.plan()
    for task in TASKS:
        if not plan.get(task):
            return FAIL, f"No access point chosen for {TASK_NAMES[task]}"
    platforms: set[str] = set()
    for device in qualifying_devices(inventory, as_of, limits):
        platforms |= device.platforms
    for task in TASKS:
        point = plan[task] or ""
        if point not in SUITABLE_ACCESS_POINTS[task]:
            suitable = _join(sorted(ACCESS_POINT_NAMES[p] for p in SUITABLE_ACCESS_POINTS[task]))
            return PARTIAL, (
                f"{ACCESS_POINT_NAMES.get(point, point)} does not suit "
                f"{TASK_NAMES[task]}; use {suitable}"
            )
    for task in TASKS:
        point = plan[task] or ""
        if point != "api" and point not in platforms:
            return PARTIAL, (
                f"{ACCESS_POINT_NAMES.get(point, point)}, planned for {TASK_NAMES[task]}, "
                "is on no validated device"
            )
    return PASS, "Every task has a suitable access point on a validated device"


def check_marketdata_covered(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """Every region traded has an active data feed."""
    regions = tuple(dict.fromkeys(inventory.profile.regions_traded))
    if not regions:
        return NA, "No region traded"
    covered = {s.region for s in inventory.subscriptions if s.active}
    missing = [r for r in regions if r not in covered]
    if not missing:
        # Cannot fail: every region is covered.
        return PASS, f"Active feed for every region traded ({_join(regions)})"
    if len(missing) == 1:
        reason = f"You trade {missing[0]} with no active {missing[0]} feed"
    else:
        reason = (
            f"You trade {_join(missing)} with no active feed for them "
            f"({len(regions) - len(missing)} of {len(regions)} regions covered)"
        )
    # Fewer than half covered, in integers.
    if 2 * (len(regions) - len(missing)) < len(regions):
        return FAIL, reason
    return PARTIAL, reason


def check_drill_rehearsed(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """A recent device-loss drill re-entered within the target time."""
    target = timedelta(minutes=limits.drill_target_minutes)
    done = completed_drills(inventory, as_of)
    recent = [d for d in done if within_days(drill_day(d), as_of, limits.drill_days)]
    if not recent:
        if done:
            return FAIL, (
                f"Last device-loss drill was on {drill_day(done[0]).isoformat()}, "
                f"over {limits.drill_days} days ago; rehearse again"
            )
        return FAIL, "No device-loss drill completed yet; rehearse one"
    target_text = _minutes(target)
    for drill in recent:
        took = reentry_time(drill)
        if took <= target:
            return PASS, (
                f"Drill on {drill_day(drill).isoformat()} re-entered in "
                f"{_minutes(took)} (target {target_text})"
            )
    return PARTIAL, f"Last drill took {_minutes(reentry_time(recent[0]))} (target {target_text})"


def check_automation_failsafe(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """Active automations refresh tokens and flatten or close on auth failure."""
    automations = active_automations(inventory)
    if not automations:
        return NA, "No active automation"
    for automation in automations:
        if not automation.token_refresh:
            return FAIL, f"Automation '{automation.name}' has no token refresh"
        if not automation.fallback_contact.strip():
            return FAIL, f"Automation '{automation.name}' has no fallback contact"
        if automation.on_auth_failure == "none":
            return FAIL, f"Automation '{automation.name}' does nothing when authentication fails"
    unsafe = [a for a in automations if a.on_auth_failure not in SAFE_AUTH_FAILURE]
    if not unsafe:
        if len(automations) == 1:
            return PASS, (
                f"Automation '{automations[0].name}' refreshes tokens, has a fallback "
                "contact and closes out positions when authentication fails"
            )
        return PASS, (
            f"{len(automations)} active automations refresh tokens, have a fallback "
            "contact and close out positions when authentication fails"
        )
    return PARTIAL, (
        f"Automation '{unsafe[0].name}' only halts when authentication fails; "
        "make it flatten or close positions"
    )


def check_mfa_broker(inventory: Inventory, as_of: date, limits: Limits) -> tuple[str, str]:
    """The broker login has a strong second factor."""
    mfa = inventory.profile.broker_mfa
    broker = inventory.profile.broker
    if mfa is None:
        return FAIL, f"No second factor recorded for your {broker} login"
    if mfa == "none":
        return FAIL, f"Your {broker} login has no second factor"
    if mfa in STRONG_MFA:
        return PASS, f"Your {broker} login uses {MFA_NAMES[mfa]}"
    return PARTIAL, (
        f"Your {broker} login uses {MFA_NAMES.get(mfa, mfa)}; switch to IB Key, "
        "an authenticator app or a hardware key"
    )


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
    Rule(
        "recovery.current", "Recovery methods", 15, "devices:recovery_list", check_recovery_current
    ),
    Rule(
        "credentials.segmented",
        "Segmented credentials",
        15,
        "devices:automation_list",
        check_credentials_segmented,
    ),
    Rule(
        "credentials.rotation", "Key rotation", 10, "devices:key_list", check_credentials_rotation
    ),
    Rule("interfaces.mapped", "Interface plan", 5, "checklist:profile", check_interfaces_mapped),
    Rule(
        "marketdata.covered",
        "Market data",
        10,
        "checklist:subscription_list",
        check_marketdata_covered,
    ),
    Rule("drill.rehearsed", "Device-loss drill", 15, "checklist:drill_list", check_drill_rehearsed),
    Rule(
        "automation.failsafe",
        "Automation fail-safe",
        10,
        "devices:automation_list",
        check_automation_failsafe,
    ),
    Rule("mfa.broker", "Broker second factor", 5, "checklist:profile", check_mfa_broker),
)


def _accepted_until(inventory: Inventory, rule_id: str, as_of: date) -> date | None:
    """The latest ``until`` of a risk accepted for the rule that still holds on ``as_of``."""
    dates = [r.until for r in inventory.accepted_risks if r.rule == rule_id and as_of <= r.until]
    return max(dates) if dates else None


def evaluate(inventory: Inventory, as_of: date, limits: Limits = Limits()) -> Report:
    """Score a snapshot on ``as_of`` against every rule of the catalog."""
    results: list[RuleResult] = []
    earned_halves = 0  # points are whole or half weights; count halves to stay exact
    total_weight = 0
    for rule in CATALOG:
        status, reason = rule.check(inventory, as_of, limits)
        if status == PASS:
            halves = 2 * rule.weight
        elif status == PARTIAL:
            halves = rule.weight
        else:
            halves = 0
        if status != NA:
            earned_halves += halves
            total_weight += rule.weight
        results.append(
            RuleResult(
                id=rule.id,
                title=rule.title,
                weight=rule.weight,
                status=status,
                points=halves / 2,
                reason=reason,
                fix_url=rule.fix_url,
                accepted_until=_accepted_until(inventory, rule.id, as_of),
            )
        )
    # Round half up: floor(100 * earned / total + 1/2), in integers. Several rules
    # are never na, so total_weight is never zero.
    score = (100 * earned_halves + total_weight) // (2 * total_weight)
    return Report(as_of=as_of, score=score, level=level_for(score), results=tuple(results))


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
                key.age_from + timedelta(days=limits.rotation_days),
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
                )
            )
        else:
            items.append(
                DueItem(
                    method.last_verified_on + timedelta(days=limits.recovery_days),
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
                )
            )
        else:
            items.append(
                DueItem(
                    device.validated_on + timedelta(days=limits.device_days),
                    "device_validate",
                    device.name,
                    f"Re-validate device '{device.name}'",
                    "devices:device_list",
                )
            )
    done = completed_drills(inventory, as_of)
    if done:
        items.append(
            DueItem(
                drill_day(done[0]) + timedelta(days=limits.drill_days),
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
            )
        )
    return tuple(sorted(items, key=lambda i: (i.due_on, i.label)))


def coming_due(
    inventory: Inventory, as_of: date, limits: Limits = Limits(), window_days: int = 14
) -> tuple[DueItem, ...]:
    """Items overdue or due within the next ``window_days`` days, by date then label."""
    horizon = as_of + timedelta(days=window_days)
    return tuple(i for i in upcoming_dates(inventory, as_of, limits) if i.due_on <= horizon)
