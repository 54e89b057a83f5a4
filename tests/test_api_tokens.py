"""API tokens (SECURITY.md 33) and /api/v1/, through HTTP and the command.

The scope matrix is built from the API's own routes, the way the isolation
matrix is built from the URLconf: a new route without a declared scope
fails here."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken, AuditEvent, Desk, User
from config.api import api
from tests import builders as build
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db


def token_for(user: User, scope: str = "read", days: int = 30) -> str:
    return tokens.create(user=user, name=f"{scope} pipeline", scope=scope, days=days)[1]


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def call(method: str, path: str, secret: str | None = None, body=None, **headers):
    # CSRF checked as a browser would be: a token request needs no CSRF token.
    client = Client(enforce_csrf_checks=True)
    kwargs = {**(bearer(secret) if secret else {}), **headers}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method.lower())(path, **kwargs)


# --- Making a token ------------------------------------------------------------------


def test_a_token_is_made_behind_step_up_shown_once_and_stored_as_a_digest(alice, alice_client, stale_mfa, mailoutbox):
    # A session verified more than 15 minutes ago is sent for a fresh code.
    response = stale_mfa.post("/accounts/security/api-tokens/add/", {"name": "deploy", "scope": "read", "days": "30"})
    assert response.status_code == 302 and "/accounts/mfa/confirm/" in response["Location"]
    assert not ApiToken.objects.exists()

    fresh = verify_client(Client(), alice)
    response = fresh.post("/accounts/security/api-tokens/add/", {"name": "deploy", "scope": "read", "days": "30"}, follow=True)
    page = response.content.decode()
    token = ApiToken.objects.get(user=alice)
    secret = next(word for word in page.replace('"', " ").split() if word.startswith("gc_"))
    assert len(secret) >= 3 + 43  # 256 random bits in URL-safe base64
    assert secret not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert token.digest != secret and len(token.digest) == 64
    # Shown once: the same page again shows nothing.
    assert secret not in fresh.get("/accounts/security/api-tokens/new/").content.decode()
    assert [m.subject for m in mailoutbox] == ["[Gatecheck] A new API token was created"]
    assert secret not in mailoutbox[0].body
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.details["scope"] == "read" and secret not in json.dumps(event.details)
    # Listed on the security page, without the secret.
    security = fresh.get("/accounts/security/").content.decode()
    assert "deploy" in security and "never used" in security and secret not in security


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "x", "scope": "read", "days": "366"}, "days", "365"),
        ({"name": "x", "scope": "desk:read", "days": "30"}, "scope", "valid choice"),
        ({"name": "", "scope": "read", "days": "30"}, "name", "required"),
    ],
)
def test_a_token_form_refuses_next_to_the_field(alice_client, data, field, message):
    response = alice_client.post("/accounts/security/api-tokens/add/", data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not ApiToken.objects.exists()


def test_expiry_is_at_most_a_year_and_desk_tokens_are_for_leads(alice, lena):
    with pytest.raises(tokens.TokenRefused):
        tokens.create(user=alice, name="x", scope="read", days=366)
    with pytest.raises(tokens.TokenRefused):
        tokens.create(user=alice, name="x", scope="desk:read")
    token, _ = tokens.create(user=lena, name="siem", scope="desk:read", days=365)
    assert token.expires_at - token.created_at == timedelta(days=365)


def test_the_command_prints_the_token_once_lists_and_revokes(alice, capsys):
    call_command("api_token", "create", "--user", "alice", "--scope", "inventory:write", "--days", "7")
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("gc_") and secret not in err
    assert call("GET", "/api/v1/readiness", secret).status_code == 200
    call_command("api_token", "list", "--user", "alice")
    listing = capsys.readouterr().out
    assert "inventory:write" in listing and "live" in listing and secret not in listing and "last used" in listing
    token = ApiToken.objects.get(user=alice)
    call_command("api_token", "revoke", str(token.pk))
    assert call("GET", "/api/v1/readiness", secret).status_code == 401
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="365"):
        call_command("api_token", "create", "--user", "alice", "--scope", "read", "--days", "400")


# --- Using one ---------------------------------------------------------------------------


def test_no_wrong_revoked_or_expired_token_gets_in(alice):
    assert call("GET", "/api/v1/readiness").status_code == 401
    response = call("GET", "/api/v1/readiness", "gc_" + "A" * 43)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401 and problem["title"] == "Unauthorized" and problem["type"] == "about:blank"

    secret = token_for(alice)
    assert call("GET", "/api/v1/readiness", secret).status_code == 200
    token = ApiToken.objects.get(user=alice)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert call("GET", "/api/v1/readiness", secret).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(days=1))
    tokens.revoke(token=token, reason="test")
    assert call("GET", "/api/v1/readiness", secret).status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoked", subject=alice).exists()


def test_a_use_is_written_on_the_token_with_time_and_address(alice):
    secret = token_for(alice)
    call("GET", "/api/v1/readiness", secret, REMOTE_ADDR="198.51.100.7")
    token = ApiToken.objects.get(user=alice)
    assert token.last_used_ip == "198.51.100.7"
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


def test_tokens_die_with_the_person(alice, lena, lena_client):
    secret = token_for(alice)
    alice.is_active = False
    alice.save()
    assert call("GET", "/api/v1/readiness", secret).status_code == 401
    alice.is_active = True
    alice.save()
    # Revoked, not merely refused while inactive: coming back does not revive it.
    assert call("GET", "/api/v1/readiness", secret).status_code == 401

    # Deactivation took her off the desk; back on it, her lead resets her factors.
    Desk.objects.get(name="Futures desk").members.add(alice)
    secret = token_for(alice)
    response = lena_client.post(f"/desk/traders/{alice.pk}/mfa-reset/", {"reason": "Lost phone; called back on the desk line", "identity_confirmed": "on"})
    assert response.status_code == 302
    assert call("GET", "/api/v1/readiness", secret).status_code == 401
    assert ApiToken.objects.filter(user=alice, revoked_reason="MFA reset").exists()


def test_a_token_over_its_limit_gets_429_with_retry_after(alice, settings):
    settings.GATECHECK_API_REQUESTS_PER_MINUTE = 3
    secret = token_for(alice)
    answers = [call("GET", "/api/v1/heartbeats", secret) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[3].status_code == 429
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert answers[3].json()["status"] == 429
    # Another token of the same person has its own count.
    assert call("GET", "/api/v1/heartbeats", token_for(alice)).status_code == 200


def test_cors_stays_closed(alice):
    secret = token_for(alice)
    response = call("GET", "/api/v1/readiness", secret, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    preflight = Client().options("/api/v1/readiness", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in preflight


def test_an_unknown_api_path_is_a_problem_not_a_page():
    response = call("GET", "/api/v1/nothing/here")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


def test_the_schema_and_its_reference_page_are_public_and_local():
    schema = Client().get("/api/v1/openapi.json").json()
    assert {path for _, path in NEEDS} == set(schema["paths"])
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    docs = Client().get("/api/v1/docs")
    page = docs.content.decode()
    assert docs.status_code == 200 and "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "<script>" not in page and "style=" not in page  # the strict CSP allows neither


# --- The scope matrix, from the API's routes --------------------------------------------

# What each operation needs, by (method, path). A new operation must be added here.
NEEDS = {
    ("GET", "/api/v1/readiness"): "read",
    ("GET", "/api/v1/inventory"): "read",
    ("PUT", "/api/v1/inventory"): "inventory:write",
    ("GET", "/api/v1/heartbeats"): "read",
    ("POST", "/api/v1/keys/{label}/rotated"): "inventory:write",
    ("GET", "/api/v1/desk/rows"): "desk:read",
    ("GET", "/api/v1/audit-events"): ("read", "desk:read"),
}


def api_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path) for path, operations in api.get_openapi_schema()["paths"].items() for method in operations
    ]


def test_every_api_operation_declares_its_scope():
    assert sorted(api_operations()) == sorted(NEEDS)


@pytest.mark.parametrize("operation", sorted(NEEDS), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("scope", sorted(tokens.SCOPES))
def test_scope_matrix(operation, scope, alice, lena):
    method, path = operation
    owner = lena if scope == "desk:read" else alice
    build.api_key(owner, label="algo-futures")
    secret = token_for(owner, scope)
    url = path.replace("{label}", "algo-futures")
    body = {"format": "gatecheck.inventory/2"} if method == "PUT" else None
    response = call(method, url, secret, body=body)
    needs = NEEDS[operation]
    allowed = any(need in tokens.GRANTS[scope] for need in (needs if isinstance(needs, tuple) else (needs,)))
    if allowed:
        assert response.status_code in (200, 422), response.content  # 422: the minimal document is refused on its merits
    else:
        assert response.status_code == 403, response.content
        assert response.json()["status"] == 403
    # No answer is cached, none opens CORS.
    assert "no-store" in response["Cache-Control"]
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("operation", sorted(NEEDS), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("death", ["revoked", "expired", "deactivated"])
def test_a_dead_token_gets_401_on_every_route(operation, death, lena):
    method, path = operation
    secret = token_for(lena, "desk:read" if NEEDS[operation] == "desk:read" else "inventory:write")
    token = ApiToken.objects.get(user=lena)
    if death == "revoked":
        tokens.revoke(token=token, reason="test")
    elif death == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    else:
        User.objects.filter(pk=lena.pk).update(is_active=False)  # even a bulk update, which skips the revoking receiver
    response = call(method, path.replace("{label}", "algo-futures"), secret, body={} if method != "GET" else None)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"


# --- Isolation ------------------------------------------------------------------------


def test_a_personal_token_never_sees_another_trader(alice, bob):
    build.api_key(bob, label="bob-key")
    build.heartbeat(build.automation(bob, key=build.api_key(bob, label="bob-bot-key")))
    secret = token_for(alice, "inventory:write")
    assert call("GET", "/api/v1/readiness?user=bob", secret).json()["user"] == "alice"
    assert call("GET", "/api/v1/heartbeats", secret).json() == []
    assert call("GET", "/api/v1/inventory", secret).json()["api_keys"] == []
    assert call("POST", "/api/v1/keys/bob-key/rotated", secret).status_code == 404
    events = call("GET", "/api/v1/audit-events", secret).json()["events"]
    assert all("bob" not in (e["subject"], e["actor"]) for e in events)


def test_a_desk_token_sees_its_desks_only(alice, bob, lena, settings):
    settings.GATECHECK_AUDIT_FEED_SETTLE_SECONDS = 0
    other = Desk.objects.create(name="Rates desk")
    other.members.add(bob)
    secret = token_for(lena, "desk:read")
    page = call("GET", "/api/v1/desk/rows", secret).json()
    assert [row["username"] for row in page["rows"]] == ["alice"]
    assert call("GET", f"/api/v1/desk/rows?desk={other.pk}", secret).status_code == 404
    assert call("GET", "/api/v1/desk/rows?sort=nonsense", secret).status_code == 422
    from accounts.audit import record_event

    for person in (alice, bob):
        record_event(action="mfa.step_up", subject=person, object_label="Phone +1 212 555 0142", details={"name": ["a", "b"]})
    events = call("GET", "/api/v1/audit-events", secret).json()["events"]
    assert [e["object_label"] for e in events if e["subject"] == "alice"] == ["Phone +1 *** *** 0142"]
    assert "bob" not in {e["subject"] for e in events} and "alice" in {e["subject"] for e in events}
    # A lead reads what happened, never the address or the details (old values, free text).
    assert all(e["ip"] is None and e["details"] == {} for e in events)
    # Lead reads through the API are audited like the desk page.
    assert AuditEvent.objects.filter(action="desk.viewed", actor=lena, details__via="api").exists()
    assert AuditEvent.objects.filter(action="audit.exported", actor=lena).exists()


def test_a_desk_token_follows_its_owners_lead_rights(alice, bob, lena):
    secret = token_for(lena, "desk:read")
    Desk.objects.get(name="Futures desk").leads.remove(lena)
    assert call("GET", "/api/v1/desk/rows", secret).status_code == 403
    boss = make_user("boss", is_superuser=True, is_staff=True)
    Desk.objects.create(name="Rates desk").members.add(bob)
    rows = call("GET", "/api/v1/desk/rows?sort=name", token_for(boss, "desk:read")).json()["rows"]
    assert [r["username"] for r in rows] == ["alice", "bob"]


def test_desk_rows_follow_the_desk_pages_filters_and_sorts(alice, lena):
    extra = make_user("zed")
    Desk.objects.get(name="Futures desk").members.add(extra)
    build.ready_inventory(alice)
    from checklist.services import snapshots_refresh

    snapshots_refresh([alice.pk, extra.pk])
    secret = token_for(lena, "desk:read")
    by_score = [r["username"] for r in call("GET", "/api/v1/desk/rows?sort=score&dir=desc", secret).json()["rows"]]
    assert by_score == ["alice", "zed"]
    assert [r["username"] for r in call("GET", "/api/v1/desk/rows?q=ze", secret).json()["rows"]] == ["zed"]
    row = call("GET", "/api/v1/desk/rows?q=alice", secret).json()["rows"][0]
    from readiness.rules import RULE_IDS

    assert set(row["rules"]) == set(RULE_IDS) and row["score"] is not None


# --- Audit feed -------------------------------------------------------------------------


def test_the_audit_feed_pages_by_cursor_without_gaps_or_repeats(alice, settings):
    settings.GATECHECK_AUDIT_FEED_SETTLE_SECONDS = 0
    for n in range(7):
        build.api_key(alice, label=f"key-{n}")
    secret = token_for(alice)
    seen, after = [], 0
    while True:
        page = call("GET", f"/api/v1/audit-events?after={after}&limit=3", secret).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        seen += [e["id"] for e in page["events"]]
        after = page["next_after"]
    expected = list(AuditEvent.objects.for_user(alice).order_by("pk").values_list("pk", flat=True))
    assert seen == expected and len(seen) == len(set(seen))
    assert call("GET", "/api/v1/audit-events?limit=0", secret).status_code == 422


def test_the_audit_feed_holds_back_an_event_still_settling(alice):
    secret = token_for(alice)  # writes api_token.created just now
    assert call("GET", "/api/v1/audit-events", secret).json()["events"] == []


# --- Recorded evidence, and the inventory write ----------------------------------------------


def test_a_recorded_rotation_changes_the_rule_and_shows_as_recorded(alice, lena_client):
    old = timezone.localdate() - timedelta(days=200)
    build.api_key(alice, label="algo-futures", created_on=old, last_rotated_on=old)
    secret = token_for(alice, "inventory:write")
    before = {r["id"]: r["status"] for r in call("GET", "/api/v1/readiness", secret).json()["rules"]}
    response = call("POST", "/api/v1/keys/algo-futures/rotated", secret, body={"fingerprint": "9Q2x"})
    assert response.status_code == 200, response.content
    assert response.json()["last_rotated_on"] == timezone.localdate().isoformat()
    after = {r["id"]: r["status"] for r in call("GET", "/api/v1/readiness", secret).json()["rules"]}
    assert before["credentials.rotation"] != "pass" and after["credentials.rotation"] == "pass"
    page = lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()
    assert "Recorded by pipeline" in page and "read pipeline" not in page
    assert AuditEvent.objects.filter(action="key.rotation_recorded", subject=alice, actor=alice).exists()
    # Through the edit form: the same date keeps the evidence, another date is the trader's word.
    key = alice.api_keys.get()
    form = {"label": key.label, "scopes": key.scopes, "created_on": key.created_on.isoformat(), "fingerprint": key.fingerprint,
            "last_rotated_on": key.last_rotated_on.isoformat(), "expires_on": ""}
    alice_client = verify_client(Client(), alice)
    assert alice_client.post(f"/keys/{key.pk}/edit/", form).status_code == 302
    assert alice.api_keys.get().rotation_recorded_at is not None
    form["last_rotated_on"] = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert alice_client.post(f"/keys/{key.pk}/edit/", form).status_code == 302
    key.refresh_from_db()
    assert key.last_rotated_on == timezone.localdate() - timedelta(days=2) and key.rotation_recorded_at is None
    assert "Recorded by pipeline" not in lena_client.get(f"/desk/traders/{alice.pk}/").content.decode()


def test_a_recorded_rotation_refuses_a_whole_key_as_fingerprint(alice):
    build.api_key(alice, label="algo-futures")
    secret = token_for(alice, "inventory:write")
    response = call("POST", "/api/v1/keys/algo-futures/rotated", secret, body={"fingerprint": "sk_live_0123456789abcdef"})
    assert response.status_code == 422
    assert alice.api_keys.get().rotation_recorded_at is None


def test_put_inventory_goes_through_the_importer(alice):
    secret = token_for(alice, "inventory:write")
    document = call("GET", "/api/v1/inventory", secret).json()
    document["api_keys"] = [{"label": "algo", "scopes": ["trade"], "service_account": False, "created_on": "2026-10-01",
                             "last_rotated_on": None, "expires_on": None, "status": "active", "fingerprint": "", "ip_restricted": False}]
    response = call("PUT", "/api/v1/inventory", secret, body=document)
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["api_keys"] == 1
    assert list(alice.api_keys.values_list("label", flat=True)) == ["algo"]

    document["api_keys"][0]["fingerprint"] = "sk_live_0123456789abcdef"
    refused = call("PUT", "/api/v1/inventory", secret, body=document)
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["errors"][0]["path"] == "api_keys[0].fingerprint"
    assert alice.api_keys.get().fingerprint == ""  # nothing changed
    assert call("PUT", "/api/v1/inventory", token_for(alice, "read"), body=document).status_code == 403


def test_a_file_that_keeps_the_recorded_date_keeps_the_evidence(alice):
    build.api_key(alice, label="algo-futures", created_on=timezone.localdate() - timedelta(days=200))
    secret = token_for(alice, "inventory:write")
    bare = Client().post("/api/v1/keys/algo-futures/rotated", content_type="application/json", **bearer(secret))  # no body at all
    assert bare.status_code == 200, bare.content
    document = call("GET", "/api/v1/inventory", secret).json()
    assert call("PUT", "/api/v1/inventory", secret, body=document).status_code == 200
    assert alice.api_keys.get().rotation_recorded_at is not None
    document["api_keys"][0]["last_rotated_on"] = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert call("PUT", "/api/v1/inventory", secret, body=document).status_code == 200
    assert alice.api_keys.get().rotation_recorded_at is None  # another date is the trader's word
