"""The broker catalogs (CHECKLIST.md, "Brokers (v2)"): pure data, checked for shape and the spec's rules."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from readiness import brokers
from readiness.brokers import ACCESS_POINT_CODES, BROKER_CODES, BROKERS, MFA_CODES, MFA_LABELS, catalog_for
from readiness.vocabulary import ACCESS_POINTS, BROKER_MFA, SUITABLE_ACCESS_POINTS, TASKS

SOURCE = Path(brokers.__file__)
REAL = [code for code in BROKER_CODES if code != "OTHER"]


def test_every_broker_code_has_a_catalog_and_the_codes_match():
    assert tuple(BROKERS) == BROKER_CODES == ("IBKR", "SCHWAB", "TASTYTRADE", "TRADESTATION", "SAXO", "ALPACA", "OTHER")
    for code, catalog in BROKERS.items():
        assert catalog.code == code and catalog.name


def test_the_access_point_and_mfa_codes_are_the_v2_ones():
    assert set(ACCESS_POINT_CODES) == set(ACCESS_POINTS)
    assert set(MFA_CODES) == set(BROKER_MFA) | {"mobile_push", "email"}
    assert set(MFA_LABELS) == set(MFA_CODES) and all(MFA_LABELS.values())


@pytest.mark.parametrize("code", BROKER_CODES)
def test_every_offered_code_is_valid_and_named(code):
    catalog = BROKERS[code]
    assert catalog.access_points, "a broker offers at least one access point"
    assert set(catalog.access_points) <= set(ACCESS_POINT_CODES)
    for point, name in catalog.access_points.items():
        assert isinstance(name, str) and name.strip() == name and name


@pytest.mark.parametrize("code", BROKER_CODES)
def test_mfa_values_are_valid_and_none_is_always_allowed(code):
    catalog = BROKERS[code]
    assert catalog.mfa <= set(MFA_CODES)
    assert "none" in catalog.mfa
    assert catalog.offers_mfa(None) and catalog.offers_mfa("none")


@pytest.mark.parametrize("code", BROKER_CODES)
def test_the_suitable_table_is_full_and_only_uses_offered_codes(code):
    catalog = BROKERS[code]
    assert set(catalog.suitable) == set(TASKS)
    for task, points in catalog.suitable.items():
        assert points, f"{code}: no access point suits {task}"
        assert points <= set(catalog.access_points), f"{code}: {task} suits a code the broker does not offer"


@pytest.mark.parametrize("code", BROKER_CODES)
def test_recovery_and_api_facts_are_plain_words(code):
    catalog = BROKERS[code]
    assert catalog.lost_device_steps and all(isinstance(s, str) and s for s in catalog.lost_device_steps)
    assert catalog.support and catalog.api_session
    assert catalog.heartbeat_minutes is None or (isinstance(catalog.heartbeat_minutes, int) and catalog.heartbeat_minutes > 0)


@pytest.mark.parametrize("code", BROKER_CODES)
def test_every_catalog_cites_a_source(code):
    catalog = BROKERS[code]
    assert catalog.sources
    if code != "OTHER":  # OTHER holds no broker facts; it cites the spec
        assert all(s.startswith("https://") for s in catalog.sources)


@pytest.mark.parametrize("code", REAL)
def test_every_cited_url_appears_in_a_comment(code):
    # Each source must be named by a comment right above a fact, not only listed.
    comments = "\n".join(line for line in SOURCE.read_text().splitlines() if line.lstrip().startswith("#"))
    for url in BROKERS[code].sources:
        assert url in comments, url


def test_the_module_comments_name_a_url_or_say_not_found():
    text = SOURCE.read_text()
    assert "not found in the broker's own pages (searched:" in text
    assert len(re.findall(r"# https://", text)) >= 20


def test_ibkr_matches_the_v1_names_and_table_exactly():
    ibkr = BROKERS["IBKR"]
    assert dict(ibkr.access_points) == dict(ACCESS_POINTS)
    assert dict(ibkr.access_points) == {
        "tws": "Trader Workstation",
        "desktop": "IBKR Desktop",
        "client_portal": "Client Portal",
        "mobile": "IBKR Mobile",
        "api": "Programmatic API",
    }
    assert dict(ibkr.suitable) == dict(SUITABLE_ACCESS_POINTS)
    assert ibkr.mfa == frozenset({"hardware_key", "ib_key", "authenticator_app", "sms", "none"})  # the v1 values, so existing profiles stay valid


def test_ib_key_is_ibkr_only():
    assert [code for code, c in BROKERS.items() if "ib_key" in c.mfa] == ["IBKR", "OTHER"]
    assert "ib_key" in BROKERS["IBKR"].mfa
    for code in REAL:
        if code != "IBKR":
            assert not BROKERS[code].offers_mfa("ib_key")


def test_mobile_push_is_another_brokers_own_app():
    assert "mobile_push" not in BROKERS["IBKR"].mfa
    assert "mobile_push" in BROKERS["SCHWAB"].mfa and "mobile_push" in BROKERS["SAXO"].mfa


def test_other_offers_every_code_and_every_mfa_value_with_generic_names():
    other = BROKERS["OTHER"]
    assert set(other.access_points) == set(ACCESS_POINT_CODES)
    assert other.mfa == frozenset(MFA_CODES)
    assert dict(other.suitable) == dict(SUITABLE_ACCESS_POINTS)
    for name in other.access_points.values():
        assert not re.search(r"IBKR|Trader Workstation|Schwab|tasty|TradeStation|Saxo|Alpaca", name)


def test_ibkr_suggests_an_api_heartbeat_within_the_gateway_timeout():
    ibkr = BROKERS["IBKR"]
    assert ibkr.heartbeat_minutes is not None and 1 <= ibkr.heartbeat_minutes < 5
    assert "tickle" in ibkr.api_session and "Sunday" in ibkr.api_session


def test_token_based_heartbeats_fall_inside_the_token_lifetime():
    assert BROKERS["TASTYTRADE"].heartbeat_minutes < 15
    assert BROKERS["TRADESTATION"].heartbeat_minutes < 20


def test_a_code_not_offered_is_not_offered():
    assert not BROKERS["TASTYTRADE"].offers("tws")
    assert not BROKERS["ALPACA"].offers("desktop")
    assert BROKERS["SAXO"].offers("tws")
    assert BROKERS["ALPACA"].point_name("api") == "Alpaca Trading API"
    assert BROKERS["ALPACA"].point_name("tws") == "Trader Workstation"  # falls back to the v1 name


def test_unsourced_fields_name_real_fields():
    fields = {"access_points", "mfa", "suitable", "lost_device_steps", "support", "api_session", "heartbeat_minutes"}
    for catalog in BROKERS.values():
        for entry in catalog.unsourced:
            name, _, detail = entry.partition(":")
            assert name in fields, entry
            if name == "access_points" and detail:
                assert detail in catalog.access_points
            if name == "mfa" and detail:
                assert detail in catalog.mfa


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "IBKR"), ("", "IBKR"), ("IBKR", "IBKR"), ("saxo", "SAXO"), (" Alpaca ", "ALPACA"), ("ROBINHOOD", "OTHER"), ("OTHER", "OTHER")],
)
def test_catalog_for(given, expected):
    assert catalog_for(given).code == expected


def test_catalogs_are_immutable():
    ibkr = BROKERS["IBKR"]
    with pytest.raises(TypeError):
        ibkr.access_points["tws"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        ibkr.suitable["complex_orders"] = frozenset()  # type: ignore[index]
    with pytest.raises(AttributeError):
        ibkr.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        BROKERS["X"] = ibkr  # type: ignore[index]


def test_the_module_imports_only_the_standard_library_and_the_vocabulary():
    tree = ast.parse(SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("readiness." + node.module if node.level else node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) <= {"readiness.vocabulary"}
