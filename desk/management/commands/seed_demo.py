"""Seed a demo desk: a lead and twelve traders whose inventories cover every
rule status, 90 days of score history and a few drills.

Prints each login with a fresh password and one backup code. Running it again
resets the demo accounts (new passwords and codes, same inventories). Refuses
to run with DEBUG off unless --force is given: it sets known passwords.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import django_otp
from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.base import GatecheckCommand
from accounts.models import Desk, User
from accounts.services import backup_codes_generate
from checklist.models import ReadinessSnapshot
from checklist.services import snapshot_refresh
from desk.models import ReminderLog
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, Heartbeat, Permission, RecoveryMethod, Subscription, TradingProfile, TrustedDevice
from devices.selectors import inventories_for, limits
from readiness import rules

DESK_NAME = "Demo futures desk"
LEAD = ("lena", "Lena", "Fischer")
HISTORY_DAYS = 90


@dataclass
class Spec:
    """One demo trader's inventory, in days relative to today."""

    username: str
    first: str
    last: str
    note: str
    devices: list[dict] = field(default_factory=list)
    recovery: list[dict] = field(default_factory=list)
    keys: list[dict] = field(default_factory=list)
    automations: list[dict] = field(default_factory=list)
    subscriptions: list[tuple[str, bool]] = field(default_factory=list)
    drills: list[tuple[int, int | None]] = field(default_factory=list)  # (days ago, minutes; None = abandoned)
    regions: list[str] = field(default_factory=list)
    plan: tuple[str | None, str | None, str | None] = ("tws", "client_portal", "mobile")
    broker_mfa: str | None = "ib_key"
    accepted: list[tuple[str, str, int]] = field(default_factory=list)  # (rule, reason, days from now)
    products: list[str] = field(default_factory=lambda: ["stocks"])
    # (product, region, status, days ago requested); None: every pair traded is granted.
    permissions: list[tuple[str, str, str, int | None]] | None = None


def _desk_devices(validated: int = 30, phone: bool = True, **extra) -> list[dict]:
    devices = [{"name": "Office workstation", "kind": "desktop", "platforms": ["tws", "client_portal"], "validated": validated, **extra}]
    if phone:
        devices.append({"name": "Phone", "kind": "mobile", "platforms": ["mobile"], "validated": validated})
    return devices


def _recovery(phone_days: int | None = 20, email_days: int | None = 20, backup: bool = True, email: bool = True, tail: str = "0142") -> list[dict]:
    # Full numbers and addresses on purpose: the lead's pages show them masked.
    methods = [{"kind": "phone", "label": f"+1 555 010 {tail}", "verified": phone_days}]
    if email:
        methods.append({"kind": "email", "label": f"home-{tail}@example.net", "verified": email_days})
    if backup:
        methods.append({"kind": "backup_codes", "label": "Printed recovery card", "verified": 60})
    return methods


def _bot(name: str = "ES spread bot", key: str | None = "algo-futures", refresh: bool = True, on_failure: str = "flatten", beat: str | None = "up") -> dict:
    # beat: "up" (checked in a minute ago), "down" (two hours ago), "failing" (its fail URL), or None (no heartbeat)
    return {"name": name, "key": key, "refresh": refresh, "contact": "desk lead phone", "on_failure": on_failure, "beat": beat}


def _key(label: str = "algo-futures", age: int = 20, expires_in: int | None = 60, scopes=("read", "trade"), service: bool = True) -> dict:
    return {"label": label, "age": age, "expires_in": expires_in, "scopes": list(scopes), "service": service}


