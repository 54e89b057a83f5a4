"""Specification tests for the readiness rules; no database, no Django.

Each test starts from alice, a fully prepared trader (``full_inventory``), and
breaks one thing with ``dataclasses.replace``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from readiness.rules import (
    AT_RISK,
    CATALOG,
    FAIL,
    NA,
    NOT_READY,
    PARTIAL,
    PASS,
    READY,
    AcceptedRisk,
    ApiKey,
    Automation,
    Device,
    Drill,
    DueItem,
    Inventory,
    Limits,
    Permission,
    Profile,
    RecoveryMethod,
    Report,
    RuleResult,
    Subscription,
    coming_due,
    evaluate,
    level_for,
    upcoming_dates,
    within_days,
)

AS_OF = date(2026, 11, 25)
DEFAULT_LIMITS = Limits()


def days_ago(n: int) -> date:
    return AS_OF - timedelta(days=n)


def days_ahead(n: int) -> date:
    return AS_OF + timedelta(days=n)


def workstation(**changes: object) -> Device:
    device = Device(
        name="Office workstation",
        kind="desktop",
        platforms=frozenset({"tws", "desktop", "client_portal"}),
        validated_on=days_ago(30),
        status="active",
        browser_saved_password=False,
    )
    return replace(device, **changes)


def phone(**changes: object) -> Device:
    device = Device(
        name="Alice's iPhone",
        kind="mobile",
        platforms=frozenset({"mobile"}),
        validated_on=days_ago(10),
        status="active",
        browser_saved_password=False,
    )
    return replace(device, **changes)


def recovery(kind: str, label: str, verified: date | None = None) -> RecoveryMethod:
    return RecoveryMethod(kind=kind, label=label, last_verified_on=verified or days_ago(20))


def api_key(**changes: object) -> ApiKey:
    key = ApiKey(
        label="algo-futures",
        scopes=frozenset({"read", "trade"}),
        service_account=True,
        created_on=days_ago(30),
        last_rotated_on=None,
        expires_on=days_ahead(60),
        status="active",
        ip_restricted=True,
    )
    return replace(key, **changes)


def bot(**changes: object) -> Automation:
    automation = Automation(
        name="ES spread bot",
        api_key="algo-futures",
        token_refresh=True,
        fallback_contact="desk lead phone",
        on_auth_failure="flatten",
        status="active",
    )
    return replace(automation, **changes)


def drill(finished_days_ago: int = 24, minutes: float = 18, completed: bool = True) -> Drill:
    finished = datetime.combine(days_ago(finished_days_ago), datetime.min.time(), UTC) + timedelta(
        hours=9, minutes=30
    )
    return Drill(
        started_at=finished - timedelta(minutes=minutes),
        finished_at=finished if completed else None,
        lost_device="Office workstation",
        completed=completed,
    )


FULL_PLAN = (
    ("complex_orders", "tws"),
    ("transfers_statements", "client_portal"),
    ("alerts_light_execution", "mobile"),
)


def full_inventory(as_of: date = AS_OF) -> Inventory:
    """Alice, a fully prepared trader: every rule passes on ``AS_OF``."""
    assert as_of == AS_OF, "the builders are anchored on AS_OF"
    return Inventory(
        profile=Profile(
            broker="IBKR",
            broker_mfa="ib_key",
            regions_traded=("US", "HK"),
            interface_plan=FULL_PLAN,
            products_traded=("stocks",),
        ),
        permissions=(Permission("stocks", "US", "granted"), Permission("stocks", "HK", "granted")),
        devices=(workstation(), phone()),
        recovery_methods=(
            recovery("phone", "+1 *** *** 0142"),
            recovery("email", "a***@example.com"),
            recovery("authenticator", "IB Key on iPhone"),
        ),
        api_keys=(api_key(),),
        automations=(bot(),),
        subscriptions=(
            Subscription(region="US", feed="US equities bundle", active=True),
            Subscription(region="HK", feed="HKEX level 1", active=True),
        ),
        drills=(drill(),),
    )


def result(
    inventory: Inventory, rule_id: str, as_of: date = AS_OF, limits: Limits = DEFAULT_LIMITS
) -> RuleResult:
    report = evaluate(inventory, as_of, limits)
    return next(r for r in report.results if r.id == rule_id)


def status(
    inventory: Inventory, rule_id: str, as_of: date = AS_OF, limits: Limits = DEFAULT_LIMITS
) -> str:
    return result(inventory, rule_id, as_of, limits).status


# --------------------------------------------------------------------------
# The module and the catalog
# --------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted((Path(__file__).resolve().parent.parent / "readiness").glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_only_the_standard_library_and_itself(source):
    tree = ast.parse(source.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__", "readiness"} <= set(sys.stdlib_module_names)


def test_catalog_lists_its_rules_in_order_with_their_weights():
    assert [(r.id, r.weight) for r in CATALOG] == [
        ("devices.trusted", 15),
        ("recovery.current", 15),
        ("credentials.segmented", 15),
        ("credentials.rotation", 10),
        ("interfaces.mapped", 5),
        ("marketdata.covered", 10),
        ("drill.rehearsed", 15),
        ("automation.failsafe", 10),
        ("mfa.broker", 5),
        ("permissions.cleared", 10),
    ]
    assert sum(r.weight for r in CATALOG) == 110


def test_catalog_fix_urls_are_url_names():
    assert {r.id: r.fix_url for r in CATALOG} == {
        "devices.trusted": "devices:device_list",
        "recovery.current": "devices:recovery_list",
        "credentials.segmented": "devices:automation_list",
        "credentials.rotation": "devices:key_list",
        "interfaces.mapped": "checklist:profile",
        "marketdata.covered": "checklist:subscription_list",
        "drill.rehearsed": "checklist:drill_list",
        "automation.failsafe": "devices:automation_list",
        "mfa.broker": "checklist:profile",
        "permissions.cleared": "checklist:permission_list",
    }
    assert all(r.title for r in CATALOG)


def test_snapshot_is_immutable_and_hashable():
    inventory = full_inventory()
    with pytest.raises(dataclasses.FrozenInstanceError):
        inventory.devices = ()  # type: ignore[misc]
    assert hash(inventory) == hash(full_inventory())
    assert inventory == full_inventory()


def test_profile_plan_is_a_dict_of_tasks():
    assert full_inventory().profile.plan() == {
        "complex_orders": "tws",
        "transfers_statements": "client_portal",
        "alerts_light_execution": "mobile",
    }
    assert Profile().plan() == {}


def test_inventory_is_empty_ignores_profile_and_accepted_risks():
    assert Inventory().is_empty
    assert replace(
        Inventory(),
        profile=Profile(broker_mfa="sms"),
        accepted_risks=(AcceptedRisk("mfa.broker", "switching soon", AS_OF),),
    ).is_empty
    assert not full_inventory().is_empty
    assert not Inventory(subscriptions=(Subscription("US", "US bundle", False),)).is_empty


def test_within_days_counts_the_limit_day_but_not_the_future():
    assert within_days(days_ago(365), AS_OF, 365)
    assert not within_days(days_ago(366), AS_OF, 365)
    assert within_days(AS_OF, AS_OF, 365)
    assert not within_days(days_ahead(1), AS_OF, 365)
    assert not within_days(None, AS_OF, 365)


# --------------------------------------------------------------------------
# devices.trusted
# --------------------------------------------------------------------------


def test_devices_pass_with_a_validated_phone_and_desktop():
    r = result(full_inventory(), "devices.trusted")
    assert (r.status, r.points) == (PASS, 15)
    assert r.reason == "2 validated devices, phone and desktop"


def test_devices_laptop_counts_as_the_computer():
    inventory = replace(full_inventory(), devices=(workstation(kind="laptop"), phone()))
    assert status(inventory, "devices.trusted") == PASS


def test_devices_one_validated_device_is_partial():
    r = result(replace(full_inventory(), devices=(workstation(),)), "devices.trusted")
    assert (r.status, r.points) == (PARTIAL, 7.5)
    assert r.reason == "Only 1 validated device; add a phone as a second"


def test_devices_no_phone_among_two_computers_is_partial():
    inventory = replace(
        full_inventory(), devices=(workstation(), workstation(name="Home laptop", kind="laptop"))
    )
    r = result(inventory, "devices.trusted")
    assert r.status == PARTIAL
    assert "phone" in r.reason


def test_devices_browser_saved_password_is_partial():
    inventory = replace(
        full_inventory(), devices=(workstation(browser_saved_password=True), phone())
    )
    r = result(inventory, "devices.trusted")
    assert r.status == PARTIAL
    assert "'Office workstation'" in r.reason


def test_devices_saved_password_on_a_revoked_device_does_not_count():
    inventory = replace(
        full_inventory(),
        devices=(
            workstation(),
            phone(),
            workstation(name="Old PC", status="revoked", browser_saved_password=True),
        ),
    )
    assert status(inventory, "devices.trusted") == PASS


def test_devices_any_lost_device_fails():
    inventory = replace(
        full_inventory(), devices=(workstation(), phone(), phone(name="Old phone", status="lost"))
    )
    r = result(inventory, "devices.trusted")
    assert (r.status, r.points) == (FAIL, 0)
    assert r.reason == "Device 'Old phone' is reported lost; revoke it at the broker"


def test_devices_no_qualifying_device_fails():
    inventory = replace(
        full_inventory(),
        devices=(
            workstation(validated_on=days_ago(400)),
            phone(status="revoked"),
            phone(name="Tablet", kind="tablet", validated_on=None),
        ),
    )
    assert status(inventory, "devices.trusted") == FAIL


def test_devices_validated_exactly_365_days_ago_still_qualifies():
    inventory = replace(
        full_inventory(), devices=(workstation(), phone(validated_on=days_ago(365)))
    )
    assert status(inventory, "devices.trusted") == PASS


def test_devices_validated_366_days_ago_no_longer_qualifies():
    inventory = replace(
        full_inventory(), devices=(workstation(), phone(validated_on=days_ago(366)))
    )
    r = result(inventory, "devices.trusted")
    assert r.status == PARTIAL
    assert r.reason == (
        f"Device 'Alice's iPhone' was last validated on {days_ago(366).isoformat()}, over 365 days ago (and 1 more)"
    )
    assert [f.message for f in r.findings][1] == "Only 1 validated device; add a phone as a second"


def test_devices_limit_is_configurable():
    inventory = replace(full_inventory(), devices=(workstation(), phone(validated_on=days_ago(31))))
    assert status(inventory, "devices.trusted", limits=Limits(device_days=30)) == PARTIAL


# --------------------------------------------------------------------------
# recovery.current
# --------------------------------------------------------------------------


def test_recovery_passes_with_fresh_phone_email_and_a_backup_factor():
    r = result(full_inventory(), "recovery.current")
    assert (r.status, r.points) == (PASS, 15)
    assert "authenticator" in r.reason


def test_recovery_without_email_fails():
    methods = tuple(m for m in full_inventory().recovery_methods if m.kind != "email")
    r = result(replace(full_inventory(), recovery_methods=methods), "recovery.current")
    assert r.status == FAIL
    assert "email" in r.reason


def test_recovery_without_phone_fails():
    methods = tuple(m for m in full_inventory().recovery_methods if m.kind != "phone")
    assert status(replace(full_inventory(), recovery_methods=methods), "recovery.current") == FAIL


def test_recovery_verified_exactly_180_days_ago_is_current():
    inventory = replace(
        full_inventory(),
        recovery_methods=(
            recovery("phone", "+1 *** *** 0142", days_ago(180)),
            recovery("email", "a***@example.com"),
            recovery("backup_codes", "Printed codes"),
        ),
    )
    assert status(inventory, "recovery.current") == PASS


def test_recovery_verified_181_days_ago_is_stale():
    inventory = replace(
        full_inventory(),
        recovery_methods=(
            recovery("phone", "+1 *** *** 0142", days_ago(181)),
            recovery("email", "a***@example.com"),
            recovery("backup_codes", "Printed codes"),
        ),
    )
    r = result(inventory, "recovery.current")
    assert (r.status, r.points) == (PARTIAL, 7.5)
    assert "'+1 *** *** 0142'" in r.reason
    assert days_ago(181).isoformat() in r.reason


def test_recovery_never_verified_email_is_partial():
    inventory = replace(
        full_inventory(),
        recovery_methods=(
            recovery("phone", "+1 *** *** 0142"),
            RecoveryMethod("email", "a***@example.com", None),
            recovery("hardware_key", "YubiKey"),
        ),
    )
    r = result(inventory, "recovery.current")
    assert r.status == PARTIAL
    assert "never been verified" in r.reason


def test_recovery_without_backup_factor_is_partial():
    methods = tuple(m for m in full_inventory().recovery_methods if m.kind != "authenticator")
    r = result(replace(full_inventory(), recovery_methods=methods), "recovery.current")
    assert r.status == PARTIAL
    assert "backup factor" in r.reason


# --------------------------------------------------------------------------
# credentials.segmented
# --------------------------------------------------------------------------


def test_segmented_passes_with_an_own_service_account_key():
    assert status(full_inventory(), "credentials.segmented") == PASS


def test_segmented_pass_reason_counts_automations():
    inventory = replace(
        full_inventory(),
        api_keys=(api_key(), api_key(label="algo-equities")),
        automations=(bot(), bot(name="Pairs bot", api_key="algo-equities")),
    )
    r = result(inventory, "credentials.segmented")
    assert r.status == PASS
    assert r.reason.startswith("2 active automations, each with its own service-account key")


def test_segmented_is_na_without_active_automation():
    assert status(replace(full_inventory(), automations=()), "credentials.segmented") == NA


def test_segmented_ignores_paused_automations():
    inventory = replace(full_inventory(), automations=(bot(api_key=None, status="paused"),))
    assert status(inventory, "credentials.segmented") == NA
    inventory = replace(
        full_inventory(), automations=(bot(), bot(name="Old bot", api_key=None, status="paused"))
    )
    assert status(inventory, "credentials.segmented") == PASS


def test_segmented_bot_on_human_login_fails():
    inventory = replace(full_inventory(), automations=(bot(api_key=None),))
    r = result(inventory, "credentials.segmented")
    assert (r.status, r.points) == (FAIL, 0)
    assert r.reason == "Automation 'ES spread bot' runs on your human login"


def test_segmented_unknown_key_label_counts_as_no_key():
    inventory = replace(full_inventory(), automations=(bot(api_key="deleted-key"),))
    r = result(inventory, "credentials.segmented")
    assert r.status == FAIL
    assert "'deleted-key'" in r.reason


def test_segmented_revoked_key_fails():
    inventory = replace(full_inventory(), api_keys=(api_key(status="revoked"),))
    r = result(inventory, "credentials.segmented")
    assert r.status == FAIL
    assert "revoked" in r.reason


def test_segmented_key_not_held_by_a_service_account_fails():
    inventory = replace(full_inventory(), api_keys=(api_key(service_account=False),))
    assert status(inventory, "credentials.segmented") == FAIL


def test_segmented_key_shared_by_two_active_automations_is_partial():
    inventory = replace(full_inventory(), automations=(bot(), bot(name="NQ momentum")))
    r = result(inventory, "credentials.segmented")
    assert (r.status, r.points) == (PARTIAL, 7.5)
    assert "'algo-futures'" in r.reason and "'NQ momentum'" in r.reason


def test_segmented_key_shared_with_a_paused_automation_passes():
    inventory = replace(
        full_inventory(), automations=(bot(), bot(name="NQ momentum", status="paused"))
    )
    assert status(inventory, "credentials.segmented") == PASS


@pytest.mark.parametrize("scope", ["transfer", "withdraw"])
def test_segmented_money_movement_scope_is_partial(scope):
    inventory = replace(
        full_inventory(), api_keys=(api_key(scopes=frozenset({"read", "trade", scope})),)
    )
    r = result(inventory, "credentials.segmented")
    assert r.status == PARTIAL
    assert scope in r.reason


def test_segmented_fail_beats_partial():
    inventory = replace(
        full_inventory(),
        api_keys=(api_key(scopes=frozenset({"withdraw"})),),
        automations=(bot(), bot(name="Manual helper", api_key=None)),
    )
    assert status(inventory, "credentials.segmented") == FAIL


# --------------------------------------------------------------------------
# credentials.rotation
# --------------------------------------------------------------------------


def test_rotation_passes_with_expiring_recent_keys():
    r = result(full_inventory(), "credentials.rotation")
    assert (r.status, r.points) == (PASS, 10)


def test_rotation_pass_reason_names_the_key():
    r = result(full_inventory(), "credentials.rotation")
    assert r.reason == (
        f"API key 'algo-futures' expires on {days_ahead(60)} and was rotated within 90 days"
    )


def test_rotation_is_na_without_active_key():
    inventory = replace(
        full_inventory(), api_keys=(api_key(status="revoked", expires_on=days_ago(5)),)
    )
    assert status(inventory, "credentials.rotation") == NA


def test_rotation_key_is_valid_on_its_expiry_day():
    inventory = replace(full_inventory(), api_keys=(api_key(expires_on=AS_OF),))
    assert status(inventory, "credentials.rotation") == PASS


def test_rotation_key_expired_the_day_after_fails():
    inventory = replace(full_inventory(), api_keys=(api_key(expires_on=date(2026, 10, 1)),))
    r = result(inventory, "credentials.rotation", as_of=date(2026, 10, 2))
    assert r.status == FAIL
    assert r.reason == "API key 'algo-futures' expired on 2026-10-01"


def test_rotation_age_of_exactly_90_days_is_within_the_limit():
    inventory = replace(full_inventory(), api_keys=(api_key(created_on=days_ago(90)),))
    assert status(inventory, "credentials.rotation") == PASS


def test_rotation_age_of_91_days_with_expiry_is_partial():
    inventory = replace(full_inventory(), api_keys=(api_key(created_on=days_ago(91)),))
    r = result(inventory, "credentials.rotation")
    assert (r.status, r.points) == (PARTIAL, 5)
    assert "91 days" in r.reason


def test_rotation_counts_age_from_the_last_rotation():
    key = api_key(created_on=days_ago(400), last_rotated_on=days_ago(90))
    assert status(replace(full_inventory(), api_keys=(key,)), "credentials.rotation") == PASS


def test_rotation_recent_key_without_expiry_is_partial():
    inventory = replace(
        full_inventory(), api_keys=(api_key(expires_on=None, created_on=days_ago(90)),)
    )
    r = result(inventory, "credentials.rotation")
    assert r.status == PARTIAL
    assert "no expiry" in r.reason


def test_rotation_old_key_without_expiry_fails():
    inventory = replace(
        full_inventory(), api_keys=(api_key(expires_on=None, created_on=days_ago(91)),)
    )
    assert status(inventory, "credentials.rotation") == FAIL


def test_rotation_ignores_revoked_keys():
    inventory = replace(
        full_inventory(),
        api_keys=(api_key(), api_key(label="old", status="revoked", expires_on=days_ago(100))),
    )
    assert status(inventory, "credentials.rotation") == PASS


def test_rotation_limit_is_configurable():
    inventory = replace(full_inventory(), api_keys=(api_key(created_on=days_ago(31)),))
    assert status(inventory, "credentials.rotation", limits=Limits(rotation_days=30)) == PARTIAL


# --------------------------------------------------------------------------
# interfaces.mapped
# --------------------------------------------------------------------------


def with_plan(**plan: str | None) -> Inventory:
    merged = dict(FULL_PLAN) | plan
    return replace(
        full_inventory(),
        profile=replace(full_inventory().profile, interface_plan=tuple(merged.items())),
    )


def test_interfaces_pass_with_a_suitable_plan_on_validated_devices():
    assert status(full_inventory(), "interfaces.mapped") == PASS


def test_interfaces_desktop_suits_complex_orders():
    assert status(with_plan(complex_orders="desktop"), "interfaces.mapped") == PASS


def test_interfaces_task_without_access_point_fails():
    r = result(with_plan(transfers_statements=None), "interfaces.mapped")
    assert (r.status, r.points) == (FAIL, 0)
    assert "cash transfers" in r.reason


def test_interfaces_absent_task_fails():
    profile = replace(full_inventory().profile, interface_plan=FULL_PLAN[:2])
    assert status(replace(full_inventory(), profile=profile), "interfaces.mapped") == FAIL


def test_interfaces_unsuitable_access_point_is_partial():
    r = result(with_plan(complex_orders="mobile"), "interfaces.mapped")
    assert (r.status, r.points) == (PARTIAL, 2.5)
    assert "complex orders" in r.reason


def test_interfaces_api_suits_no_human_task():
    assert status(with_plan(alerts_light_execution="api"), "interfaces.mapped") == PARTIAL


def test_interfaces_access_point_on_no_validated_device_is_partial():
    inventory = replace(
        full_inventory(), devices=(workstation(), phone(validated_on=days_ago(366)))
    )
    r = result(inventory, "interfaces.mapped")
    assert r.status == PARTIAL
    assert "IBKR Mobile" in r.reason


# --------------------------------------------------------------------------
# marketdata.covered
# --------------------------------------------------------------------------


def trading(
    *regions: str, feeds: tuple[str, ...] = (), inactive: tuple[str, ...] = ()
) -> Inventory:
    inventory = full_inventory()
    subscriptions = tuple(Subscription(r, f"{r} feed", True) for r in feeds) + tuple(
        Subscription(r, f"{r} feed", False) for r in inactive
    )
    return replace(
        inventory,
        profile=replace(inventory.profile, regions_traded=regions),
        subscriptions=subscriptions,
    )


def test_marketdata_passes_when_every_region_has_a_feed():
    r = result(full_inventory(), "marketdata.covered")
    assert (r.status, r.points) == (PASS, 10)


def test_marketdata_is_na_without_regions_traded():
    assert status(trading(feeds=("US",)), "marketdata.covered") == NA


def test_marketdata_half_covered_is_partial():
    r = result(trading("US", "HK", feeds=("US",)), "marketdata.covered")
    assert (r.status, r.points) == (PARTIAL, 5)
    assert r.reason == "You trade HK with no active HK feed"


def test_marketdata_less_than_half_covered_fails():
    r = result(trading("US", "HK", "JP", feeds=("US",)), "marketdata.covered")
    assert r.status == FAIL
    assert r.reason == "You trade HK with no active HK feed (and 1 more)"
    assert [(f.severity, f.message) for f in r.findings] == [
        ("critical", "You trade HK with no active HK feed"),
        ("critical", "You trade JP with no active JP feed"),
    ]


def test_marketdata_inactive_subscription_does_not_cover():
    assert status(trading("US", feeds=(), inactive=("US",)), "marketdata.covered") == FAIL


# --------------------------------------------------------------------------
# drill.rehearsed
# --------------------------------------------------------------------------


def test_drill_passes_when_recent_and_fast():
    r = result(full_inventory(), "drill.rehearsed")
    assert (r.status, r.points) == (PASS, 15)
    assert "18 min" in r.reason


def test_drill_never_rehearsed_fails():
    assert status(replace(full_inventory(), drills=()), "drill.rehearsed") == FAIL


def test_drill_abandoned_does_not_count():
    inventory = replace(full_inventory(), drills=(drill(completed=False),))
    assert status(inventory, "drill.rehearsed") == FAIL


def test_drill_exactly_90_days_ago_counts():
    assert (
        status(replace(full_inventory(), drills=(drill(finished_days_ago=90),)), "drill.rehearsed")
        == PASS
    )


def test_drill_91_days_ago_fails():
    r = result(replace(full_inventory(), drills=(drill(finished_days_ago=91),)), "drill.rehearsed")
    assert r.status == FAIL
    assert days_ago(91).isoformat() in r.reason


def test_drill_day_is_the_utc_date_of_finished_at():
    # 22:00 in New York on the 91st day before is already the 90th day in UTC.
    new_york = timezone(timedelta(hours=-5))
    finished = datetime.combine(days_ago(91), datetime.min.time(), new_york) + timedelta(hours=22)
    late = Drill(finished - timedelta(minutes=10), finished, "Office workstation", True)
    assert status(replace(full_inventory(), drills=(late,)), "drill.rehearsed") == PASS


def test_drill_at_exactly_the_target_passes():
    assert status(replace(full_inventory(), drills=(drill(minutes=30),)), "drill.rehearsed") == PASS


def test_drill_one_second_over_the_target_is_partial():
    slow = drill(minutes=30 + 1 / 60)
    r = result(replace(full_inventory(), drills=(slow,)), "drill.rehearsed")
    assert (r.status, r.points) == (PARTIAL, 7.5)
    assert r.reason == "Last drill took 30 min 1 s (target 30 min)"


def test_drill_slow_reason_names_the_time():
    r = result(replace(full_inventory(), drills=(drill(minutes=42),)), "drill.rehearsed")
    assert r.reason == "Last drill took 42 min (target 30 min)"


def test_drill_any_fast_recent_drill_passes():
    inventory = replace(
        full_inventory(),
        drills=(drill(5, minutes=42), drill(40, minutes=20), drill(120, minutes=5)),
    )
    assert status(inventory, "drill.rehearsed") == PASS


def test_drill_target_is_configurable():
    inventory = replace(full_inventory(), drills=(drill(minutes=18),))
    assert status(inventory, "drill.rehearsed", limits=Limits(drill_target_minutes=15)) == PARTIAL


# --------------------------------------------------------------------------
# automation.failsafe
# --------------------------------------------------------------------------


def test_failsafe_passes_when_bots_flatten():
    r = result(full_inventory(), "automation.failsafe")
    assert (r.status, r.points) == (PASS, 10)


def test_failsafe_close_also_passes():
    assert (
        status(
            replace(full_inventory(), automations=(bot(on_auth_failure="close"),)),
            "automation.failsafe",
        )
        == PASS
    )


def test_failsafe_is_na_without_active_automation():
    inventory = replace(
        full_inventory(), automations=(bot(status="paused", on_auth_failure="none"),)
    )
    assert status(inventory, "automation.failsafe") == NA


@pytest.mark.parametrize(
    "change, words",
    [
        ({"token_refresh": False}, "token refresh"),
        ({"fallback_contact": "  "}, "fallback contact"),
        ({"on_auth_failure": "none"}, "authentication fails"),
    ],
)
def test_failsafe_missing_safeguard_fails(change, words):
    r = result(replace(full_inventory(), automations=(bot(**change),)), "automation.failsafe")
    assert r.status == FAIL
    assert words in r.reason and "'ES spread bot'" in r.reason


def test_failsafe_halt_only_is_partial():
    r = result(
        replace(full_inventory(), automations=(bot(on_auth_failure="halt"),)), "automation.failsafe"
    )
    assert (r.status, r.points) == (PARTIAL, 5)
    assert "halts" in r.reason


def test_failsafe_ignores_paused_automations():
    inventory = replace(
        full_inventory(),
        automations=(bot(), bot(name="Old bot", token_refresh=False, status="paused")),
    )
    assert status(inventory, "automation.failsafe") == PASS


# --------------------------------------------------------------------------
# mfa.broker
# --------------------------------------------------------------------------


def with_mfa(mfa: str | None) -> Inventory:
    return replace(full_inventory(), profile=replace(full_inventory().profile, broker_mfa=mfa))


@pytest.mark.parametrize("mfa", ["hardware_key", "ib_key", "authenticator_app"])
def test_mfa_strong_factor_passes(mfa):
    assert status(with_mfa(mfa), "mfa.broker") == PASS


def test_mfa_sms_is_partial():
    r = result(with_mfa("sms"), "mfa.broker")
    assert (r.status, r.points) == (PARTIAL, 2.5)


@pytest.mark.parametrize("mfa", ["none", None])
def test_mfa_none_or_unset_fails(mfa):
    assert status(with_mfa(mfa), "mfa.broker") == FAIL


# --------------------------------------------------------------------------
# Score, level, next actions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "score, level",
    [(0, NOT_READY), (59, NOT_READY), (60, AT_RISK), (84, AT_RISK), (85, READY), (100, READY)],
)
def test_level_for_score(score, level):
    assert level_for(score) == level


def saved_password() -> Inventory:
    """Alice with only devices.trusted at partial (a browser-saved password)."""
    return replace(full_inventory(), devices=(workstation(browser_saved_password=True), phone()))


def test_score_rounds_92_5_half_up_to_93():
    report = evaluate(saved_password(), AS_OF)
    # 92.5 earned of 100; round() would give 92 (banker's rounding).
    assert report.score == 93
    assert report.level == READY


def test_score_rounds_97_5_half_up_to_98():
    assert evaluate(with_mfa("sms"), AS_OF).score == 98


def test_score_leaves_na_rules_out_of_the_denominator():
    inventory = replace(saved_password(), profile=trading().profile)
    # 82.5 of 90 = 91.67
    assert evaluate(inventory, AS_OF).score == 92
    # 85 of 90 = 94.44
    assert (
        evaluate(
            replace(trading(), profile=replace(trading().profile, broker_mfa=None)), AS_OF
        ).score
        == 94
    )


def test_empty_inventory_is_not_ready():
    report = evaluate(Inventory(), AS_OF)
    assert report.score == 0
    assert report.level == NOT_READY
    assert [r.status for r in report.results] == [FAIL, FAIL, NA, NA, FAIL, NA, FAIL, NA, FAIL, NA]


def test_next_actions_order_by_points_lost_then_catalog_order():
    inventory = replace(
        trading("US", "HK", feeds=("US",)),
        devices=(workstation(), phone(browser_saved_password=True)),
        recovery_methods=(),
        drills=(drill(minutes=45),),
    )
    inventory = replace(inventory, profile=replace(inventory.profile, broker_mfa="sms"))
    report = evaluate(inventory, AS_OF)
    assert [(r.id, r.points_lost) for r in report.next_actions] == [
        ("recovery.current", 15),
        ("devices.trusted", 7.5),
        ("drill.rehearsed", 7.5),
        ("marketdata.covered", 5),
        ("mfa.broker", 2.5),
    ]


def test_accepted_risk_leaves_next_actions_but_keeps_status_and_points():
    accepted = AcceptedRisk("recovery.current", "New phone number arrives Monday", AS_OF)
    inventory = replace(full_inventory(), recovery_methods=(), accepted_risks=(accepted,))
    report = evaluate(inventory, AS_OF)
    r = next(r for r in report.results if r.id == "recovery.current")
    assert (r.status, r.points, r.accepted_until) == (FAIL, 0, AS_OF)
    assert report.score == 86  # 95 of 110
    assert report.next_actions == ()


def test_expired_accepted_risk_no_longer_applies():
    accepted = AcceptedRisk("recovery.current", "New phone number arrives Monday", days_ago(1))
    inventory = replace(full_inventory(), recovery_methods=(), accepted_risks=(accepted,))
    report = evaluate(inventory, AS_OF)
    assert [r.id for r in report.next_actions] == ["recovery.current"]
    assert report.results[1].accepted_until is None


def test_accepted_risk_on_a_passing_rule_is_only_shown():
    accepted = AcceptedRisk("mfa.broker", "reviewed", days_ahead(30))
    report = evaluate(replace(full_inventory(), accepted_risks=(accepted,)), AS_OF)
    assert report.result("mfa.broker").accepted_until == days_ahead(30)
    assert report.score == 100


def test_as_dict_matches_the_readiness_json_shape():
    accepted = AcceptedRisk("devices.trusted", "second phone on order", days_ahead(10))
    report = evaluate(replace(saved_password(), accepted_risks=(accepted,)), AS_OF)
    data = report.as_dict("alice")
    assert list(data) == ["user", "as_of", "score", "level", "rules"]
    assert data["user"] == "alice"
    assert data["as_of"] == "2026-11-25"
    assert data["score"] == 93 and data["level"] == "ready"
    rules = data["rules"]
    assert [rule["id"] for rule in rules] == [r.id for r in CATALOG]
    assert all(
        list(rule) == ["id", "status", "weight", "points", "reason", "accepted_until", "findings"]
        for rule in rules
    )
    assert all(type(rule["points"]) is float and type(rule["weight"]) is int for rule in rules)
    assert rules[0] == {
        "id": "devices.trusted",
        "status": "partial",
        "weight": 15,
        "points": 7.5,
        "reason": report.results[0].reason,
        "accepted_until": days_ahead(10).isoformat(),
        "findings": [
            {
                "severity": "warning",
                "section": "devices",
                "item": "Office workstation",
                "message": "Device 'Office workstation' keeps the broker password in the browser; remove it and use a password manager",
            }
        ],
    }
    assert rules[1]["points"] == 15.0 and rules[1]["accepted_until"] is None
    assert json.loads(json.dumps(data)) == data


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


def test_fully_prepared_trader_scores_100_and_is_ready():
    report = evaluate(full_inventory(), AS_OF)
    assert isinstance(report, Report)
    assert [r.status for r in report.results] == [PASS] * len(CATALOG)
    assert report.score == 100
    assert report.level == READY
    assert report.next_actions == ()


def test_trader_with_only_a_workstation_who_loses_it():
    inventory = replace(full_inventory(), devices=(workstation(status="lost"),))
    report = evaluate(inventory, AS_OF)
    devices = report.results[0]
    assert devices.status == FAIL
    assert devices.reason == "Device 'Office workstation' is reported lost; revoke it at the broker (and 1 more)"
    assert report.next_actions[0].id == "devices.trusted"
    # Nothing validated is left to host the planned access points.
    assert report.results[4].status == PARTIAL


def test_bot_on_the_human_login():
    inventory = replace(full_inventory(), api_keys=(), automations=(bot(api_key=None),))
    report = evaluate(inventory, AS_OF)
    statuses = {r.id: r.status for r in report.results}
    assert statuses["credentials.segmented"] == FAIL
    assert statuses["credentials.rotation"] == NA
    # 85 earned of 100 (credentials.rotation is left out): only just ready
    assert report.score == 85 and report.level == READY


def test_trader_who_trades_hk_without_a_feed():
    inventory = trading("HK", feeds=("US",))
    r = result(inventory, "marketdata.covered")
    assert r.status == FAIL
    assert r.reason == "You trade HK with no active HK feed"
    assert evaluate(inventory, AS_OF).score == 91  # 100 of 110


# --------------------------------------------------------------------------
# Coming due
# --------------------------------------------------------------------------


def test_nothing_comes_due_for_a_prepared_trader_within_two_weeks():
    assert coming_due(full_inventory(), AS_OF, Limits()) == ()


def test_upcoming_dates_lists_every_due_date():
    items = upcoming_dates(full_inventory(), AS_OF, Limits())
    assert [(i.kind, i.label, i.due_on) for i in items] == sorted(
        [
            ("key_expiry", "algo-futures", days_ahead(60)),
            ("key_rotation", "algo-futures", days_ago(30) + timedelta(days=90)),
            ("recovery_verify", "+1 *** *** 0142", days_ago(20) + timedelta(days=180)),
            ("recovery_verify", "a***@example.com", days_ago(20) + timedelta(days=180)),
            ("recovery_verify", "IB Key on iPhone", days_ago(20) + timedelta(days=180)),
            ("device_validate", "Office workstation", days_ago(30) + timedelta(days=365)),
            ("device_validate", "Alice's iPhone", days_ago(10) + timedelta(days=365)),
            ("drill", "Device-loss drill", days_ago(24) + timedelta(days=90)),
        ],
        key=lambda t: (t[2], t[1]),
    )
    assert all(isinstance(i, DueItem) and i.what and i.fix_url for i in items)


def test_coming_due_window_includes_day_14_but_not_day_15():
    keys = (
        api_key(label="due-in-14", expires_on=days_ahead(14)),
        api_key(label="due-in-15", expires_on=days_ahead(15)),
    )
    items = coming_due(replace(full_inventory(), api_keys=keys), AS_OF, Limits())
    assert [(i.kind, i.label, i.due_on) for i in items] == [
        ("key_expiry", "due-in-14", days_ahead(14))
    ]
    assert items[0].fix_url == "devices:key_list"
    assert not items[0].overdue(AS_OF)


def test_coming_due_includes_overdue_items_sorted_by_date_then_label():
    inventory = replace(
        full_inventory(),
        devices=(
            workstation(),
            phone(),
            phone(name="Old phone", status="revoked", validated_on=days_ago(900)),
        ),
        recovery_methods=(
            recovery("phone", "+1 *** *** 0142", days_ago(200)),
            recovery("email", "b***@example.com", days_ago(185)),
            recovery("email", "a***@example.com", days_ago(185)),
        ),
        api_keys=(
            api_key(created_on=days_ago(85)),
            api_key(label="retired", status="revoked", expires_on=days_ago(1)),
        ),
        drills=(),
    )
    items = coming_due(inventory, AS_OF, Limits())
    assert [(i.kind, i.label) for i in items] == [
        ("recovery_verify", "+1 *** *** 0142"),
        ("recovery_verify", "a***@example.com"),
        ("recovery_verify", "b***@example.com"),
        ("drill", "Device-loss drill"),
        ("key_rotation", "algo-futures"),
    ]
    assert [i.overdue(AS_OF) for i in items] == [True, True, True, False, False]
    assert items[3].due_on == AS_OF
    assert items[3].what == "Run your first device-loss drill"
    assert items[4].due_on == days_ahead(5)


def test_coming_due_window_is_configurable():
    inventory = replace(full_inventory(), api_keys=(api_key(expires_on=days_ahead(20)),))
    assert coming_due(inventory, AS_OF, Limits()) == ()
    assert [i.kind for i in coming_due(inventory, AS_OF, Limits(), window_days=30)] == [
        "key_expiry"
    ]


def test_next_drill_is_due_drill_days_after_the_last_one():
    inventory = replace(
        full_inventory(), drills=(drill(finished_days_ago=80), drill(finished_days_ago=120))
    )
    items = coming_due(inventory, AS_OF, Limits())
    assert [(i.kind, i.due_on) for i in items] == [("drill", days_ahead(10))]
