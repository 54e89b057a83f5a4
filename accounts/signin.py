"""Sign-in beyond the password and the code: enrolment codes after an MFA
reset, trusted browsers, device cookies, known browsers and new-browser alerts.

Imports no other accounts service module: accounts.services calls in here
(a password or factor change voids trust), never the other way round.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from urllib.parse import urljoin

import django_otp
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device

from . import mail
from .audit import record_event
from .models import (
    EnrolmentCode,
    KnownBrowser,
    RecoveryCodeDevice,
    SignInAlert,
    TrustedBrowser,
    User,
    browser_summary,
    format_code,
    token_digest,
)
from .net import client_ip

# --- Enrolment codes after an MFA reset ----------------------------------------


def enrolment_code_issue(*, trader: User, by: User) -> str:
    """A new one-time enrolment code for ``trader`` (any older one is
    replaced); returns it formatted, to be shown to the lead once. 80 random
    bits, like a backup code, in the same unambiguous alphabet."""
    code = RecoveryCodeDevice.new_code()
    now = timezone.now()
    with transaction.atomic():
        EnrolmentCode.objects.filter(user=trader).delete()
        EnrolmentCode.objects.create(
            user=trader, code_hash=token_digest(code), created_by=by, created_at=now, expires_at=now + EnrolmentCode.LIFETIME
        )
    return format_code(code)


def enrolment_code_for(user: User) -> EnrolmentCode | None:
    """The unused enrolment code a first enrolment must present, if any."""
    return EnrolmentCode.objects.filter(user=user, used_at__isnull=True).first()


def enrolment_pending(user: User) -> bool:
    """Whether a reset left a code that can still be used: no second reset
    is offered meanwhile."""
    row = enrolment_code_for(user)
    return row is not None and row.pending


ENROL_CODE_SESSION = "gatecheck_enrolment_code"


def enrolment_code_accepted(request, row: EnrolmentCode) -> None:
    """The code was right: this pending sign-in (and only it) may enrol."""
    request.session[ENROL_CODE_SESSION] = row.pk
    record_event(action="mfa.enrolment_code_accepted", request=request, object_label=request.user.username)


def enrolment_gate_open(request) -> bool:
    """Whether this session may show the enrolment page: no code is owed,
    or this session presented it."""
    row = enrolment_code_for(request.user)
    return row is None or request.session.get(ENROL_CODE_SESSION) == row.pk


def enrolment_code_consume(request) -> None:
    """After the new authenticator is confirmed: the code is spent."""
    row_id = request.session.pop(ENROL_CODE_SESSION, None)
    if row_id:
        EnrolmentCode.objects.filter(pk=row_id, used_at__isnull=True).update(used_at=timezone.now())


# --- Trusted browsers (SECURITY.md 18) ----------------------------------------

TRUST_COOKIE = "gatecheck_trust"
TRUST_SALT = "accounts.signin.trusted_browser"
# In the session of a browser whose code step was skipped: such a session
# counts as verified for pages, never as a recent step-up nor for the admin.
TRUSTED_SESSION = "gatecheck_trusted_browser"
# In the session of a sign-on whose ID token's amr named a second factor
# (accounts.sso): the same standing as a trusted browser's.
SSO_SESSION = "gatecheck_sso_session"


def code_skipped(request) -> bool:
    """Whether this session skipped Gatecheck's code at sign-in: it counts
    as verified for pages, never as a recent step-up nor for the admin."""
    return bool(request.session.get(TRUSTED_SESSION) or request.session.get(SSO_SESSION))


def trust_offered(user: User) -> bool:
    """Traders and desk leads may be offered it; administrators never (a
    lead is staff only through the "Desk leads" group)."""
    if user.is_superuser:
        return False
    return not user.is_staff or user.is_desk_lead


def trust_lifetime(user: User) -> timedelta:
    seconds = settings.GATECHECK_TRUSTED_BROWSER_LEAD_SECONDS if user.is_desk_lead else settings.GATECHECK_TRUSTED_BROWSER_SECONDS
    return timedelta(seconds=seconds)


def factor_fingerprint(user: User) -> str:
    """A keyed digest of the password hash and the confirmed factors: a new
    password or factor through any path (the admin, a new device type)
    changes it, and a trust given before no longer matches."""
    devices = sorted(d.persistent_id for d in django_otp.devices_for_user(user, confirmed=True))
    return salted_hmac("accounts.signin.fingerprint", "|".join([user.password, *devices]), algorithm="sha256").hexdigest()


def browser_trust(*, request: HttpRequest, response: HttpResponse, device: Device) -> TrustedBrowser | None:
    """Remember this browser for the user just verified with ``device``: a
    server-side row, and a signed, expiring cookie naming it with a random
    value whose digest only the row keeps."""
    user = request.user
    if not trust_offered(user):
        return None
    lifetime = trust_lifetime(user)
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    row = TrustedBrowser.objects.create(
        user=user,
        secret_hash=token_digest(secret),
        device_id=device.persistent_id,
        fingerprint=factor_fingerprint(user),
        created_at=now,
        expires_at=now + lifetime,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        ip=client_ip(request),
    )
    response.set_cookie(
        TRUST_COOKIE,
        signing.dumps({"id": row.pk, "s": secret}, salt=TRUST_SALT),
        max_age=int(lifetime.total_seconds()),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
        path="/",
    )
    record_event(action="browser.trusted", request=request, object_label=row.browser, details={"until": row.expires_at.isoformat()})
    return row


def _trust_cookie(request: HttpRequest) -> dict | None:
    raw = request.COOKIES.get(TRUST_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=TRUST_SALT, max_age=settings.GATECHECK_TRUSTED_BROWSER_SECONDS)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("id"), int) else None


def trust_cookie_row(request: HttpRequest) -> int | None:
    """Which trusted-browser row this browser's cookie names (for "This
    browser" on the security page; proves nothing by itself)."""
    data = _trust_cookie(request)
    return data["id"] if data else None


