"""Invitations (issue 22, part 1; SECURITY.md 34): from the lead's form,
through the e-mail and its link, to a password, a second factor and the desk;
expiry, reuse, replacement by a newer link, revocation, the command, scale."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import invitations
from accounts.models import AuditEvent, Desk, Invitation, User

from .conftest import PASSWORD, make_user, verify_client

LINK = re.compile(r"http://testserver(/accounts/invitation/[^/\s]+/)")


def _link(message) -> str:
    return LINK.search(message.body).group(1)


def _invite(client: Client, desk: Desk, addresses: str, **extra):
    return client.post("/desk/invitations/new/", {"desk": desk.pk, "addresses": addresses, **extra})


@pytest.fixture
def desk(lena) -> Desk:
    return Desk.objects.get(name="Futures desk")


def test_invite_to_joined_desk_end_to_end(lena_client, desk):
    response = _invite(lena_client, desk, "Nora@Example.com")
    assert response.status_code == 200
    assert "Invited" in response.content.decode()
    invitation = Invitation.objects.get(email="nora@example.com")
    assert invitation.status == "pending" and invitation.invited_by.username == "lena"
    (message,) = mail.outbox
    assert message.to == ["nora@example.com"] and "Futures desk" in message.subject
    path = _link(message)
    # Only a digest is stored: the link's secret is nowhere in the database.
    assert invitation.__class__.objects.get(pk=invitation.pk).digest not in path
    assert AuditEvent.objects.filter(action="invitation.sent", object_label="nora@example.com to Futures desk").exists()

    nora = Client()
    page = nora.get(path)
    assert page.status_code == 200 and "Join the desk Futures desk" in page.content.decode()
    response = nora.post(path, {"username": "nora", "first_name": "Nora", "last_name": "Quinn", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/setup/")
    user = User.objects.get(username="nora")
    assert user.email_verified and desk.members.filter(pk=user.pk).exists()
    # Not in yet: the second factor comes first.
    assert nora.get("/")["Location"].startswith("/accounts/mfa/setup/")
    nora.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user=user)
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert nora.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": code}).status_code == 302
    assert nora.get("/").status_code == 200
    # The lead sees the trader on the desk and the invitation accepted.
    assert "Nora Quinn" in lena_client.get("/desk/").content.decode()
    assert "Accepted" in lena_client.get("/desk/invitations/").content.decode()
    # Used once: the same link again is refused.
    assert Client().get(path).status_code == 400


def test_expired_revoked_and_replaced_links_are_refused(lena_client, desk):
    _invite(lena_client, desk, "omar@example.com")
    first = _link(mail.outbox[-1])
    invitation = Invitation.objects.get(email="omar@example.com")
    # Resending makes a new link; the old one dies.
    assert lena_client.post(f"/desk/invitations/{invitation.pk}/resend/").status_code == 302
    second = _link(mail.outbox[-1])
    assert first != second
    assert Client().get(first).status_code == 400
    assert Client().get(second).status_code == 200
    # Seven days later it is expired (and shown so).
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(second).status_code == 400
    assert "Expired" in lena_client.get("/desk/invitations/").content.decode()
    # Inviting again renews the same invitation.
    _invite(lena_client, desk, "omar@example.com")
    assert Invitation.objects.filter(email="omar@example.com").count() == 1
    third = _link(mail.outbox[-1])
    assert Client().get(third).status_code == 200
    assert lena_client.post(f"/desk/invitations/{invitation.pk}/revoke/").status_code == 302
    assert Client().get(third).status_code == 400
    assert AuditEvent.objects.filter(action="invitation.revoked").exists()


def test_a_tampered_link_is_refused(lena_client, desk):
    _invite(lena_client, desk, "pia@example.com")
    path = _link(mail.outbox[-1])
    assert Client().get(path[:-3] + "xx/").status_code == 400


def test_existing_account_signs_in_then_joins(lena_client, desk, bob):
    _invite(lena_client, desk, "bob@example.com")
    path = _link(mail.outbox[-1])
    anonymous = Client().get(path)
    assert "already has a Gatecheck account" in anonymous.content.decode()
    bob_client = verify_client(Client(), bob)
    assert bob_client.post(path).status_code == 302
    assert desk.members.filter(pk=bob.pk).exists()
    # Someone else signed in cannot take it.
    _invite(lena_client, desk, "zed@example.com")
    make_user("zed")
    other = verify_client(Client(), make_user("yan"))
    other.post(_link(mail.outbox[-1]))
    assert not desk.members.filter(username="zed").exists()


def test_bad_addresses_members_and_limits(lena_client, desk, alice):
    response = _invite(lena_client, desk, "alice@example.com, not-an-address, new@example.com")
    html = response.content.decode()
    assert "Already a member" in html and "Refused: not an e-mail address" in html
    assert list(Invitation.objects.values_list("email", flat=True)) == ["new@example.com"]
    too_many = " ".join(f"p{i}@example.com" for i in range(501))
    response = _invite(lena_client, desk, too_many)
    assert response.status_code == 400 and "At most 500" in response.content.decode()
    assert Invitation.objects.count() == 1


def test_csv_upload(lena_client, desk):
    upload = io.BytesIO(b"name,email\nQ,q1@example.com\nR,r1@example.com\n")
    upload.name = "people.csv"
    response = lena_client.post("/desk/invitations/new/", {"desk": desk.pk, "addresses": "", "csv_file": upload})
    assert response.status_code == 200
    assert set(Invitation.objects.values_list("email", flat=True)) == {"q1@example.com", "r1@example.com"}


def test_a_lead_invites_only_to_their_desks(lena_client, bob):
    other = Desk.objects.create(name="Options desk")
    response = _invite(lena_client, other, "x@example.com")
    assert response.status_code == 400 and not Invitation.objects.exists()
    trader = verify_client(Client(), bob)
    assert trader.get("/desk/invitations/").status_code == 403


def test_inviting_needs_a_fresh_code(lena_client, desk):
    session = lena_client.session
    session["mfa_at"] = 0
    session.save()
    response = _invite(lena_client, desk, "late@example.com")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/confirm/")
    assert not Invitation.objects.exists()


def test_command_prints_outcomes_never_the_link(db, alice):
    Desk.objects.create(name="Rates").members.add(alice)
    out = io.StringIO()
    call_command("invite", "--desk", "Rates", "alice@example.com", "sam@example.com", "bad", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines == ["alice@example.com\talready a member", "sam@example.com\tinvited", "bad\trefused: not an e-mail address"]
    assert "/accounts/invitation/" not in out.getvalue()
    assert "/accounts/invitation/" in mail.outbox[-1].body


def test_inviting_500_takes_bounded_queries(lena_client, desk):
    addresses = [f"bulk{i}@example.com" for i in range(500)]
    with CaptureQueriesContext(connection) as few:
        invitations.invite(desk=desk, addresses=addresses[:10], by=None)
    with CaptureQueriesContext(connection) as many:
        invitations.invite(desk=desk, addresses=addresses[10:], by=None)
    # The batch itself is a fixed number of queries; each e-mail (sent here
    # by the immediate task backend) costs the same few, however many.
    assert len(many) / 490 <= len(few) / 10, (len(few), len(many))
    assert len(many) / 490 <= 10
    assert Invitation.objects.count() == 500


def test_the_link_is_never_logged(lena_client, desk, caplog):
    caplog.set_level("DEBUG")
    _invite(lena_client, desk, "quinn@example.com")
    path = _link(mail.outbox[-1])
    token = path.rstrip("/").rsplit("/", 1)[1]
    Client().get(path)
    Client().post(path, {"username": "quinn", "first_name": "Q", "last_name": "Z", "password1": PASSWORD, "password2": PASSWORD})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "invitation.sent" in logged and "invitation.accepted" in logged  # the flow was logged...
    assert token not in logged and token.split(":")[0] not in logged  # ...without the link
    stored = repr(list(Invitation.objects.values())) + repr(list(AuditEvent.objects.values()))
    assert token not in stored