# Twelve traders; comments name the statuses each one shows.
SPECS: list[Spec] = [
    # Every rule passes, automation included.
    Spec("ava", "Ava", "Chen", "ready, every rule passes", _desk_devices(), _recovery(), [_key()], [_bot()],
         [("US", True), ("HK", True)], [(12, 18), (70, 25)], ["US", "HK"]),
    # Ready without automation: both automation rules and rotation are n/a.
    Spec("ben", "Ben", "Okafor", "ready, no automation (n/a)", _desk_devices(), _recovery(tail="7781"), [], [],
         [("US", True)], [(30, 22)], ["US"], broker_mfa="hardware_key"),
    # Partials: one device, stale phone, SMS at the broker.
    Spec("carla", "Carla", "Mendes", "one device, stale phone, SMS", _desk_devices(phone=False), _recovery(phone_days=200, tail="3310"), [], [],
         [("EU", True)], [(40, 24)], ["EU"], plan=("tws", "client_portal", "mobile"), broker_mfa="sms"),
    # Fails: a lost phone, no recovery e-mail, no broker MFA.
    Spec("dev", "Dev", "Patel", "lost phone, no e-mail, no broker MFA",
         [_desk_devices()[0], {"name": "Old phone", "kind": "mobile", "platforms": ["mobile"], "validated": 100, "status": "lost"}],
         _recovery(email=False, tail="9002"), [], [], [("US", True)], [(20, 15)], ["US"], broker_mfa="none"),
    # Automation fails: runs on the human login, no token refresh, expired key.
    Spec("elena", "Elena", "Rossi", "bot on human login, expired key", _desk_devices(), _recovery(tail="4420"),
         [_key(label="reporting", age=100, expires_in=-3, scopes=("read",))], [_bot(key=None, refresh=False, beat=None)],
         [("US", True)], [(25, 20)], ["US"]),
    # Automation partials: money-movement scope, halt only, key past rotation.
    Spec("farid", "Farid", "Haddad", "money scope, halt only, stale key", _desk_devices(), _recovery(tail="5567"),
         [_key(age=120, expires_in=200, scopes=("read", "trade", "transfer"))], [_bot(on_failure="halt", beat="down")],
         [("US", True), ("UK", True)], [(15, 28)], ["US", "UK"], products=["stocks", "options"],
         permissions=[("stocks", "US", "granted", None), ("stocks", "UK", "granted", None), ("options", "US", "granted", None),
                      ("options", "UK", "pending", 4)]),
    # Partials: unsuitable access point, half the regions covered, slow drill.
    Spec("grace", "Grace", "Kim", "unsuitable plan, half the data, slow drill", _desk_devices(), _recovery(tail="8891"), [], [],
         [("US", True), ("JP", False)], [(10, 55)], ["US", "JP"], plan=("client_portal", "client_portal", "mobile")),
    # Fails: no access point for a task, no feed for any region, no drill.
    Spec("hiro", "Hiro", "Tanaka", "no plan, no data, never drilled", _desk_devices(), _recovery(tail="1204"), [], [],
         [("US", False)], [], ["JP", "HK"], plan=("tws", None, "mobile"), products=["stocks", "options"],
         permissions=[("stocks", "JP", "granted", None), ("stocks", "HK", "granted", None), ("options", "JP", "granted", None)]),
    # No region traded (n/a); a failing drill the lead accepted as a risk.
    Spec("ines", "Ines", "Duarte", "accepted risk on the drill", _desk_devices(), _recovery(tail="6613"), [], [],
         [], [(130, 20)], [], accepted=[("drill.rehearsed", "On leave until next month; drill booked for her return", 30)]),
    # Overdue: phone and e-mail went stale a few days ago (dropped a level).
    Spec("jonas", "Jonas", "Berg", "recovery went stale this week, accepted data gap",
         _desk_devices(validated=200), _recovery(phone_days=184, email_days=183, tail="2277"), [_key(age=40, expires_in=30)], [_bot()],
         [("US", True), ("EU", True), ("CH", False)], [(50, 26)], ["US", "EU", "CH"],
         accepted=[("marketdata.covered", "CH desk closes at quarter end", 45)]),
    # Due soon: key expires in five days; a browser-saved password.
    Spec("kemi", "Kemi", "Adeyemi", "saved browser password, key expiring soon", _desk_devices(browser_saved_password=True), _recovery(tail="3348"),
         [_key(age=80, expires_in=5)], [_bot(on_failure="close", beat="failing")], [("US", True)], [(60, 29)], ["US"], broker_mfa="authenticator_app"),
    # Just joined: almost nothing recorded.
    Spec("liam", "Liam", "O'Neill", "new, almost nothing recorded",
         [{"name": "Laptop", "kind": "laptop", "platforms": ["tws"], "validated": None}], [], [], [], [], [], ["US"],
         plan=(None, None, None), broker_mfa=None),
]


class Command(GatecheckCommand):
    help = "Create (or reset) a demo desk with a lead and twelve traders. Development only."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even when DEBUG is off (never on a real deployment).")

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo sets known passwords, so it refuses to run with DEBUG off. Use --force on a throwaway database.")
        today = timezone.localdate()
        # The audit rows are written as always; their log lines would only
        # bury the logins this command exists to print.
        with _quiet("gatecheck.audit"), transaction.atomic():
            desk, _ = Desk.objects.get_or_create(name=DESK_NAME)
            lead, lead_password = _person(*LEAD)
            desk.leads.add(lead)
            logins = [("lead", lead, lead_password, "desk lead")]
            for spec in SPECS:
                trader, password = _person(spec.username, spec.first, spec.last)
                _inventory(trader, spec, today)
                desk.members.add(trader)
                logins.append(("trader", trader, password, spec.note))
            _history([user for role, user, *_ in logins if role == "trader"], today)
        with _quiet("gatecheck.audit"):
            codes = {user.pk: backup_codes_generate(user=user)[0] for _, user, _, _ in logins}

        self.stdout.write(self.style.SUCCESS(f"Seeded '{DESK_NAME}': 1 lead, {len(SPECS)} traders, {HISTORY_DAYS} days of scores."))
        self.stdout.write("Sign in with the password, enter the backup code as the second factor, then set up an authenticator app when asked.\n")
        self.stdout.write(f"{'login':<8} {'password':<22} {'backup code':<21} notes")
        for _role, user, password, note in logins:
            self.stdout.write(f"{user.username:<8} {password:<22} {codes[user.pk]:<21} {note}")
        self.stdout.write("\nThe lead's desk is at /desk/ and the admin panel at /admin/. Run it again for fresh passwords and codes.")


