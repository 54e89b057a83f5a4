"""Single sign-on against a real OpenID provider run as its own process (the
npm package oidc-provider; SECURITY.md 32): code flow with PKCE, state and
nonce; forged ID tokens refused; amr decides whether Gatecheck's own code is
asked; step-up and the admin always ask for it; identities are linked only
through an invitation or by the owner behind a fresh code."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from accounts import sso
from accounts.models import AuditEvent, Desk, ExternalIdentity, Invitation, User

from . import idp_process
from .conftest import current_code, make_user, verify_client

CALLBACK = "http://testserver/accounts/sso/callback/"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    provider = idp_process.start(tmp_path_factory.mktemp("idp"), [CALLBACK])
    yield provider
    provider.process.terminate()
    provider.process.wait(timeout=10)


@pytest.fixture(autouse=True)
def oidc_settings(settings, idp):
    settings.GATECHECK_OIDC_ISSUER = idp.url
    settings.GATECHECK_OIDC_CLIENT_ID = idp_process.CLIENT_ID
    settings.GATECHECK_OIDC_CLIENT_SECRET = idp_process.CLIENT_SECRET
    settings.GATECHECK_OIDC_NAME = "Firm SSO"
    settings.GATECHECK_OIDC_ALLOWED_DOMAINS = []
    settings.GATECHECK_OIDC_CREATE_USERS = False
    return settings


def sso_sign_in(client: Client, login: str, password: str = "mfa", *, start: str = "/accounts/sso/start/", data: dict | None = None):
    """Press the button, sign in at the provider, come back: the callback's response."""
    response = client.post(start, data or {})
    assert response.status_code == 302, response.content[:300]
    authorize = response["Location"]
    query = parse_qs(urlsplit(authorize).query)
    # The request the provider got: code flow, PKCE with S256, state and nonce.
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] and query["state"][0] and query["nonce"][0]
    callback = idp_process.log_in_at_idp(authorize, login, password, stop_at="http://testserver/")
    return client.get(callback.removeprefix("http://testserver"))


def _invite(email: str = "nina@example.com") -> str:
    lena = make_user("lena")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lena)
    from accounts import invitations

    invitations.invite(desk=desk, addresses=[email], by=lena)
    return re.search(r"https?://[^/\s]+(/accounts/invitation/[^/\s]+/)", mail.outbox[-1].body).group(1)


def test_login_page_shows_the_button_only_when_configured(client, settings, idp):
    page = client.get("/accounts/login/")
    assert "Sign in with Firm SSO" in page.content.decode()
    # The button's redirect may go on to the provider, and nowhere else.
    assert f"form-action 'self' {idp.url};" in page["Content-Security-Policy"]
    settings.GATECHECK_OIDC_ISSUER = ""
    page = client.get("/accounts/login/")
    html = page.content.decode()
    assert "Sign in with" not in html and "sso" not in html
    assert "form-action 'self';" in page["Content-Security-Policy"]
    assert client.post("/accounts/sso/start/").status_code == 404


def test_invited_address_joins_with_sso_and_still_enrols_its_own_factor(db):
    path = _invite()
    client = Client()
    page = client.get(path).content.decode()
    token = path.split("/")[-2]
    assert "Join with Firm SSO" in page
    response = sso_sign_in(client, "nina@example.com", "mfa", data={"invitation": token, "next": "/"})
    nina = User.objects.get(email="nina@example.com")
    assert Desk.objects.get(name="Futures desk").members.filter(pk=nina.pk).exists()
    assert Invitation.objects.get().accepted_by == nina
    assert ExternalIdentity.objects.get(user=nina).linked_via == "invitation"
    # The account has no factor of its own yet: it enrols one before anything else.
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/setup/")
    assert client.get("/")["Location"].startswith("/accounts/mfa/setup/")
    assert not nina.has_usable_password()
    actions = set(AuditEvent.objects.filter(subject=nina).values_list("action", flat=True))
    assert {"account.created", "sso.linked", "invitation.accepted", "login.sso"} <= actions


@pytest.fixture
def linked(db):
    """alice, with an authenticator app, linked to her identity at the provider."""
    alice = make_user("alice")
    ExternalIdentity.objects.create(user=alice, issuer=sso.settings.GATECHECK_OIDC_ISSUER, subject="alice@example.com", linked_via="owner")
    return alice


