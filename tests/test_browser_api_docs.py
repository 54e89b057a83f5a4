"""The API reference page (/api/v1/docs) works under the strict CSP, from
local files: Swagger UI renders the schema in Chromium, the browser reports
no CSP violation and loads nothing from another origin."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_reference_renders_under_the_strict_csp(page, live_server):
    violations, foreign = [], []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    page.on("request", lambda request: foreign.append(request.url) if not request.url.startswith((live_server.url, "data:")) else None)
    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert "Gatecheck API" in page.inner_text(".swagger-ui .info .title")
    page.get_by_text("/api/v1/readiness", exact=True).wait_for(timeout=15000)
    assert violations == []
    assert foreign == []
