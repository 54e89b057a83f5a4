"""Findings: every rule lists every item that keeps it from passing, worst
first, and every page that shows an item's problem shows exactly those."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Desk
from checklist.models import ReadinessSnapshot
from desk.selectors import DeskQuery, desk_table, trader_detail
from devices import services as device_services
from devices.models import ApiKey, Automation
from devices.selectors import report_for
from readiness.rules import CRITICAL, LEAD, WARNING, AcceptedRisk, Profile, evaluate
from tests import builders as build
from tests.conftest import make_user
from tests.test_rules import AS_OF, api_key, bot, days_ago, days_ahead, drill, full_inventory, phone, recovery, workstation

C, W = CRITICAL, WARNING


def findings(inventory, rule_id):
    result = evaluate(inventory, AS_OF).result(rule_id)
    return result, [(f.severity, f.section, f.item, f.message) for f in result.findings]


# --- Each rule: every finding it can produce, its severity and order ---------------


CASES = [
    (
        "devices.trusted",
        replace(
            full_inventory(),
            devices=(
                workstation(status="lost"),
                phone(validated_on=days_ago(400)),
                workstation(name="Tablet", kind="tablet", validated_on=days_ahead(2)),
                workstation(name="Laptop", kind="laptop", validated_on=None, browser_saved_password=True),
            ),
        ),
        [
            (C, "devices", "Office workstation", "Device 'Office workstation' is reported lost; revoke it at the broker"),
            (C, "devices", "Alice's iPhone", f"Device 'Alice's iPhone' was last validated on {days_ago(400)}, over 365 days ago"),
            (
                C, "devices", "Tablet",
                f"Device 'Tablet' has a validated date in the future ({days_ahead(2)}); record the day it really happened",
            ),
            (C, "devices", "Laptop", "Device 'Laptop' has never been validated"),
            (C, "devices", None, "No active device validated in the last 365 days; validate your workstation and your phone"),
            (W, "devices", "Laptop", "Device 'Laptop' keeps the broker password in the browser; remove it and use a password manager"),
        ],
    ),
    (
        "devices.trusted",
        replace(full_inventory(), devices=(workstation(), workstation(name="Home laptop", kind="laptop"))),
        [(W, "devices", None, "None of your 2 validated devices is a phone; validate one")],
    ),
    (
        "recovery.current",
        replace(
            full_inventory(),
            recovery_methods=(recovery("phone", "+1 *** *** 0142", days_ago(200)), recovery("phone", "+1 *** *** 0199")),
        ),
        [
            (C, "recovery_methods", None, "No recovery email; add one"),
            (W, "recovery_methods", None, "No backup factor; add an authenticator, backup codes, a hardware key or a secondary device"),
        ],
    ),
    (
        "recovery.current",
        replace(
            full_inventory(),
            recovery_methods=(
                recovery("phone", "+1 *** *** 0142", days_ago(200)),
                recovery("email", "a***@example.com"),
                replace(recovery("authenticator", "IB Key"), last_verified_on=None),
            ),
        ),
        [(W, "recovery_methods", "+1 *** *** 0142", f"Recovery phone '+1 *** *** 0142' was last verified on {days_ago(200)}, over 180 days ago")],
    ),
    (
        "credentials.segmented",
        replace(
            full_inventory(),
            api_keys=(
                api_key(scopes=frozenset({"trade", "withdraw"})),
                api_key(label="personal", service_account=False),
                api_key(label="old", status="revoked"),
            ),
            automations=(
                bot(),
                bot(name="Copy bot"),
                bot(name="Human bot", api_key=None),
                bot(name="Ghost bot", api_key="missing"),
                bot(name="Personal bot", api_key="personal"),
                bot(name="Old bot", api_key="old"),
                bot(name="Paused bot", api_key=None, status="paused"),
            ),
        ),
        [
            (C, "automations", "Human bot", "Automation 'Human bot' runs on your human login"),
            (
                C, "automations", "Ghost bot",
                "Automation 'Ghost bot' names API key 'missing', which does not exist; it counts as running on your human login",
            ),
            (C, "automations", "Personal bot", "Automation 'Personal bot' uses API key 'personal', which is not held by a service account"),
            (C, "automations", "Old bot", "Automation 'Old bot' uses revoked API key 'old'"),
            (W, "api_keys", "algo-futures", "API key 'algo-futures' has the withdraw scope; remove it from the key"),
            (W, "api_keys", "algo-futures", "API key 'algo-futures' is shared by automations 'ES spread bot' and 'Copy bot'; give each its own key"),
        ],
    ),
    (
        "credentials.rotation",
        replace(
            full_inventory(),
            api_keys=(
                api_key(label="expired", expires_on=days_ago(14)),
                api_key(label="ancient", created_on=days_ago(213), expires_on=None),
                api_key(label="old", created_on=days_ago(100)),
                api_key(label="open", expires_on=None),
                api_key(label="gone", status="revoked", expires_on=days_ago(300)),
            ),
        ),
        [
            (C, "api_keys", "expired", f"API key 'expired' expired on {days_ago(14)}"),
            (C, "api_keys", "ancient", "API key 'ancient' has no expiry and is 213 days old (rotate every 90 days)"),
            (W, "api_keys", "old", "API key 'old' is 100 days old (rotate every 90 days)"),
            (W, "api_keys", "open", "API key 'open' has no expiry date; set one"),
        ],
    ),
    (
        "interfaces.mapped",
        replace(
            full_inventory(),
            profile=Profile(broker_mfa="ib_key", regions_traded=("US",), interface_plan=(("complex_orders", "mobile"), ("alerts_light_execution", "tws"))),
            devices=(workstation(platforms=frozenset({"client_portal"})), phone()),
        ),
        [
            (C, "profile", None, "No access point chosen for cash transfers and statements"),
            (W, "profile", None, "IBKR Mobile does not suit complex orders and spreads; use IBKR Desktop or Trader Workstation"),
            (W, "profile", None, "Trader Workstation does not suit alerts and light execution; use IBKR Mobile"),
            (W, "profile", None, "Trader Workstation, planned for alerts and light execution, is on no validated device"),
        ],
    ),
    (
        "marketdata.covered",
        replace(full_inventory(), profile=replace(full_inventory().profile, regions_traded=("US", "HK", "JP", "EU"))),
        [
            (W, "subscriptions", None, "You trade JP with no active JP feed"),
            (W, "subscriptions", None, "You trade EU with no active EU feed"),
        ],
    ),
    ("drill.rehearsed", replace(full_inventory(), drills=(drill(finished_days_ago=120),)), [
        (C, "drills", None, f"Last device-loss drill was on {days_ago(120)}, over 90 days ago; rehearse again"),
    ]),
    ("drill.rehearsed", replace(full_inventory(), drills=(drill(minutes=45), drill(finished_days_ago=3, minutes=40))), [
        (W, "drills", "Office workstation", "Last drill took 40 min (target 30 min)"),
    ]),
    (
        "automation.failsafe",
        replace(
            full_inventory(),
            automations=(bot(on_auth_failure="halt"), bot(name="Blind bot", token_refresh=False, fallback_contact=" ", on_auth_failure="none")),
        ),
        [
            (C, "automations", "Blind bot", "Automation 'Blind bot' has no token refresh"),
            (C, "automations", "Blind bot", "Automation 'Blind bot' has no fallback contact"),
            (C, "automations", "Blind bot", "Automation 'Blind bot' does nothing when authentication fails"),
            (
                W, "automations", "ES spread bot",
                "Automation 'ES spread bot' only halts when authentication fails; make it flatten or close positions",
            ),
        ],
    ),
    ("mfa.broker", replace(full_inventory(), profile=Profile(broker_mfa=None)), [(C, "profile", None, "No second factor recorded for your IBKR login")]),
    ("mfa.broker", replace(full_inventory(), profile=Profile(broker_mfa="none")), [(C, "profile", None, "Your IBKR login has no second factor")]),
    (
        "mfa.broker",
        replace(full_inventory(), profile=Profile(broker_mfa="sms")),
        [(W, "profile", None, "Your IBKR login uses SMS codes; switch to app approval, an authenticator app or a hardware key")],
    ),
]


@pytest.mark.parametrize(("rule_id", "inventory", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_lists_every_finding_worst_first(rule_id, inventory, expected):
    result, found = findings(inventory, rule_id)
    assert found == expected
    # The status follows from the findings, and the reason from the first of them.
    assert result.status == ("fail" if expected[0][0] == C else "partial")
    more = f" (and {len(expected) - 1} more)" if len(expected) > 1 else ""
    assert result.reason == expected[0][3] + more


def test_a_passing_or_not_applicable_rule_has_no_findings_and_says_why():
    report = evaluate(full_inventory(), AS_OF)
    assert all(r.findings == () and r.reason for r in report.results)
    none = evaluate(replace(full_inventory(), automations=(), api_keys=()), AS_OF)
    assert none.result("credentials.segmented").status == "na" and none.result("credentials.segmented").findings == ()


def test_a_bot_on_the_human_login_does_not_hide_behind_a_smaller_problem():
    inventory = replace(full_inventory(), automations=(bot(on_auth_failure="halt"), bot(name="Login bot", api_key=None, on_auth_failure="none")))
    report = evaluate(inventory, AS_OF)
    assert report.result("credentials.segmented").reason == "Automation 'Login bot' runs on your human login"
    assert report.result("automation.failsafe").reason == "Automation 'Login bot' does nothing when authentication fails (and 1 more)"


def test_a_lead_reads_findings_in_the_third_person():
    inventory = replace(full_inventory(), automations=(bot(api_key=None),), profile=Profile(broker_mfa="sms", regions_traded=("US", "JP")))
    report = evaluate(inventory, AS_OF)
    assert report.result("credentials.segmented").findings[0].in_voice(LEAD) == "Automation 'ES spread bot' runs on the trader's human login"
    assert report.result("marketdata.covered").lead_reason == "The trader trades JP with no active JP feed"
    assert report.result("mfa.broker").lead_reason.startswith("The trader's IBKR login uses SMS codes")


def test_accepted_risks_do_not_change_findings():
    inventory = replace(full_inventory(), profile=Profile(broker_mfa="sms"), accepted_risks=(AcceptedRisk("mfa.broker", "switching", days_ahead(5)),))
    assert evaluate(inventory, AS_OF).result("mfa.broker").findings


# --- Every list page agrees with the dashboard ----------------------------------------


def rich_inventory(owner) -> None:
    """Something wrong in every section, several items each."""
    today = timezone.localdate()
    build.device(owner, "Office workstation", validated_on=today - timedelta(days=400))
    build.device(owner, "Spare laptop", kind="laptop", validated_on=today + timedelta(days=1))
    build.device(owner, "Old phone", kind="mobile", status="lost")
    build.device(owner, "Home PC", browser_saved_password=True)
    build.recovery(owner, "phone", "+1 212 555 0142", verified_on=today - timedelta(days=300))
    expired = build.api_key(owner, "expired-key", expires_on=today - timedelta(days=14))
    build.api_key(owner, "ancient-key", created_on=today - timedelta(days=213), expires_on=None)
    money = build.api_key(owner, "money-key", scopes=["trade", "withdraw"])
    build.automation(owner, "Login bot", key=None, on_auth_failure="none")
    build.automation(owner, "Halting bot", key=money, on_auth_failure="halt")
    build.automation(owner, "Copy bot", key=money, token_refresh=False)
    build.automation(owner, "Expired bot", key=expired)
    build.profile(owner, broker_mfa="sms", regions_traded=["US", "HK", "JP"], plan_transfers_statements=None)
    build.subscription(owner, "US")
    build.drill(owner, minutes=50)


PAGES = {
    "devices": "/devices/",
    "recovery_methods": "/recovery/",
    "api_keys": "/keys/",
    "automations": "/automations/",
}


def test_every_list_page_shows_exactly_the_findings_of_the_rules(alice, alice_client):
    rich_inventory(alice)
    report = report_for(alice, timezone.localdate())
    seen_sections = set()
    for section, url in PAGES.items():
        html = alice_client.get(url).content
        expected: dict[str, list[str]] = {}
        for finding in report.findings(section):
            if finding.item is not None:
                expected.setdefault(finding.item, []).append(finding.message)
        shown = {row["name"]: row["findings"] for row in build.list_rows(html) if row["findings"]}
        assert shown == expected, section
        assert build.section_findings(html) == [f.message for f in report.findings(section) if f.item is None], section
        seen_sections.add(section)
    # Sections without item rows show what is missing above their page.
    for section, url in {"subscriptions": "/subscriptions/", "drills": "/drills/", "profile": "/profile/"}.items():
        response = alice_client.get(url)
        expected_missing = [f.message for f in report.findings(section) if f.item is None]
        if section == "subscriptions":
            assert [gap.message for gap in response.context["gaps"]] == expected_missing
        else:
            assert build.section_findings(response.content) == expected_missing, section
        seen_sections.add(section)
    # A section that gets findings but no page showing them would drift unnoticed.
    assert {f.section for f in report.findings()} <= seen_sections


def test_the_dashboard_card_lists_every_finding_with_and_n_more(alice, alice_client):
    rich_inventory(alice)
    response = alice_client.get("/")
    card = next(c for c in response.context["cards"] if c.result.id == "devices.trusted")
    assert len(card.result.findings) > 3
    html = response.content.decode()
    start = html.index('id="rule-devicestrusted"')
    card_html = html[start : html.index("</article>", start)]
    assert build.texts(card_html, "finding-text") == [f.message for f in card.result.findings]
    assert build.texts(card_html, "more-findings")[0].startswith(f"and {len(card.result.findings) - 3} more")


def test_the_desk_trader_page_shows_the_same_findings_in_the_third_person(alice, lena_client):
    rich_inventory(alice)
    html = lena_client.get(f"/desk/traders/{alice.pk}/").content
    report = report_for(alice, timezone.localdate())
    lead_texts = [f.in_voice(LEAD) for r in report.results for f in r.findings]
    # Masked for a lead: the recovery phone is already masked in the snapshot.
    assert build.texts(html, "finding-text") == lead_texts
    assert "Automation 'Login bot' runs on the trader's human login" in lead_texts


# --- Mistakes a refactoring could make, each caught -------------------------------------


def today_statuses(user) -> dict[str, str]:
    return ReadinessSnapshot.objects.get(user=user, date=timezone.localdate()).statuses


def test_device_key_and_automation_writes_refresh_the_stored_score(alice, alice_client):
    today = timezone.localdate()
    alice_client.post("/devices/add/", {"name": "Office workstation", "kind": "desktop", "platforms": ["tws"], "validated_on": today.isoformat()})
    assert today_statuses(alice)["devices.trusted"] == "partial"
    alice_client.post(
        "/keys/add/",
        {"label": "algo", "scopes": ["trade"], "service_account": "on", "created_on": today.isoformat(), "expires_on": "", "fingerprint": "7f3a"},
    )
    assert today_statuses(alice)["credentials.rotation"] == "partial"  # no expiry
    key = ApiKey.objects.get(owner=alice)
    alice_client.post("/automations/add/", {"name": "Bot", "api_key": key.pk, "on_auth_failure": "halt", "fallback_contact": "desk"})
    assert today_statuses(alice)["automation.failsafe"] == "fail"  # no token refresh
    bot_row = Automation.objects.get(owner=alice)
    alice_client.post(f"/automations/{bot_row.pk}/pause/")
    assert today_statuses(alice)["automation.failsafe"] == "na"


def test_key_update_never_changes_the_status(alice, rf):
    key = build.api_key(alice)
    request = rf.post("/")
    request.user = alice
    device_services.key_update(request=request, key=key, data={"status": "revoked", "label": "renamed"})
    key.refresh_from_db()
    assert (key.status, key.label) == ("active", "renamed")


def test_an_automation_cannot_use_another_traders_key(alice, bob, alice_client, rf):
    bobs_key = build.api_key(bob, "bob-key")
    response = alice_client.post("/automations/add/", {"name": "Bot", "api_key": bobs_key.pk, "on_auth_failure": "flatten", "token_refresh": "on"})
    assert response.status_code == 200 and "api_key" in response.context["form"].errors
    request = rf.post("/")
    request.user = alice
    with pytest.raises(ValueError):
        device_services.automation_create(request=request, data={"name": "Bot", "api_key": bobs_key, "on_auth_failure": "flatten"})
    assert not Automation.objects.exists()


def test_the_desk_masks_numbers_and_addresses_in_reasons_and_due_labels(alice, lena):
    today = timezone.localdate()
    build.device(alice, "Phone +1 917 555 0123", kind="mobile", validated_on=today - timedelta(days=360), status="lost")
    build.recovery(alice, "email", "alice.private@example.com", verified_on=today - timedelta(days=175))
    detail = trader_detail(alice, today)
    texts = [text for card in detail.cards for _, text in card.findings] + [card.reason for card in detail.cards] + [line.what for line in detail.due]
    joined = " | ".join(texts)
    assert "917 555" not in joined and "alice.private" not in joined
    assert "*** *** 0123" in joined and "a***@example.com" in joined


def test_the_desk_average_rounds_half_up(alice, lena):
    carl = make_user("carl")
    Desk.objects.get(name="Futures desk").members.add(carl)
    for user, score in ((alice, 72), (carl, 73)):
        build.stored_score(user, timezone.localdate(), score, "at_risk", {})
    table = desk_table(viewer=lena, as_of=timezone.localdate(), query=DeskQuery())
    assert table.average == 73  # 72.5; round() would give 72
