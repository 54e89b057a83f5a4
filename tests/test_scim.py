"""SCIM 2.0 at /scim/v2/ (issue 22, part 3; SECURITY.md 33): scim2-tester, run
as its own process against a live server, passes every check; tokens from
the command; the lookups identity providers sync with; offboarding by
``active: false`` and DELETE; a bounded number of queries per person."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent, Desk, ScimToken, User
from desk.models import LeaverCheck
from tests import builders as build

from .conftest import make_user, verify_client

CLIENT_PYTHON = Path(sys.executable).parent.parent / "clients" / "bin" / "python"
SCIM_CHECK = Path(__file__).parent / "clients" / "scim_check.py"
JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def new_token(name: str = "okta") -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("scim_token", "create", name, stdout=out, stderr=err)
    return out.getvalue().strip()


@pytest.fixture
def scim(db):
    token = new_token()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.token = token
    return client


def post_user(scim: Client, user_name: str, **extra):
    body = {"schemas": [USER_SCHEMA], "userName": user_name, "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": user_name, "type": "work", "primary": True}], **extra}
    return scim.post("/scim/v2/Users", json.dumps(body), content_type=JSON)


def patch(scim: Client, path: str, *operations: dict):
    return scim.patch(path, json.dumps({"schemas": [PATCH_SCHEMA], "Operations": list(operations)}), content_type=JSON)


@pytest.mark.django_db(transaction=True)
def test_scim2_tester_passes_every_check(live_server):
    assert CLIENT_PYTHON.exists(), "the outside clients are missing: run make test (it installs tests/clients/requirements.txt)"
    token = new_token("tester")
    result = subprocess.run(
        [str(CLIENT_PYTHON), str(SCIM_CHECK), f"{live_server.url}/scim/v2"],
        env={"SCIM_TOKEN": token, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "'SUCCESS': " in result.stdout.splitlines()[-1] and "ERROR" not in result.stdout
    # The token's use is recorded.
    assert ScimToken.objects.get(name="tester").last_used_ip == "127.0.0.1"


def test_a_request_without_a_live_token_is_refused(scim):
    assert Client().get("/scim/v2/Users").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer scim_wrong").get("/scim/v2/Users").status_code == 401
    assert scim.get("/scim/v2/Users").status_code == 200
    call_command("scim_token", "revoke", "okta", stdout=io.StringIO())
    assert scim.get("/scim/v2/Users").status_code == 401
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"scim_token.created", "scim_token.revoked"}
    # An API token or a session is no SCIM credential.
    alice = make_user("alice")
    assert verify_client(Client(), alice).get("/scim/v2/Users").status_code == 401


def test_the_command_prints_the_token_once_and_lists_none(db):
    token = new_token("entra")
    assert token.startswith("scim_") and len(token) > 40
    assert ScimToken.objects.get().digest != token and token not in repr(list(ScimToken.objects.values()))
    out = io.StringIO()
    call_command("scim_token", "list", stdout=out)
    assert "entra" in out.getvalue() and token not in out.getvalue()


def test_lookup_by_username_is_case_insensitive_and_paged(scim):
    for i in range(5):
        assert post_user(scim, f"trader{i}@example.com").status_code == 201
    found = scim.get('/scim/v2/Users?filter=userName eq "Trader3@Example.com"').json()
    assert found["totalResults"] == 1 and found["Resources"][0]["userName"] == "trader3@example.com"
    page = scim.get("/scim/v2/Users?startIndex=2&count=2").json()
    assert page["totalResults"] == 5 and [r["userName"] for r in page["Resources"]] == ["trader1@example.com", "trader2@example.com"]
    assert post_user(scim, "TRADER1@example.com").status_code == 409


def test_desks_are_groups_with_their_members(scim, alice):
    desk = Desk.objects.create(name="Futures desk")
    ann = post_user(scim, "ann@example.com").json()
    group = scim.get('/scim/v2/Groups?filter=displayName eq "futures desk"').json()["Resources"][0]
    assert group["id"] == str(desk.pk)
    # Entra's way of adding and removing members.
    added = [{"value": ann["id"]}, {"value": str(alice.pk)}]
    assert patch(scim, f"/scim/v2/Groups/{desk.pk}", {"op": "Add", "path": "members", "value": added}).status_code in (200, 204)
    assert set(desk.members.values_list("username", flat=True)) == {"ann@example.com", "alice"}
    patch(scim, f"/scim/v2/Groups/{desk.pk}", {"op": "Remove", "path": "members", "value": [{"value": str(alice.pk)}]})
    assert list(desk.members.values_list("username", flat=True)) == ["ann@example.com"]


def test_active_false_offboards_on_the_very_next_request(scim, lena, alice, alice_client):
    build.api_key(alice, label="algo-futures", fingerprint="9f2c")
    assert alice_client.get("/").status_code == 200
    response = patch(scim, f"/scim/v2/Users/{alice.pk}", {"op": "replace", "value": {"active": False}})
    assert response.status_code in (200, 204)
    assert alice_client.get("/")["Location"].startswith("/accounts/login/")
    assert not User.objects.get(pk=alice.pk).is_active
    event = AuditEvent.objects.get(action="user.deactivated", subject=alice)
    assert event.details["via"] == "scim"
    check = LeaverCheck.objects.get(leaver=alice)
    assert list(check.items.values_list("label", "detail")) == [("algo-futures", "…9f2c")]


def test_delete_deactivates_keeps_the_account_and_answers_404(scim, alice):
    build.api_key(alice)
    assert scim.delete(f"/scim/v2/Users/{alice.pk}").status_code == 204
    assert scim.get(f"/scim/v2/Users/{alice.pk}").status_code == 404
    alice.refresh_from_db()
    assert not alice.is_active and alice.api_keys.count() == 1
    assert AuditEvent.objects.filter(action="user.deactivated", subject=alice, details__via="scim").exists()


def test_a_sync_takes_a_fixed_number_of_queries_per_person(scim):
    def sync(names: list[str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            for name in names:
                scim.get(f'/scim/v2/Users?filter=userName eq "{name}"')
                post_user(scim, name)
        return len(queries)

    first = sync([f"a{i}@example.com" for i in range(5)])
    later = sync([f"b{i}@example.com" for i in range(5)])  # with twice the people there
    assert later <= first, (first, later)
    assert first / 5 <= 20


def test_provisioning_never_touches_an_administrator(scim):
    root = make_user("root", is_superuser=True, is_staff=True)
    assert patch(scim, f"/scim/v2/Users/{root.pk}", {"op": "replace", "value": {"userName": "root2", "active": False}}).status_code == 403
    assert scim.delete(f"/scim/v2/Users/{root.pk}").status_code == 403
    root.refresh_from_db()
    assert root.username == "root" and root.is_active


def test_reactivation_only_undoes_provisionings_own_deactivation(scim, lena, alice, bob):
    lena_client = verify_client(Client(), lena)
    lena_client.post(f"/desk/traders/{alice.pk}/deactivate/", {"confirm": "on"})
    assert patch(scim, f"/scim/v2/Users/{alice.pk}", {"op": "replace", "value": {"active": True}}).status_code == 403
    assert not User.objects.get(pk=alice.pk).is_active
    patch(scim, f"/scim/v2/Users/{bob.pk}", {"op": "replace", "value": {"active": False}})
    assert patch(scim, f"/scim/v2/Users/{bob.pk}", {"op": "replace", "value": {"active": True}}).status_code in (200, 204)
    assert User.objects.get(pk=bob.pk).is_active
    assert AuditEvent.objects.filter(action="user.reactivated", subject=bob).exists()


def test_changes_are_audited_with_the_token_and_address_and_a_new_email_is_a_security_change(scim, alice):
    from django.core import mail

    patch(scim, f"/scim/v2/Users/{alice.pk}", {"op": "replace", "path": "emails", "value": [{"value": "alice.new@example.com"}]})
    alice.refresh_from_db()
    assert alice.email == "alice.new@example.com" and not alice.email_verified
    assert AuditEvent.objects.filter(action="email.changed", subject=alice).exists()
    updated = AuditEvent.objects.filter(action="scim.user_updated", subject=alice).latest("pk")
    assert updated.details["scim_token"] == "okta" and updated.ip == "127.0.0.1"
    assert any(m.to == ["alice@example.com"] and "address was changed" in m.subject for m in mail.outbox)


def test_a_desk_with_leads_is_not_deleted_by_provisioning(scim, lena):
    desk = Desk.objects.get(name="Futures desk")
    assert scim.delete(f"/scim/v2/Groups/{desk.pk}").status_code == 403
    assert Desk.objects.filter(pk=desk.pk).exists()
    empty = Desk.objects.create(name="Empty desk")
    assert scim.delete(f"/scim/v2/Groups/{empty.pk}").status_code == 204
    assert AuditEvent.objects.filter(action="scim.group_deleted", object_label="Empty desk").exists()


def test_bad_user_names_are_refused_with_scim_errors(scim):
    response = post_user(scim, "x" * 200 + "@example.com")
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    assert post_user(scim, "has space@example.com").status_code == 400
