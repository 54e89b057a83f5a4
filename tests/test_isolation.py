"""Trader isolation (SECURITY.md 19), generated from the URLconf.

Every route that takes an integer id, in any app, is found by walking the
resolver. For each one, bob's object of the right model is built and the
requester (alice, or for desk pages a lead of another desk) asks for it with
GET and POST: the answer is 404 and none of bob's rows change.

The model behind a route comes from TARGETS, keyed by URL-name prefix. A new
id-taking route that matches no prefix FAILS its test case, with a message
saying what to add here, so that no route can escape the matrix.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken, AuditEvent, Desk, TrustedBrowser, User, UserSession
from tests import builders as build
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db


# --- What each id-taking route points at ---------------------------------------


def _authenticator(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Spare phone", confirmed=True)


def _browser_session(user: User) -> UserSession:
    return UserSession.objects.create(user=user, session_key=secrets.token_hex(16))


def _trusted_browser(user: User) -> TrustedBrowser:
    return TrustedBrowser.objects.create(
        user=user, secret_hash="0" * 64, device_id="x", fingerprint="0" * 64, expires_at=timezone.now() + timedelta(days=1)
    )


def _api_token(user: User) -> ApiToken:
    return ApiToken.objects.create(user=user, name="pipeline", scope="read", digest=secrets.token_hex(32), expires_at=timezone.now() + timedelta(days=1))


def _alert_channel(user: User):
    from accounts.models import AlertChannel

    return AlertChannel.objects.create(user=user, name="Slack", url_sealed="x", url_shown="slack://...", events=["bot_down"])


def _incident(user: User):
    """An open incident of a bot of ``user``, who is put on another lead's desk."""
    from devices.models import Heartbeat, Incident

    _desk_trader(user)
    beat = Heartbeat.objects.create(owner=user, automation=build.automation(user, key=build.api_key(user)), period_minutes=5, grace_minutes=2)
    return Incident.objects.create(owner=user, heartbeat=beat, status="down")


def _desk_trader(user: User) -> User:
    """The trader himself: alice is on the requesting lead's desk, anyone
    else is put on another desk with another lead."""
    if not user.desks.exists():
        desk = Desk.objects.create(name=f"Options desk {user.pk}")
        desk.leads.add(make_user(f"olga{user.pk}"))
        desk.members.add(user)
    return user


def _external_identity(user: User):
    from accounts.models import ExternalIdentity

    return ExternalIdentity.objects.create(user=user, issuer="https://idp.example", subject=f"s{user.pk}", linked_via="owner")


def _invitation(user: User):
    """An invitation to the desk of ``user``, which another lead leads."""
    from accounts.models import Invitation

    _desk_trader(user)
    return Invitation.objects.create(email=f"new{user.pk}@example.com", desk=user.desks.first(), expires_at=timezone.now() + timedelta(days=7))


def _leaver_item(user: User):
    """An item of a leaver checklist on the desk of ``user``, which another lead leads."""
    from desk.models import LeaverCheck, LeaverItem

    _desk_trader(user)
    check = LeaverCheck.objects.create(desk=user.desks.first(), leaver=user)
    return LeaverItem.objects.create(check_list=check, kind="key", label="algo")


@dataclass(frozen=True)
class Target:
    build: Callable[[User], models.Model]
    # "trader": alice asks for bob's object; "lead": a desk lead (lena, who
    # leads alice's desk) asks for bob, who is on another desk.
    requester: str = "trader"

    def kwargs(self, obj: models.Model) -> dict[str, int]:
        return {"pk": obj.pk}


TARGETS: dict[str, Target] = {
    "accounts:authenticator_": Target(_authenticator),
    "accounts:session_": Target(_browser_session),
    "accounts:trusted_browser_": Target(_trusted_browser),
    "accounts:api_token_": Target(_api_token),
    "accounts:alert_channel_": Target(_alert_channel),
    "accounts:passkey_": Target(lambda user: build.SoftPasskey(user).device),
    "devices:device_": Target(build.device),
    "devices:recovery_": Target(build.recovery),
    "devices:key_": Target(build.api_key),
    "devices:automation_": Target(lambda user: build.automation(user, key=build.api_key(user))),
    "checklist:subscription_": Target(build.subscription),
    # Still running, so that finish and abandon would have something to change.
    "checklist:drill_": Target(build.running_drill),
    "checklist:risk_": Target(build.accepted_risk),
    "checklist:permission_": Target(build.permission),
    "desk:trader_": Target(_desk_trader, requester="lead"),
    "desk:incident_": Target(_incident, requester="lead"),
    "accounts:sso_": Target(_external_identity),
    "desk:invitation_": Target(_invitation, requester="lead"),
    "desk:leaver_": Target(_leaver_item, requester="lead"),
}