def trusted_browser_for(request: HttpRequest, user: User) -> tuple[TrustedBrowser, Device] | None:
    """The live trust this browser's cookie names for ``user``, with the
    device the session is bound to, or None."""
    data = _trust_cookie(request)
    if data is None or not trust_offered(user):
        return None
    row = TrustedBrowser.objects.live().filter(pk=data["id"], user=user).first()
    if row is None or not hmac.compare_digest(row.secret_hash, token_digest(str(data.get("s", "")))):
        return None
    # Someone who became a lead since keeps a trader's trust no longer than a lead's.
    if timezone.now() - row.created_at > trust_lifetime(user):
        return None
    if not hmac.compare_digest(row.fingerprint, factor_fingerprint(user)):
        trust_void(user=user, reason="password or factors changed outside the security page", request=request)
        return None
    device = Device.from_persistent_id(row.device_id)
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return row, device


def trust_void(*, user: User, reason: str, request: HttpRequest | None = None, keep: int | None = None) -> int:
    """Forget every browser the user trusted (after a password or factor
    change, an MFA reset, a reported sign-in); audited when there were any."""
    rows = TrustedBrowser.objects.for_user(user)
    if keep:
        rows = rows.exclude(pk=keep)
    count = rows.delete()[0]
    if count:
        record_event(action="browser.trust_voided", request=request, subject=user, object_label=user.username, details={"reason": reason, "count": count})
    return count


def browser_forget(*, request: HttpRequest, row: TrustedBrowser) -> None:
    row.delete()
    record_event(action="browser.forgotten", request=request, object_label=row.browser)


# --- Device cookies: lockout that cannot be turned on the owner (SECURITY.md 37) ---

DEVICE_COOKIE = "gatecheck_device"
DEVICE_SALT = "accounts.signin.device_cookie"
DEVICE_COOKIE_AGE = 365 * 24 * 60 * 60