@contextmanager
def _quiet(name: str):
    """Hold back the INFO lines of logger ``name`` (warnings still show)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _person(username: str, first: str, last: str) -> tuple[User, str]:
    """Create or reset a demo account: a fresh password and no factor yet."""
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    password = f"demo-{secrets.token_urlsafe(12)}"
    user.first_name, user.last_name, user.is_active = first, last, True
    # Demo addresses count as confirmed, so the demo's notices and reminders flow.
    user.verified_email = user.email
    user.set_password(password)
    user.save()
    for device in django_otp.devices_for_user(user, confirmed=None):
        device.delete()
    return user, password


def _day(today: date, days_ago: int | None) -> date | None:
    return None if days_ago is None else today - timedelta(days=days_ago)


def _inventory(user: User, spec: Spec, today: date) -> None:
    """Replace the trader's inventory with the spec's."""
    Automation.objects.filter(owner=user).delete()
    for model in (TrustedDevice, RecoveryMethod, ApiKey, Subscription, Drill, AcceptedRisk, TradingProfile, Permission):
        model.objects.filter(owner=user).delete()
    ReadinessSnapshot.objects.filter(user=user).delete()
    ReminderLog.objects.filter(recipient=user).delete()

    for d in spec.devices:
        TrustedDevice.objects.create(
            owner=user, name=d["name"], kind=d["kind"], platforms=d["platforms"], validated_on=_day(today, d["validated"]),
            status=d.get("status", "active"), browser_saved_password=d.get("browser_saved_password", False),
        )
    for m in spec.recovery:
        RecoveryMethod.objects.create(owner=user, kind=m["kind"], label=m["label"], last_verified_on=_day(today, m["verified"]))
    keys = {}
    for k in spec.keys:
        keys[k["label"]] = ApiKey.objects.create(
            owner=user, label=k["label"], scopes=k["scopes"], service_account=k["service"], created_on=today - timedelta(days=k["age"]),
            expires_on=today + timedelta(days=k["expires_in"]) if k["expires_in"] is not None else None, fingerprint="7f3a",
            ip_restricted=True,
        )
    for a in spec.automations:
        bot = Automation.objects.create(
            owner=user, name=a["name"], api_key=keys.get(a["key"]) if a["key"] else None, token_refresh=a["refresh"],
            fallback_contact=a["contact"], on_auth_failure=a["on_failure"],
        )
        if a["beat"]:
            # Observations come only from pings; the demo writes what pings would have left.
            last_at = timezone.now() - timedelta(minutes=120 if a["beat"] == "down" else 1)
            kind = "failure" if a["beat"] == "failing" else "success"
            Heartbeat.objects.create(
                owner=user, automation=bot, period_minutes=5, grace_minutes=2, last_kind=kind, last_at=last_at,
                deadline=last_at + timedelta(minutes=7) if kind == "success" else None, notified=a["beat"],
            )
    for region, active in spec.subscriptions:
        Subscription.objects.create(owner=user, region=region, feed=f"{region} equities bundle", active=active)
    for days_ago, minutes in spec.drills:
        started = datetime.combine(today - timedelta(days=days_ago), time(9, 0), tzinfo=UTC)
        Drill.objects.create(
            owner=user, lost_device="Phone", started_at=started,
            finished_at=started + timedelta(minutes=minutes) if minutes is not None else None, completed=minutes is not None,
        )
    complex_orders, transfers, alerts = spec.plan
    TradingProfile.objects.create(
        owner=user, broker_mfa=spec.broker_mfa, regions_traded=spec.regions, products_traded=spec.products, plan_complex_orders=complex_orders,
        plan_transfers_statements=transfers, plan_alerts_light_execution=alerts, support_contact="IBKR client services",
    )
    granted = [(product, region, "granted", None) for product in spec.products for region in spec.regions]
    for product, region, status, days in granted if spec.permissions is None else spec.permissions:
        Permission.objects.create(
            owner=user, product=product, region=region, status=status, requested_on=today - timedelta(days=days) if days is not None else None
        )
    for rule, reason, days in spec.accepted:
        AcceptedRisk.objects.create(owner=user, rule=rule, reason=reason, until=today + timedelta(days=days))


def _history(traders: list[User], today: date) -> None:
    """Score each trader's inventory on each of the past 90 days.

    Items dated later than a past day do not count on it yet, and items that
    went stale since did count then, so the history moves the way it would
    have. Today's row comes from the same snapshot_refresh the app uses.
    """
    inventories = inventories_for([t.pk for t in traders])
    lim = limits()
    rows = []
    for trader in traders:
        for days_ago in range(HISTORY_DAYS, 0, -1):
            day = today - timedelta(days=days_ago)
            report = rules.evaluate(inventories[trader.pk], day, lim)
            rows.append(
                ReadinessSnapshot(
                    user=trader, date=day, score=report.score, level=report.level, statuses={r.id: r.status for r in report.results}
                )
            )
    ReadinessSnapshot.objects.bulk_create(rows, batch_size=500)
    for trader in traders:
        snapshot_refresh(trader, today)