# --- Finding the routes ------------------------------------------------------------

_ID_GROUP = re.compile(r"\(\?P<(\w+)>(?:\\d\+|\[0-9\]\+)\)")


def _id_params(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return [name for name, conv in pattern.converters.items() if isinstance(conv, IntConverter)]
    if isinstance(pattern, RegexPattern):
        return _ID_GROUP.findall(pattern._regex)
    return []


def id_routes(patterns=None, namespace: str = "", prefix: str = "") -> list[tuple[str, str, list[str]]]:
    """(namespaced name, route, id parameters) of every route taking an integer id."""
    found = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part)
            found += id_routes(entry.url_patterns, inner, route)
        elif isinstance(entry, URLPattern):
            # Parameters captured by an including resolver count too.
            params = _id_params(entry.pattern) + [p for p in re.findall(r"<int:(\w+)>", prefix)]
            if params:
                name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
                found.append((name, route, sorted(set(params))))
    return found


ROUTES = id_routes()


def target_for(name: str) -> Target | None:
    matches = [prefix for prefix in TARGETS if name.startswith(prefix)]
    return TARGETS[max(matches, key=len)] if matches else None


# --- Bob's rows, to prove nothing changed ----------------------------------------------


def rows_of(user: User) -> dict[str, str]:
    """Every stored row that belongs to ``user``, serialised, by model.

    Rows are found through any foreign key or many-to-many link to the user
    model. The audit log is left out: it is append-only by design.
    """
    dump = {"accounts.user": serializers.serialize("json", User.objects.filter(pk=user.pk))}
    for model in apps.get_models(include_auto_created=True):
        if model in (AuditEvent, User):
            continue
        links = [f for f in model._meta.get_fields() if f.concrete and f.is_relation and f.related_model is User]
        if not links:
            continue
        query = models.Q()
        for link in links:
            query |= models.Q(**{link.name: user})
        rows = model._base_manager.filter(query).distinct().order_by("pk")
        dump[model._meta.label_lower] = serializers.serialize("json", rows)
    return dump


# --- The matrix ----------------------------------------------------------------------


def test_the_walker_finds_the_id_routes_of_every_app():
    names = {name for name, _, _ in ROUTES}
    assert {"accounts:session_end", "accounts:authenticator_remove", "devices:device_edit", "devices:key_revoke"} <= names


@pytest.fixture
def requesters(alice, lena) -> dict[str, Client]:
    return {"trader": verify_client(Client(), alice), "lead": verify_client(Client(), lena)}


@pytest.mark.parametrize(("name", "route", "params"), ROUTES, ids=[name for name, _, _ in ROUTES])
def test_another_traders_id_is_a_404_and_changes_nothing(name, route, params, alice, bob, requesters):
    target = target_for(name)
    if target is None:
        pytest.fail(
            f"The route {name} ({route}) takes an id, but tests/test_isolation.py does not know which model it "
            f"points at. Add a TARGETS entry for its name prefix so that the isolation matrix covers it."
        )
    client = requesters[target.requester]
    theirs = target.build(bob)
    kwargs = target.kwargs(theirs)
    if sorted(kwargs) != params:
        pytest.fail(f"{name} takes {params}; its TARGETS entry builds {sorted(kwargs)}. Give the entry its own kwargs().")
    url = reverse(name, kwargs=kwargs)
    before = rows_of(bob)

    get = client.get(url)
    if get.status_code == 405:
        # A POST-only view refuses GET whatever the id, so a 405 leaks nothing;
        # prove it by asking for the requester's own object too.
        own = target.build(alice)
        assert client.get(reverse(name, kwargs=target.kwargs(own))).status_code == 405
    else:
        assert get.status_code == 404, f"GET {url} as {target.requester} gave {get.status_code}"
    post = client.post(url, {})
    assert post.status_code == 404, f"POST {url} as {target.requester} gave {post.status_code}"

    assert rows_of(bob) == before
    assert type(theirs)._base_manager.filter(pk=theirs.pk).exists()


def test_a_new_id_route_without_a_target_is_caught():
    from django.urls import path

    new_routes = [path("widgets/<int:pk>/edit/", lambda request, pk: None, name="widget_edit")]
    assert id_routes(new_routes, "widgets") == [("widgets:widget_edit", "widgets/<int:pk>/edit/", ["pk"])]
    # The matrix case for it calls pytest.fail with instructions.
    assert target_for("widgets:widget_edit") is None