def device_cookie_issue(request: HttpRequest, response: HttpResponse) -> None:
    """After a completed sign-in (password and second factor), a signed
    cookie naming the user and a fresh random nonce (OWASP "device
    cookies"). Attempts from it are counted in the nonce's own bucket, so a
    guesser who locks the account for unknown browsers does not lock out
    this one. Only a complete sign-in earns it: handed out after the
    password alone, a guesser holding the password could collect fresh
    buckets for the code step at will."""
    value = signing.dumps({"u": request.user.pk, "e": _device_epoch(request.user), "n": secrets.token_urlsafe(16)}, salt=DEVICE_SALT)
    response.set_cookie(
        DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_AGE, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax", path="/"
    )


def _device_epoch(user) -> str:
    """Changes with the password: a reset, a change or "this wasn't me"
    ends every device cookie of the account."""
    return salted_hmac(DEVICE_SALT, user.password, algorithm="sha256").hexdigest()[:16]


def device_cookie_nonce(request: HttpRequest, user) -> str | None:
    """The nonce of this browser's device cookie if it is valid for
    ``user``; None for no cookie, a tampered or expired one, another
    account's, or one from before the password last changed (such a browser
    counts as unknown)."""
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw or user is None:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk or data.get("e") != _device_epoch(user) or not isinstance(data.get("n"), str):
        return None
    return data["n"]


# --- Known browsers and new-browser alerts --------------------------------------

BROWSER_COOKIE = "gatecheck_browser"
BROWSER_COOKIE_AGE = 400 * 24 * 60 * 60  # the longest a browser keeps a cookie
ALERT_SALT = "accounts.signin.not_me"
ALERT_LINK_AGE = 7 * 24 * 60 * 60


def browser_seen(request: HttpRequest, response: HttpResponse, *, session_row: int | None, first_enrolment: bool = False) -> HttpResponse:
    """After a completed sign-in: note this browser for the account, by the
    digest of a long-lived random cookie (never the user agent alone, which
    anyone can copy). A browser not seen before for the account is e-mailed
    to the user with a "this wasn't me" link; the enrolment right after a
    sign-up is the account's first browser and is not. The browser also
    gets a new device cookie (see ``device_cookie_issue``)."""
    user = request.user
    device_cookie_issue(request, response)
    value = request.COOKIES.get(BROWSER_COOKIE, "")
    if len(value) < 32:
        value = secrets.token_urlsafe(32)
        response.set_cookie(
            BROWSER_COOKIE, value, max_age=BROWSER_COOKIE_AGE, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax", path="/"
        )
    digest = token_digest(value)
    now = timezone.now()
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    if KnownBrowser.objects.filter(user=user, digest=digest).update(last_seen=now, user_agent=user_agent):
        return response
    quiet = first_enrolment and not KnownBrowser.objects.filter(user=user).exists()
    known, _ = KnownBrowser.objects.get_or_create(user=user, digest=digest, defaults={"user_agent": user_agent})
    if not quiet:
        _new_browser_alert(request, known, session_row)
    return response


def _new_browser_alert(request: HttpRequest, known: KnownBrowser, session_row: int | None) -> None:
    user = request.user
    alert = SignInAlert.objects.create(user=user, session_row=session_row or 0, known_browser=known)
    ip = client_ip(request) or "unknown"
    record_event(action="browser.new_alert", request=request, object_label=browser_summary(known.user_agent), details={"ip": ip})
    if mail.confirmed_addresses([user]):
        mail.linked_enqueue("not_me", alert.pk, request=request, extra={"ip": ip})


