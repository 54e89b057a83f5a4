"""The third gate: trading permissions and rule permissions.cleared."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from devices.models import Permission
from readiness.rules import Permission as P
from readiness.rules import Profile, evaluate, upcoming_dates
from tests import builders as build
from tests.test_rules import AS_OF, days_ago, full_inventory


def cleared(products, regions, *permissions):
    inventory = replace(
        full_inventory(),
        profile=replace(full_inventory().profile, products_traded=tuple(products), regions_traded=tuple(regions)),
        permissions=tuple(permissions),
    )
    return evaluate(inventory, AS_OF).result("permissions.cleared")


def test_not_applicable_without_products_or_regions():
    assert cleared((), ("US",)).status == "na"
    assert cleared(("stocks",), ()).status == "na"


def test_every_needed_pair_granted_passes_and_extra_pairs_are_ignored():
    r = cleared(("stocks", "options"), ("US",), P("stocks", "US", "granted"), P("options", "US", "granted"), P("futures", "JP", "not_requested"))
    assert (r.status, r.findings) == ("pass", ())


def test_pending_only_is_partial_with_a_warning():
    r = cleared(("options",), ("HK",), P("options", "HK", "pending", days_ago(1)))
    assert r.status == "partial" and r.points == 5
    assert [(f.severity, f.item, f.message) for f in r.findings] == [
        ("warning", "options/HK", f"The permission for options in HK is still pending since {days_ago(1).isoformat()}")
    ]


def test_one_pair_not_requested_fails_and_a_missing_one_is_listed_too():
    r = cleared(("stocks", "options"), ("US", "HK"), P("stocks", "US", "granted"), P("stocks", "HK", "granted"), P("options", "US", "not_requested"))
    assert r.status == "fail"
    assert [(f.severity, f.item, f.message) for f in r.findings] == [
        ("critical", "options/US", "You trade options in US with no trading permission for it"),
        ("critical", None, "You trade options in HK with no trading permission for it"),
    ]
    assert r.reason == "You trade options in US with no trading permission for it (and 1 more)"


def test_a_pending_request_older_than_two_days_is_due():
    inventory = replace(full_inventory(), permissions=(P("options", "HK", "pending", days_ago(3)),))
    due = [i for i in upcoming_dates(inventory, AS_OF) if i.kind == "permission_pending"]
    assert [(i.due_on, i.what) for i in due] == [(days_ago(1), "Ask the broker about the pending permission for options in HK")]
    assert due[0].overdue(AS_OF)


def test_a_lead_reads_it_in_the_third_person():
    r = cleared(("options",), ("HK",))
    assert r.lead_reason == "The trader trades options in HK with no trading permission for it"


# --- The article's case -------------------------------------------------------------


def test_a_trader_switching_to_hk_options_in_a_hurry_is_warned_before_the_order_is_refused(alice, alice_client):
    build.prepared_trader(alice)
    assert alice_client.get("/api/readiness/").json()["score"] == 100
    # A volatile session: she adds HK options to what she trades.
    profile = alice.trading_profile
    profile.products_traded = ["stocks", "options"]
    profile.save()
    data = {r["id"]: r for r in alice_client.get("/api/readiness/").json()["rules"]}
    perms = data["permissions.cleared"]
    assert perms["status"] == "fail"
    assert [f["message"] for f in perms["findings"]] == [
        "You trade options in US with no trading permission for it",
        "You trade options in HK with no trading permission for it",
    ]
    # The page lists the gap one click from a pre-filled form.
    page = alice_client.get("/permissions/")
    gaps = page.context["gaps"]
    assert [(product, region) for _, product, region in gaps] == [("options", "US"), ("options", "HK")]
    form = alice_client.get("/permissions/add/?product=options&region=HK").context["form"]
    assert (form.initial["product"], form.initial["region"]) == ("options", "HK")
    # She asks the broker today: pending, then granted two days later.
    today = timezone.localdate()
    alice_client.post("/permissions/add/", {"product": "options", "region": "HK", "status": "pending", "requested_on": today.isoformat()})
    alice_client.post("/permissions/add/", {"product": "options", "region": "US", "status": "granted", "requested_on": ""})
    assert {r["id"]: r for r in alice_client.get("/api/readiness/").json()["rules"]}["permissions.cleared"]["status"] == "partial"
    hk = Permission.objects.get(owner=alice, product="options", region="HK")
    alice_client.post(f"/permissions/{hk.pk}/edit/", {"product": "options", "region": "HK", "status": "granted", "requested_on": today.isoformat()})
    assert {r["id"]: r for r in alice_client.get("/api/readiness/").json()["rules"]}["permissions.cleared"]["status"] == "pass"


def test_the_form_refuses_a_duplicate_pair_a_future_date_and_pending_without_a_date(alice, alice_client):
    build.permission(alice, "stocks", "US")
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    errors = alice_client.post("/permissions/add/", {"product": "stocks", "region": "US", "status": "granted"}).context["form"].errors
    assert "already have this permission" in errors["region"][0]
    data = {"product": "options", "region": "US", "status": "pending", "requested_on": tomorrow}
    errors = alice_client.post("/permissions/add/", data).context["form"].errors
    assert "in the future" in errors["requested_on"][0]
    errors = alice_client.post("/permissions/add/", {"product": "options", "region": "US", "status": "pending"}).context["form"].errors
    assert "needs its date" in errors["requested_on"][0]
    assert Permission.objects.filter(owner=alice).count() == 1


def test_the_list_page_shows_each_rows_findings(alice, alice_client):
    build.profile(alice, regions_traded=["HK"], products_traded=["options"])
    build.permission(alice, "options", "HK", status="pending", requested_on=timezone.localdate() - timedelta(days=1))
    [row] = build.list_rows(alice_client.get("/permissions/").content)
    assert row["tag"] == ["Pending"]
    assert row["findings"][0].startswith("The permission for options in HK is still pending")


def test_profile_broker_mfa_v2_values_score_as_catalog_v2_says():
    for mfa, status in (("mobile_push", "pass"), ("email", "partial"), ("sms", "partial")):
        inventory = replace(full_inventory(), profile=Profile(broker_mfa=mfa))
        assert evaluate(inventory, AS_OF).result("mfa.broker").status == status


# --- Broker catalogs ------------------------------------------------------------------

PROFILE = {
    "broker": "IBKR", "broker_mfa": "ib_key", "regions_traded": ["US"], "plan_complex_orders": "tws",
    "plan_transfers_statements": "client_portal", "plan_alerts_light_execution": "mobile", "support_contact": "",
}


def test_a_second_factor_the_broker_does_not_offer_is_refused_in_the_form(alice, alice_client):
    response = alice_client.post("/profile/", {**PROFILE, "broker": "SCHWAB", "broker_mfa": "ib_key", "plan_complex_orders": "client_portal"})
    errors = response.context["form"].errors
    assert "does not offer this" in errors["broker_mfa"][0]
    choices = [code for code, _ in response.context["form"].fields["broker_mfa"].choices]
    assert "ib_key" not in choices and "mobile_push" in choices


def test_the_brokers_names_and_codes_are_used_in_the_plan_and_device_forms(alice, alice_client):
    build.profile(alice, broker="ALPACA", broker_mfa="authenticator_app")
    form = alice_client.get("/profile/").context["form"]
    plan = dict(form.fields["plan_complex_orders"].choices)
    assert "tws" not in plan and plan["api"] == "Alpaca Trading API"
    device_form = alice_client.get("/devices/add/").context["form"]
    assert dict(device_form.fields["platforms"].choices) == {
        "client_portal": "Alpaca dashboard", "mobile": "Alpaca mobile app", "api": "Alpaca Trading API",
    }
    response = alice_client.post("/devices/add/", {"name": "Desk", "kind": "desktop", "platforms": ["tws"], "validated_on": ""})
    assert "does not offer tws" in response.context["form"].errors["platforms"][0]


def test_an_other_broker_accepts_every_code():
    from readiness.brokers import catalog_for
    from readiness.vocabulary import ACCESS_POINTS, BROKER_MFA

    other = catalog_for("OTHER")
    assert set(other.access_points) == set(ACCESS_POINTS) and all(other.offers_mfa(m) for m in BROKER_MFA)


def test_changing_broker_names_the_records_that_no_longer_fit(alice, alice_client):
    build.profile(alice)
    build.device(alice, "Office workstation", platforms=("tws", "client_portal"))
    data = {**PROFILE, "broker": "TASTYTRADE", "broker_mfa": "sms", "plan_complex_orders": "desktop"}
    response = alice_client.post("/profile/", data, follow=True)
    notes = [str(m) for m in response.context["messages"]]
    assert "Device 'Office workstation' uses Trader Workstation, which tastytrade does not offer: edit its access points." in notes


def test_the_drill_prints_the_brokers_own_lost_device_procedure(alice, alice_client):
    build.profile(alice)
    phone = build.device(alice, "iPhone", kind="mobile", platforms=("mobile",))
    build.device(alice, "Office workstation")
    alice_client.post("/drills/start/", {"lost_device": phone.pk})
    steps = {s.title: s.detail for s in alice.drill_steps.all()}
    assert "Migrate IB Key" in steps["If the second factor went with it (Interactive Brokers)"]
