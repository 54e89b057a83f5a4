"""Builders for readiness inventories in tests (used by tests/test_*.py).

``prepared_trader`` gives a trader who passes every rule on ``today``; tests
then break one thing. Everything goes through the ORM, as an import would.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from devices.models import ApiKey, Automation, RecoveryMethod, TrustedDevice

from .models import Drill, Subscription, TradingProfile


def device(
    owner, name: str = "Office workstation", *, kind: str = "desktop", platforms=("tws", "client_portal"), validated_on: date | None = None, **extra
) -> TrustedDevice:
    return TrustedDevice.objects.create(
        owner=owner,
        name=name,
        kind=kind,
        platforms=list(platforms),
        validated_on=validated_on if validated_on is not None else timezone.localdate() - timedelta(days=10),
        **extra,
    )


def recovery(owner, kind: str, label: str, *, verified_on: date | None = None) -> RecoveryMethod:
    return RecoveryMethod.objects.create(
        owner=owner, kind=kind, label=label, last_verified_on=verified_on if verified_on is not None else timezone.localdate() - timedelta(days=10)
    )


def api_key(owner, label: str = "algo-futures", **extra) -> ApiKey:
    today = timezone.localdate()
    values = {
        "scopes": ["read", "trade"],
        "service_account": True,
        "created_on": today - timedelta(days=10),
        "expires_on": today + timedelta(days=60),
        "fingerprint": "7f3a",
        "ip_restricted": True,
    }
    values.update(extra)
    return ApiKey.objects.create(owner=owner, label=label, **values)


def automation(owner, name: str = "ES spread bot", *, key: ApiKey | None = None, **extra) -> Automation:
    values = {"token_refresh": True, "fallback_contact": "desk lead phone", "on_auth_failure": "flatten"}
    values.update(extra)
    return Automation.objects.create(owner=owner, name=name, api_key=key, **values)


def profile(owner, **fields) -> TradingProfile:
    values = {
        "broker_mfa": "ib_key",
        "regions_traded": ["US"],
        "plan_complex_orders": "tws",
        "plan_transfers_statements": "client_portal",
        "plan_alerts_light_execution": "mobile",
        "support_contact": "+1 877 442 2757 (IBKR client services)",
    }
    values.update(fields)
    obj, _ = TradingProfile.objects.update_or_create(owner=owner, defaults=values)
    return obj


def drill(owner, *, minutes: float = 18, day: date | None = None, lost_device: str = "Office workstation", completed: bool = True) -> Drill:
    day = day or timezone.localdate() - timedelta(days=1)
    started = timezone.make_aware(datetime.combine(day, time(9, 0)))
    finished = started + timedelta(minutes=minutes) if completed else None
    return Drill.objects.create(owner=owner, lost_device=lost_device, started_at=started, finished_at=finished, completed=completed)


def prepared_trader(owner) -> None:
    """Everything in place: this trader scores 100 today."""
    device(owner, "Office workstation", kind="desktop", platforms=("tws", "client_portal", "api"))
    device(owner, "iPhone", kind="mobile", platforms=("mobile",))
    recovery(owner, "phone", "+1 555 010 0142")
    recovery(owner, "email", "alice@example.com")
    recovery(owner, "backup_codes", "Printed, in the desk safe")
    key = api_key(owner)
    automation(owner, key=key)
    profile(owner, regions_traded=["US", "HK"])
    Subscription.objects.create(owner=owner, region="US", feed="US equities bundle")
    Subscription.objects.create(owner=owner, region="HK", feed="HKEX level 1")
    drill(owner)
