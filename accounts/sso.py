"""Single sign-on with OpenID Connect (issue "A firm can adopt it", part 2;
SECURITY.md 32).

Authlib does the protocol: authorization code with PKCE (S256), ``state``
and ``nonce`` kept in the session, the ID token's signature checked against
the provider's published keys, and its issuer, audience, expiry and nonce.
(Chosen over django-allauth, which would bring its own account, e-mail and
MFA models beside ours, and mozilla-django-oidc, which signs the user in
itself through an authentication backend, where the password step stands.)

What an identity proves here, and what it does not:

- it stands for the password step: the session is pending, as after a password;
- an ID token whose ``amr`` names a second factor (GATECHECK_OIDC_MFA_AMR)
  skips Gatecheck's code at sign-in, like a trusted browser: the session is
  bound to the account's own factor and gets no ``mfa_at``, so step-up and
  the admin still ask for Gatecheck's own code. Every account keeps a factor
  of its own (a first sign-in enrols one);
- an identity is linked to an account only through an invitation to the
  identity's verified address, by the signed-in owner after a fresh code, or
  to an account the firm's SCIM client provisioned for that address (the
  provisioning stands for the invitation); never to any other account by an
  address alone.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from urllib.parse import urlsplit

import django_otp
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from joserfc.errors import JoseError

from . import channels, invitations, services, signin
from .audit import record_event
from .models import AuditEvent, ExternalIdentity, Invitation, RecoveryCodeDevice, User

logger = logging.getLogger("gatecheck.sso")

INTENT = "gatecheck_sso"


class Refused(Exception):
    """A sign-in the provider or our rules refused; the message is for the person."""


def configured() -> bool:
    return bool(settings.GATECHECK_OIDC_ISSUER and settings.GATECHECK_OIDC_CLIENT_ID)


def button() -> str | None:
    """The login page's button label, or None when single sign-on is off."""
    return settings.GATECHECK_OIDC_NAME if configured() else None


def form_may_reach_provider(view):
    """For a page with a sign-on button: its CSP lets a form's redirect go on
    to the provider (``form-action`` governs redirects after a submission
    too), and nowhere else new."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if configured():
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.GATECHECK_OIDC_ISSUER))
            policy = getattr(response, "_csp_config", None) or settings.SECURE_CSP
            response._csp_config = {**policy, "form-action": [*policy.get("form-action", []), origin]}
        return response

    return wrapped


@functools.lru_cache(maxsize=4)
def _client(issuer: str, client_id: str, client_secret: str):
    oauth = OAuth()
    return oauth.register(
        "firm",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": 10},
    )


def client():
    return _client(settings.GATECHECK_OIDC_ISSUER, settings.GATECHECK_OIDC_CLIENT_ID, settings.GATECHECK_OIDC_CLIENT_SECRET)


def begin(request: HttpRequest, *, next_url: str = "/", invitation: str = "", link: bool = False) -> HttpResponse:
    """Send the browser to the provider; what the sign-in is for waits in the
    session. Linking asks the provider for a fresh sign-in (whoever was
    signed in there before, say on a shared computer, must sign in again);
    a sign-on asks for ``auth_time`` (``max_age``), which ``skips_code`` reads."""
    request.session[INTENT] = {
        "next": next_url,
        "invitation": invitation,
        "link": request.user.pk if link else None,
    }
    callback = request.build_absolute_uri(reverse("accounts:sso_callback"))
    fresh = {"prompt": "login", "max_age": 0} if link else {"max_age": settings.GATECHECK_TRUSTED_BROWSER_SECONDS}
    try:
        return client().authorize_redirect(request, callback, nonce=secrets.token_urlsafe(24), **fresh)
    except (requests.RequestException, ValueError) as error:
        raise Refused("The identity provider cannot be reached just now. Try again, or sign in with your password.") from error


def finish(request: HttpRequest) -> tuple[dict, dict]:
    """The verified ID token's claims and the intent, or Refused."""
    intent = request.session.pop(INTENT, None) or {}
    try:
        token = client().authorize_access_token(request)
    except requests.RequestException as error:
        raise Refused("The identity provider cannot be reached just now. Try again, or sign in with your password.") from error
    except (OAuthError, JoseError, ValueError) as error:
        raise Refused(f"The sign-on could not be verified ({type(error).__name__}).") from error
    claims = token.get("userinfo")
    if not claims or not claims.get("sub"):
        raise Refused("The identity provider sent no ID token.")
    return dict(claims), intent


def idp_mfa(claims: dict) -> bool:
    """Whether the ID token says a second factor was used at the provider."""
    amr = claims.get("amr")
    return isinstance(amr, list) and bool(set(map(str, amr)) & set(settings.GATECHECK_OIDC_MFA_AMR))


def _verified_email(claims: dict) -> str:
    email = str(claims.get("email") or "").strip().lower()
    return email if email and claims.get("email_verified") is True else ""