def test_amr_with_mfa_skips_the_code_but_never_step_up_nor_the_admin(linked):
    client = Client()
    response = sso_sign_in(client, "alice@example.com", "mfa")
    assert response.status_code == 302 and not response["Location"].startswith("/accounts/login")
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="login.success", subject=linked, details__via="sso").exists()
    # Step-up asks for Gatecheck's own code.
    response = client.get("/accounts/security/api-tokens/add/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/confirm/")
    # So does the admin, even for staff.
    User.objects.filter(pk=linked.pk).update(is_staff=True, is_superuser=True)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/mfa/confirm/")
    # Gatecheck's own code opens both.
    client.post("/accounts/mfa/confirm/", {"otp_token": current_code(linked), "next": "/admin/"})
    assert client.get("/admin/").status_code == 200


def test_amr_without_mfa_asks_for_gatechecks_code(linked):
    client = Client()
    response = sso_sign_in(client, "alice@example.com", "password-only")
    assert response["Location"].startswith("/accounts/login/code/")
    assert client.get("/")["Location"].startswith("/accounts/login/code/")
    response = client.post("/accounts/login/code/", {"otp_token": current_code(linked)})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_uninvited_address_is_refused_and_audited(db):
    client = Client()
    response = sso_sign_in(client, "stranger@example.com", "mfa")
    assert response.status_code == 403
    assert "not linked to a Gatecheck account" in response.content.decode()
    assert not User.objects.filter(email="stranger@example.com").exists()
    event = AuditEvent.objects.get(action="login.sso_failure")
    assert event.outcome == "failure"
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_an_existing_account_is_never_linked_by_address_alone(db, oidc_settings):
    make_user("bob")
    oidc_settings.GATECHECK_OIDC_CREATE_USERS = True
    oidc_settings.GATECHECK_OIDC_ALLOWED_DOMAINS = ["example.com"]
    response = sso_sign_in(Client(), "bob@example.com", "mfa")
    assert response.status_code == 403 and not ExternalIdentity.objects.exists()
    # An allowed domain makes a new account (which enrols a factor first).
    response = sso_sign_in(Client(), "carol@example.com", "mfa")
    assert response["Location"].startswith("/accounts/mfa/setup/")
    assert ExternalIdentity.objects.get().user.email == "carol@example.com"
    # An unverified address makes nothing.
    response = sso_sign_in(Client(), "unverified-dan@example.com", "mfa")
    assert response.status_code == 403


def test_the_owner_links_behind_a_fresh_code(db):
    alice = make_user("alice")
    client = verify_client(Client(), alice)
    session = client.session
    session["mfa_at"] = 0
    session.save()
    assert client.post("/accounts/security/sso/link/")["Location"].startswith("/accounts/mfa/confirm/")
    session = client.session
    session["mfa_at"] = time.time()
    session.save()
    response = sso_sign_in(client, "alice.work@example.com", "pwd", start="/accounts/security/sso/link/")
    assert response["Location"] == "/accounts/security/"
    assert ExternalIdentity.objects.get().user == alice
    assert AuditEvent.objects.filter(action="sso.linked", subject=alice, details__via="owner").exists()
    # Now that identity signs alice in.
    other = Client()
    sso_sign_in(other, "alice.work@example.com", "mfa")
    assert other.get("/").status_code == 200


def test_a_deactivated_person_cannot_sign_on(linked):
    linked.is_active = False
    linked.save()
    assert sso_sign_in(Client(), "alice@example.com", "mfa").status_code == 403


# --- Forged ID tokens: the provider's real response, with its ID token re-signed --------


def _claims(id_token: str) -> dict:
    body = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


@pytest.fixture
def forge(monkeypatch, idp):
    """Replace the ID token of the provider's real token response by one
    with changed claims, signed with the provider's own key (or another)."""

    def install(change=lambda claims: claims, *, other_key: bool = False):
        keys = KeySet.import_key_set(idp.private_jwks())
        real_key = keys.keys[0]
        key = RSAKey.generate_key(2048, parameters={"kid": real_key.kid}) if other_key else real_key
        app = sso.client()
        real_fetch = app.fetch_access_token

        def fetch(**kwargs):
            token = real_fetch(**kwargs)
            token["id_token"] = jwt.encode({"alg": "RS256", "kid": real_key.kid}, change(_claims(token["id_token"])), key)
            return token

        monkeypatch.setattr(app, "fetch_access_token", fetch)

    return install


