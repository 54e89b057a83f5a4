"""Schemathesis (PyPI, run as its own process) against /api/v1/ on a live
server, once with each token scope. Every check runs (tests/data/schemathesis.toml
states the few schema-valid requests that may still be refused, and why);
the run must report no failure: no 5xx, no answer that breaks the schema,
no 2xx for a request the schema calls invalid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accounts import tokens
from tests import builders as build

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(__file__).parent / "data" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.parametrize("scope", ["read", "inventory:write", "desk:read"])
def test_schemathesis_finds_no_failure(live_server, settings, alice, lena, scope):
    settings.GATECHECK_API_REQUESTS_PER_MINUTE = 10**6
    build.ready_inventory(alice)
    build.api_key(alice, label="algo-futures")
    owner = lena if scope == "desk:read" else alice
    secret = tokens.create(user=owner, name="schemathesis", scope=scope)[1]
    run = subprocess.run(
        [
            str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG), "run", f"{live_server.url}/api/v1/openapi.json",
            "-H", f"Authorization: Bearer {secret}", "--checks", "all", "--max-examples", "25", "--seed", "7",
            "--request-timeout", "30", "--suppress-health-check", "all",
        ],
        capture_output=True, text=True, timeout=600,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "7 passed" in report or "Tested: 7" in report, report[-3000:]
    assert secret not in report