def account_for(request: HttpRequest, claims: dict, intent: dict) -> User:
    """The account this identity signs in to, linking or creating it where
    the rules allow; Refused otherwise. Whatever branch finds it, a
    deactivated account is refused before anything is linked or joined."""
    issuer, subject = settings.GATECHECK_OIDC_ISSUER, str(claims["sub"])
    identity = ExternalIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        ExternalIdentity.objects.filter(pk=identity.pk).update(last_used_at=timezone.now())
        return _active(identity.user)
    email = _verified_email(claims)
    invitation = invitations.from_token(intent.get("invitation") or "")
    if invitation is not None:
        if email != invitation.email:
            raise Refused("The identity provider's verified address is not the invited one.")
        existing = invitations.account_for(invitation)
        user = _active(existing) if existing else _create(request, email, claims)
        _link(request, user, claims, via="invitation")
        invitations.accept(invitation=invitation, user=user, request=request, via="sso")
        return user
    if not email:
        raise Refused("This identity is not linked to a Gatecheck account, and the provider vouched for no address.")
    provisioned = _provisioned_unused(email)
    if provisioned is not None:
        _link(request, provisioned, claims, via="provisioning")
        User.objects.filter(pk=provisioned.pk).update(verified_email=provisioned.email)
        return provisioned
    existing = invitations.account_for_address(email)
    if existing is None and Invitation.objects.pending().filter(email=email).exists():
        return _join_pending(request, email, claims)
    if settings.GATECHECK_OIDC_CREATE_USERS and email.rpartition("@")[2] in settings.GATECHECK_OIDC_ALLOWED_DOMAINS:
        if existing is not None:
            raise Refused("An account with this address exists: sign in with your password, then link single sign-on on your security page.")
        user = _create(request, email, claims)
        _link(request, user, claims, via="allowed domain")
        return user
    raise Refused("This identity is not linked to a Gatecheck account. Ask your desk lead for an invitation.")


def _active(user: User) -> User:
    if not user.is_active:
        raise Refused("This account is deactivated.")
    return user


def _provisioned_unused(email: str) -> User | None:
    """An account the firm's SCIM client made for this address and nobody
    has used yet (never signed in, no password, no factor, no identity, no
    admin rights): its first sign-on links it, as an invitation would, once."""
    candidates = User.objects.filter(
        email__iexact=email, is_active=True, scim_provisioned_at__isnull=False, scim_removed_at__isnull=True,
        last_login__isnull=True, is_staff=False, is_superuser=False, external_identities__isnull=True,
    )
    for user in candidates[:2]:
        if not user.has_usable_password() and not django_otp.user_has_device(user, confirmed=True):
            return user
    return None


def _join_pending(request: HttpRequest, email: str, claims: dict) -> User:
    """A first sign-in by an invited address without the link: the account
    is made and joins every desk that invited it (the provider's verified
    address is the proof; audited as such)."""
    user = _create(request, email, claims)
    _link(request, user, claims, via="invited address")
    for invitation in Invitation.objects.pending().select_related("desk").filter(email=email):
        invitations.accept(invitation=invitation, user=user, request=request, via="sso, invited address")
    return user


def _create(request: HttpRequest, email: str, claims: dict) -> User:
    # A username of the characters usernames allow (an address's local part may hold others).
    base = re.sub(r"[^\w.@+-]", "", User.normalize_username(email.partition("@")[0]))[:140] or "trader"
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}{n}"
    user = User(username=username, email=email, verified_email=email,
                first_name=str(claims.get("given_name") or "")[:150], last_name=str(claims.get("family_name") or "")[:150])
    user.set_unusable_password()
    user.save()
    record_event(action="account.created", request=request, actor=user, subject=user, object_label=user.username, details={"via": "sso"})
    return user


def _link(request: HttpRequest, user: User, claims: dict, *, via: str) -> ExternalIdentity:
    try:
        with transaction.atomic():
            identity = ExternalIdentity.objects.create(
                user=user, issuer=settings.GATECHECK_OIDC_ISSUER, subject=str(claims["sub"]), email=_verified_email(claims), linked_via=via
            )
    except IntegrityError as error:
        raise Refused("This identity is already linked to another account.") from error
    record_event(action="sso.linked", request=request, actor=user, subject=user, object_label=identity.email or identity.subject, details={"via": via})
    return identity


def link_owner(request: HttpRequest, claims: dict, intent: dict) -> ExternalIdentity:
    """The signed-in owner links this identity to their account (the link
    was started behind a fresh code, in this same session)."""
    user = request.user
    if not (user.is_authenticated and user.is_verified() and intent.get("link") == user.pk):
        raise Refused("Linking single sign-on must start from your security page.")
    identity = _link(request, user, claims, via="owner")
    channels.security_notice(
        user,
        "Single sign-on was linked to your account",
        f"The identity {identity.email or identity.subject} at {settings.GATECHECK_OIDC_NAME} can now sign in to your Gatecheck "
        "account. If this was not you, unlink it on your security page and change your password.",
    )
    return identity


def unlink(request: HttpRequest, identity: ExternalIdentity) -> None:
    identity.delete()
    record_event(action="sso.unlinked", request=request, object_label=identity.email or identity.subject)


def refused(request: HttpRequest, why: str, claims: dict | None = None) -> None:
    record_event(
        action="login.sso_failure",
        request=request,
        actor=None,
        subject=None,
        object_label=str((claims or {}).get("email") or "(unknown identity)")[:150],
        outcome=AuditEvent.Outcome.FAILURE,
        details={"reason": why},
    )


def skips_code(user: User, claims: dict) -> bool:
    """Whether this sign-on may skip Gatecheck's code, as a trusted browser
    would: the ID token's amr names a second factor, the person may be
    offered trust at all (never an administrator), and the provider's sign-in
    (``auth_time``) is no older than that trust would last for them."""
    auth_time = claims.get("auth_time")
    if not (idp_mfa(claims) and signin.trust_offered(user) and isinstance(auth_time, int | float)):
        return False
    return time.time() - auth_time <= signin.trust_lifetime(user).total_seconds()


def session_mark_idp_verified(request: HttpRequest) -> bool:
    """Bind the pending session to the account's own factor (an authenticator
    app or passkey before backup codes), marked as a sign-on whose code was
    skipped. False when the account has no confirmed factor of its own yet
    (it enrols one first)."""
    devices = sorted(django_otp.devices_for_user(request.user, confirmed=True), key=lambda d: isinstance(d, RecoveryCodeDevice))
    if not devices:
        return False
    services.session_bind_without_code(request, devices[0], signin.SSO_SESSION, True)
    return True