def alert_message(alert_id: int, base: str, extra: dict) -> dict | None:
    """The new-browser e-mail, its "this wasn't me" link signed here (in the worker)."""
    alert = SignInAlert.objects.filter(pk=alert_id, used_at__isnull=True).select_related("user", "known_browser").first()
    # Asked again in the worker: the address may have changed since the sign-in.
    to = mail.confirmed_addresses([alert.user]) if alert is not None else []
    if not to:
        return None
    token = signing.dumps({"a": alert.pk, "u": alert.user_id}, salt=ALERT_SALT)
    link = urljoin(base, reverse("accounts:not_me", args=[token]))
    body = (
        "Your Gatecheck account was just signed in to from a browser it has not seen before.\n\n"
        f"Browser: {browser_summary(alert.known_browser.user_agent)}\n"
        f"Time: about {alert.created_at:%Y-%m-%d %H:%M} UTC\n"
        f"IP address: {extra.get('ip', 'unknown')}\n\n"
        "If this was you, there is nothing to do.\n\n"
        "If it was not you, open this link (it works once, for 7 days): it signs that browser out,\n"
        "locks your password and takes you to choose a new one.\n"
        f"{link}\n"
    )
    return mail.payload(to=to, subject="[Gatecheck] Sign-in from a new browser", body=body, kind="new browser alert")


def alert_from_token(token: str) -> SignInAlert | None:
    """The unused alert a "this wasn't me" link names, or None (bad
    signature, too old, already used)."""
    try:
        data = signing.loads(token, salt=ALERT_SALT, max_age=ALERT_LINK_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    return SignInAlert.objects.filter(pk=data.get("a"), user_id=data.get("u"), used_at__isnull=True).select_related("user").first()


# --- Verified e-mail addresses --------------------------------------------------

EMAIL_SALT = "accounts.signin.email_verify"
EMAIL_LINK_AGE = 3 * 24 * 60 * 60


def email_verification_send(*, request: HttpRequest, user: User) -> bool:
    """Mail a link that verifies the account's current address (at sign-up,
    after a change, or asked for again). The link names the address, so it
    verifies nothing once the address changes; the worker signs it."""
    if not user.email or user.email_verified:
        return False
    return mail.linked_enqueue("verify", user.pk, request=request, extra={"email": user.email})


def verification_message(user_id: int, base: str, extra: dict) -> dict | None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.email != extra.get("email") or user.email_verified:
        return None
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=EMAIL_SALT)
    link = urljoin(base, reverse("accounts:email_verify", args=[token]))
    body = (
        f"Please confirm that {user.email} is the address of the Gatecheck account {user.username}.\n\n"
        f"{link}\n\n"
        "The link works for 3 days. Until you follow it, Gatecheck sends no security notices, "
        "reminders or password-reset links to this address.\n\n"
        "If you did not ask for this, ignore this message."
    )
    return mail.payload(to=[user.email], subject="[Gatecheck] Confirm your e-mail address", body=body, kind="confirmation")


def email_verify(*, request: HttpRequest, token: str) -> User | None:
    """Follow a verification link: the address it names becomes verified if it
    is still the account's. Returns the account, or None for a bad, old or
    outdated link."""
    try:
        data = signing.loads(token, salt=EMAIL_SALT, max_age=EMAIL_LINK_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not data.get("e"):
        return None
    user = User.objects.filter(pk=data.get("u"), email=data["e"], is_active=True).first()
    if user is None:
        return None
    if not user.email_verified:
        user.verified_email = user.email
        user.save(update_fields=["verified_email"])
        record_event(action="email.verified", request=request, actor=user, subject=user, object_label=user.username)
    return user


def email_change(*, request: HttpRequest, user: User, email: str) -> None:
    """A new address: unverified until its link is followed. The old
    address, if verified, is told (it may be the only one the owner still reads)."""
    old = [address for address in mail.confirmed_addresses([user]) if address != email]
    user.email = email
    user.save(update_fields=["email"])
    record_event(action="email.changed", request=request, subject=user, object_label=user.username)
    if old:
        body = (
            f"The e-mail address of your Gatecheck account {user.username} was changed; notices now go to the new "
            "address once it is confirmed.\n\nIf this was not you, contact your desk lead now."
        )
        mail.enqueue([mail.payload(to=old, subject="[Gatecheck] Your e-mail address was changed", body=body, kind="security notice")])
    email_verification_send(request=request, user=user)


# The worker's linked_send builds these e-mails by kind.
mail.LINKED_MESSAGES.update({"not_me": alert_message, "verify": verification_message})