def test_a_resigned_but_unchanged_token_passes(linked, forge):
    """The control: the forging itself breaks nothing."""
    forge()
    client = Client()
    sso_sign_in(client, "alice@example.com", "mfa")
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("name", "change", "other_key"),
    [
        ("bad signature", lambda c: c, True),
        ("wrong audience", lambda c: {**c, "aud": idp_process.OTHER_CLIENT}, False),
        ("wrong issuer", lambda c: {**c, "iss": "http://127.0.0.1:1"}, False),
        ("expired", lambda c: {**c, "exp": int(time.time()) - 600, "iat": int(time.time()) - 1200}, False),
        ("wrong nonce", lambda c: {**c, "nonce": "not-the-one-we-sent"}, False),
    ],
)
def test_forged_tokens_are_refused(linked, forge, name, change, other_key):
    forge(change, other_key=other_key)
    client = Client()
    response = sso_sign_in(client, "alice@example.com", "mfa")
    assert response.status_code == 403, name
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert AuditEvent.objects.filter(action="login.sso_failure").exists()


def test_a_callback_without_our_state_is_refused(linked):
    client = Client()
    response = client.post("/accounts/sso/start/")
    authorize = response["Location"]
    callback = idp_process.log_in_at_idp(authorize, "alice@example.com", "mfa", stop_at="http://testserver/")
    # Another browser (no state in its session) presents the code.
    stranger = Client()
    assert stranger.get(callback.removeprefix("http://testserver")).status_code == 403
    # The browser that started it gets in; presenting the same callback again does not.
    assert client.get(callback.removeprefix("http://testserver")).status_code == 302
    assert client.get("/").status_code == 200
    assert client.get(callback.removeprefix("http://testserver")).status_code == 403


def test_an_account_the_firms_scim_client_made_is_linked_at_its_first_sign_on(db):
    from django.utils import timezone

    provisioned = User(username="pat@example.com", email="pat@example.com", scim_provisioned_at=timezone.now())
    provisioned.set_unusable_password()  # as SCIM makes it
    provisioned.save()
    client = Client()
    response = sso_sign_in(client, "pat@example.com", "mfa")
    assert response["Location"].startswith("/accounts/mfa/setup/")  # its own factor first
    identity = ExternalIdentity.objects.get()
    assert identity.user == provisioned and identity.linked_via == "provisioning"
    assert User.objects.get(pk=provisioned.pk).email_verified
    # Only once, while unused: a second identity with that address links
    # nothing, even after the first is unlinked (the account has signed in).
    identity.delete()
    assert sso_sign_in(Client(), "pat@example.com", "mfa").status_code == 403
    assert ExternalIdentity.objects.count() == 0


def test_an_unconfirmed_address_captures_no_invitation(db):
    """Anyone may type anyone's address into their own account: it must not
    receive the invitee's identity nor the invited desk."""
    tom = make_user("tom", verified=False)
    path = _invite("tom@example.com")  # tom's address, never confirmed by him
    token = path.split("/")[-2]
    sso_sign_in(Client(), "tom@example.com", "pwd", data={"invitation": token, "next": "/"})
    identity = ExternalIdentity.objects.get()
    assert identity.user != tom and not Desk.objects.get(name="Futures desk").members.filter(pk=tom.pk).exists()


def test_an_old_provider_sign_in_still_gives_the_code(linked, forge):
    """amr alone is not enough: the provider's sign-in must be no older than
    a trusted browser would last for this person."""
    forge(lambda c: {**c, "auth_time": int(time.time()) - 31 * 24 * 3600})
    assert sso_sign_in(Client(), "alice@example.com", "mfa")["Location"].startswith("/accounts/login/code/")


def test_an_administrator_is_never_spared_the_code(linked):
    User.objects.filter(pk=linked.pk).update(is_superuser=True, is_staff=True)
    assert sso_sign_in(Client(), "alice@example.com", "mfa")["Location"].startswith("/accounts/login/code/")


def test_a_new_account_gets_a_valid_username_from_any_address(db):
    path = _invite("o'brien+desk@example.com")
    sso_sign_in(Client(), "o'brien+desk@example.com", "mfa", data={"invitation": path.split("/")[-2], "next": "/"})
    user = User.objects.get(email="o'brien+desk@example.com")
    assert user.username == "obrien+desk"
    user.full_clean(exclude=["password"])


def test_a_refused_link_goes_back_to_the_security_page_and_says_why(db):
    alice, bob = make_user("alice"), make_user("bob")
    ExternalIdentity.objects.create(user=bob, issuer=sso.settings.GATECHECK_OIDC_ISSUER, subject="shared@example.com", linked_via="owner")
    client = verify_client(Client(), alice)
    response = sso_sign_in(client, "shared@example.com", "pwd", start="/accounts/security/sso/link/")
    assert response.status_code == 302 and response["Location"] == "/accounts/security/"
    page = client.get("/accounts/security/").content.decode()
    assert "Single sign-on was not linked" in page and "already linked to another account" in page
    assert ExternalIdentity.objects.get().user == bob
    assert AuditEvent.objects.filter(action="login.sso_failure", actor=alice).exists()
