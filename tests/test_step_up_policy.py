"""One declared step-up policy (accounts.policy) covers every view (SECURITY.md 16).

The table is checked against the URLconf, so a new view without a decision
fails here; then every view is requested with a session verified 16 minutes
ago, by GET and by POST, and only the ones the table marks are sent for a
fresh code.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.policy import NAMESPACES, NONE, RECENT, STEP_UP, step_up_policy

pytestmark = pytest.mark.django_db


def routed_views() -> list[tuple[str, URLPattern]]:
    """Every named view of the URLconf with its namespaced name."""

    def walk(resolver, namespace: str):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                yield from walk(pattern, inner)
            elif pattern.name:
                yield f"{namespace}{pattern.name}", pattern

    return list(walk(get_resolver(), ""))


def _gated(pattern: URLPattern) -> bool:
    view = pattern.callback
    return not (getattr(view, "gatecheck_public", False) or getattr(view, "gatecheck_pending_login", False))


GATED = [(name, pattern) for name, pattern in routed_views() if _gated(pattern)]


def url_for(name: str, pattern: URLPattern) -> str:
    keys = pattern.pattern.converters or pattern.pattern.regex.groupindex
    kwargs = {key: ("1" if key in ("id", "object_id") else 999999) for key in keys}
    if "app_label" in kwargs:
        kwargs["app_label"] = "accounts"
    return reverse(name, kwargs=kwargs)


def test_the_policy_names_every_view_outside_the_admin_namespace():
    names = {name for name, _ in GATED}
    undecided = sorted(n for n in names if n not in STEP_UP and n.rpartition(":")[0] not in NAMESPACES)
    assert undecided == []
    assert sorted(set(STEP_UP) - names) == [], "the table names views that are not routed"
    assert set(STEP_UP.values()) <= {RECENT, NONE}


def test_an_undeclared_view_needs_a_fresh_code():
    assert step_up_policy("newapp:new_view") == RECENT


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("name", "pattern"), GATED, ids=[name for name, _ in GATED])
def test_every_view_follows_the_declared_policy(stale_mfa, name, pattern, method):
    url = url_for(name, pattern)
    response = getattr(stale_mfa, method)(url)
    asked = response.status_code == 302 and response["Location"].startswith("/accounts/mfa/confirm/")
    assert asked == (step_up_policy(name) == RECENT), (name, response.status_code, response.get("Location"))


def test_automation_changes_need_a_fresh_code(stale_mfa, alice):
    from devices.models import Automation

    automation = Automation.objects.create(owner=alice, name="ES spread bot", on_auth_failure="halt")
    for url, data in [
        ("/automations/add/", {"name": "Bot 2", "on_auth_failure": "halt"}),
        (f"/automations/{automation.pk}/edit/", {"name": "Renamed", "on_auth_failure": "halt"}),
        (f"/automations/{automation.pk}/pause/", {}),
        (f"/automations/{automation.pk}/resume/", {}),
    ]:
        response = stale_mfa.post(url, data)
        assert response["Location"].startswith("/accounts/mfa/confirm/"), url
    automation.refresh_from_db()
    assert automation.name == "ES spread bot" and automation.status == "active"
    assert Automation.objects.filter(owner=alice).count() == 1
