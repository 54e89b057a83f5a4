"""A property test of the importer (issue 10): generated and mutated
documents never make the import raise anything but a refusal; a refused
document changes nothing; an accepted one round-trips, and afterwards every
page of the trader and of their lead answers 200.

Short on every run (profile "ci"); HYPOTHESIS_PROFILE=long runs 1000 examples.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import event, given
from hypothesis import strategies as st

from devices.inventory import FORMAT, dumps, export_inventory
from readiness import rules
from readiness import vocabulary as words
from tests.builders import lead_pages, trader_pages
from tests.conftest import verify_client

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
NOW = timezone.now()

HOSTILE_TEXT = st.sampled_from(["\x00", "\ud800", "\u202e", "a\nb", "password=hunter2", "x" * 300, "", " ", "ß", "😀"])
# Mostly values a trader would type, so that a good share of documents is
# accepted and goes on to the pages; now and then one a hostile file holds.
SAFE_TEXT = st.text(st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=20).filter(str.strip)
TEXT = st.one_of(SAFE_TEXT, SAFE_TEXT, SAFE_TEXT, SAFE_TEXT, HOSTILE_TEXT, st.text(max_size=10))
GOOD_DAYS = st.dates(max_value=TODAY).map(date.isoformat) | st.none()
DAYS = st.one_of(GOOD_DAYS, GOOD_DAYS, GOOD_DAYS, st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "soon"]))
GOOD_MOMENTS = st.datetimes(max_value=NOW.replace(tzinfo=None) - timedelta(days=1), timezones=st.just(UTC)).map(lambda m: m.isoformat().replace("+00:00", "Z"))
MOMENTS = st.one_of(
    GOOD_MOMENTS, GOOD_MOMENTS, GOOD_MOMENTS,
    st.sampled_from(["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "2026-11-01T09:00:00", None]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


def _pick(values) -> st.SearchStrategy:
    return st.sampled_from(sorted(values))


device = st.fixed_dictionaries({
    "name": TEXT, "kind": _pick(words.DEVICE_KINDS), "platforms": st.lists(_pick(words.ACCESS_POINTS), max_size=3, unique=True),
    "validated_on": DAYS, "status": _pick(words.DEVICE_STATUSES), "browser_saved_password": st.booleans(),
})
recovery = st.fixed_dictionaries({"kind": _pick(words.RECOVERY_KINDS), "label": TEXT, "last_verified_on": DAYS})
key = st.fixed_dictionaries({
    "label": st.sampled_from(["algo", "spot", "ref"]) | TEXT, "scopes": st.lists(_pick(words.KEY_SCOPES), max_size=4, unique=True),
    "service_account": st.booleans(), "created_on": DAYS, "last_rotated_on": DAYS,
    "expires_on": st.one_of(st.dates().map(date.isoformat), st.none()), "status": _pick(words.KEY_STATUSES),
    "fingerprint": st.sampled_from(["7f3a", "", "9c", "7f3a9c", "\x00"]), "ip_restricted": st.booleans(),
})
automation = st.fixed_dictionaries({
    "name": TEXT, "api_key": st.sampled_from(["algo", "spot", "ref", None, None]), "token_refresh": st.booleans(),
    "fallback_contact": TEXT, "on_auth_failure": _pick(words.AUTH_FAILURE_ACTIONS), "status": _pick(words.AUTOMATION_STATUSES),
})
subscription = st.fixed_dictionaries({"region": _pick(words.REGIONS), "feed": TEXT, "active": st.booleans()})
drill = st.builds(
    lambda started, minutes, completed, lost: {
        "started_at": started, "finished_at": _later(started, minutes) if completed else None, "lost_device": lost, "completed": completed,
    },
    MOMENTS, st.integers(min_value=-5, max_value=600), st.booleans(), TEXT,
)
risk = st.fixed_dictionaries({
    "rule": st.sampled_from([rule.id for rule in rules.CATALOG] + ["vibes.good"]), "reason": TEXT,
    "until": st.integers(min_value=-30, max_value=95).map(lambda d: (TODAY + timedelta(days=d)).isoformat()),
})
profile = st.fixed_dictionaries({
    "broker": st.just("IBKR") | TEXT, "broker_mfa": st.sampled_from([*words.BROKER_MFA, None]),
    "regions_traded": st.lists(_pick(words.REGIONS), max_size=3, unique=True),
    "interface_plan": st.fixed_dictionaries({task: st.sampled_from([*words.ACCESS_POINTS, None]) for task in words.TASKS}),
})


def _later(started: str | None, minutes: int) -> str | None:
    if started is None:
        return None
    try:
        moment = datetime.fromisoformat(started) + timedelta(minutes=minutes)
    except (ValueError, OverflowError):
        return started
    return moment.isoformat()


documents = st.fixed_dictionaries({
    "format": st.just(FORMAT), "profile": profile,
    "devices": st.lists(device, max_size=3, unique_by=lambda d: d["name"]),
    "recovery_methods": st.lists(recovery, max_size=3, unique_by=lambda d: d["label"]),
    "api_keys": st.lists(key, max_size=3, unique_by=lambda d: d["label"]),
    "automations": st.lists(automation, max_size=2, unique_by=lambda d: d["name"]),
    "subscriptions": st.lists(subscription, max_size=2, unique_by=lambda d: d["feed"]),
    "drills": st.lists(drill, max_size=2), "accepted_risks": st.lists(risk, max_size=2, unique_by=lambda d: d["rule"]),
})


@st.composite
def mutated(draw) -> str:
    """A generated document, sometimes with one value replaced by any JSON, one key dropped or one added."""
    document = draw(documents)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        # Walk down from the top to a (container, key) pair, then change it.
        container, key = document, draw(st.sampled_from(list(document)))
        while isinstance(container[key], dict | list) and container[key] and draw(st.booleans()):
            inner = container[key]
            container, key = inner, draw(st.sampled_from(list(inner) if isinstance(inner, dict) else list(range(len(inner)))))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            container[key] = draw(JSON)
        elif action == "drop":
            del container[key]
        elif isinstance(container, dict):
            container[draw(TEXT)] = draw(JSON)
        else:
            container.append(draw(JSON))
    return json.dumps(document, ensure_ascii=draw(st.booleans()))


@given(text=mutated())
def test_the_importer_refuses_or_round_trips_and_every_page_answers(alice, lena, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("import") / "inventory.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = dumps(export_inventory(alice))
    try:
        call_command("import_inventory", "--user", "alice", str(path))
    except CommandError as refused:
        event("refused")
        assert "nothing was changed" in str(refused)
        assert dumps(export_inventory(alice)) == before
        return
    event("accepted")
    exported = dumps(export_inventory(alice))
    path.write_text(exported)
    call_command("import_inventory", "--user", "alice", str(path))
    assert dumps(export_inventory(alice)) == exported
    trader, lead = verify_client(_client(), alice), verify_client(_client(), lena)
    for page in trader_pages(alice):
        assert trader.get(page).status_code == 200, page
    for page in lead_pages(alice):
        assert lead.get(page).status_code == 200, page


def _client():
    from django.test import Client

    return Client()
