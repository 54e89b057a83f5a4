"""Writes with side effects for accounts: sign-in steps, factors, sessions, limits."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import django_otp
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import update_session_auth_hash
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from django_tasks_db.models import DBTaskResult

from . import once, signin, tokens
from .audit import record_event
from .background import stop_point
from .channels import security_notice
from .models import AuditEvent, AuthFailure, JobMark, KnownBrowser, RecoveryCodeDevice, SignInAlert, TrustedBrowser, User, UserSession, WorkerBeat, token_digest
from .net import client_ip
from .signals import access_revoked

logger = logging.getLogger("gatecheck.accounts")

TOTP_PATTERN = re.compile(r"^\d{6}$")


# --- Failure counting (SECURITY.md 4) -------------------------------------


def failure_buckets(request: HttpRequest, *, step: str, username: str) -> list[tuple[str, int]]:
    """The buckets one attempt counts against, each with its limit.

    A browser holding a valid device cookie for this account (it completed
    a sign-in to it before) counts in that cookie's own bucket alone, with
    the account's limit (SECURITY.md 37, OWASP "device cookies"): whoever
    locks the account for unknown browsers cannot lock out its owner's.

    Any other browser counts per account (the normalised username, so case
    games do not buy extra attempts), per username from one address (as
    django-axes counts, so a guesser at one address is stopped early on
    that account), and per address. An office network
    (GATECHECK_OFFICE_NETWORKS) skips only the per-address cap: a trading
    floor behind one NAT address is hundreds of people, and one of them
    mistyping must not lock the others out.
    """
    nonce = _device_nonce(request, username)
    if nonce:
        return [(f"{step}:device:{token_digest(nonce)[:32]}", settings.GATECHECK_ACCOUNT_FAILURE_LIMIT)]
    digest = username_digest(username)
    buckets = [(f"{step}:user:{digest}", settings.GATECHECK_ACCOUNT_FAILURE_LIMIT)]
    ip = client_ip(request)
    if ip:
        network = ip_bucket(ip)
        buckets.append((f"{step}:user-ip:{digest}:{network}", settings.GATECHECK_USER_IP_FAILURE_LIMIT))
        if not in_office_network(ip):
            buckets.append((f"ip:{network}", settings.GATECHECK_IP_FAILURE_LIMIT))
    return buckets


def _device_nonce(request: HttpRequest, username: str) -> str | None:
    """The nonce of a device cookie valid for the account ``username`` names
    (a query only when the browser sends such a cookie)."""
    if signin.DEVICE_COOKIE not in request.COOKIES:
        return None
    user = User.objects.filter(username=User.normalize_username(username)).only("pk", "password").first()
    return signin.device_cookie_nonce(request, user)


def in_office_network(ip: str) -> bool:
    """Whether an address belongs to an allow-listed office network."""
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in settings.GATECHECK_OFFICE_NETWORKS)


def username_digest(username: str) -> str:
    """A keyed digest of the normalised username: buckets count per account
    without storing what was typed (sometimes a password, in the wrong field)."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, User.normalize_username(username).encode(), hashlib.sha256).hexdigest()[:32]


def ip_bucket(ip: str) -> str:
    """IPv4 addresses count one by one; IPv6 by /64, the block one client gets."""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return ip


def attempt_open(buckets: list[tuple[str, int]]) -> tuple[list[int], datetime | None]:
    """Count an attempt, unless a bucket is locked already.

    A locked bucket refuses the attempt without writing a row: attempts
    during a lock are never checked, so they do not extend it, and a
    request every few minutes cannot keep an account locked for good.
    Otherwise the attempt is written before it is checked, so parallel
    requests cannot all slip under a limit: the k-th attempt to be written
    sees at least k rows. One that finds the bucket full after writing is
    refused and takes its rows back.

    Returns the ids of the rows written, and, when a bucket is full, the
    time it frees up (the attempt must then be refused, and nothing stays
    written).
    """
    until = _locked_until(buckets, own=[])
    if until:
        return [], until
    ids = [row.pk for row in AuthFailure.objects.bulk_create([AuthFailure(bucket=bucket) for bucket, _ in buckets])]
    until = _locked_until(buckets, own=ids)
    if until:
        AuthFailure.objects.filter(pk__in=ids).delete()
        return [], until
    return ids, None


def _locked_until(buckets: list[tuple[str, int]], *, own: list[int]) -> datetime | None:
    """When the fullest bucket frees up, if any holds its limit of rows in
    the window besides this attempt's ``own``; a bucket frees up when its
    limit-th newest row leaves the window."""
    window = timedelta(seconds=settings.GATECHECK_RATE_WINDOW)
    since = timezone.now() - window
    latest = None
    for bucket, limit in buckets:
        rows = AuthFailure.objects.filter(bucket=bucket, at__gte=since).exclude(pk__in=own)
        times = list(rows.order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            free_at = times[limit - 1] + window
            latest = free_at if latest is None else max(latest, free_at)
    return latest


def attempt_succeeded(ids: list[int]) -> None:
    """A successful attempt removes only its own rows: it never clears the
    failures of other attempts in any bucket."""
    AuthFailure.objects.filter(pk__in=ids).delete()


def rows_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete rows that no longer count, for the hourly task; running it
    twice deletes nothing more the second time.

    Expired Django sessions; session rows past the 24-hour limit (with their
    session) or whose session is gone; failure rows older than
    GATECHECK_FAILURE_RETENTION_DAYS (they count for minutes, and are kept a
    while to look at); finished task results older than
    GATECHECK_TASK_RESULT_DAYS; expired trusted browsers, and new-browser
    alerts whose link can no longer work; the progress marks of finished
    nightly runs and mail tasks, beats of workers gone for a day, and
    tickets of shown-once secrets never shown (``once.tickets_prune``).
    (Audit events past their retention: ``audit_prune``, its own task.)
    """
    now = now or timezone.now()
    done = {"sessions": Session.objects.filter(expire_date__lt=now).delete()[0]}
    over_limit = UserSession.objects.filter(created_at__lt=now - timedelta(seconds=settings.GATECHECK_ABSOLUTE_TIMEOUT))
    done["sessions"] += Session.objects.filter(session_key__in=over_limit.values("session_key")).delete()[0]
    rows = over_limit.delete()[0]
    # An hour of grace: a row is pointed at its new key in the request that
    # changed it, and an hour idle ends a session anyway.
    orphans = UserSession.objects.filter(last_seen__lt=now - timedelta(hours=1)).exclude(session_key__in=Session.objects.values("session_key"))
    done["session_rows"] = rows + orphans.delete()[0]
    done["failures"] = AuthFailure.objects.filter(at__lt=now - timedelta(days=settings.GATECHECK_FAILURE_RETENTION_DAYS)).delete()[0]
    old_results = DBTaskResult.objects.finished().filter(finished_at__lt=now - timedelta(days=settings.GATECHECK_TASK_RESULT_DAYS))
    done["task_results"] = old_results.delete()[0]
    done["trusted_browsers"] = TrustedBrowser.objects.filter(expires_at__lte=now).delete()[0]
    done["alerts"] = SignInAlert.objects.filter(created_at__lt=now - timedelta(seconds=signin.ALERT_LINK_AGE)).delete()[0]
    week = now - timedelta(days=7)
    JobMark.objects.filter(Q(name__startswith="snapshots:") | Q(name__startswith="mail:"), at__lt=week).delete()
    WorkerBeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    once.tickets_prune(now=now)
    return done


def rows_delete_batched(rows: QuerySet, *, delete: Callable[[QuerySet], int] | None = None) -> int:
    """Delete ``rows``, GATECHECK_PRUNE_BATCH at a time, each batch in its
    own short transaction, so an hourly prune of a large table never holds a
    long lock; a stopping worker stops between two batches (the next run
    goes on). ``delete`` deletes one batch (default: ``batch.delete()``).
    Returns how many rows went; a second call finds nothing more."""
    size = settings.GATECHECK_PRUNE_BATCH
    total = 0
    while True:
        with transaction.atomic():
            ids = list(rows.order_by().values_list("pk", flat=True)[:size])
            batch = rows.model._base_manager.filter(pk__in=ids)
            total += (delete(batch) if delete else batch.delete()[0]) if ids else 0
        if len(ids) < size:
            return total
        stop_point()


def audit_prune(*, now: datetime | None = None) -> int:
    """Delete audit events older than GATECHECK_AUDIT_RETENTION_DAYS (seven
    years by default), for the hourly prune; returns how many went."""
    now = now or timezone.now()
    old = AuditEvent.objects.filter(at__lt=now - timedelta(days=settings.GATECHECK_AUDIT_RETENTION_DAYS))
    return rows_delete_batched(old, delete=_audit_delete)


def _audit_delete(batch: QuerySet) -> int:
    # The one delete of the append-only log, past its queryset's guard on
    # purpose. On PostgreSQL the table's trigger lets it through only in a
    # transaction marked so, and only for rows older than a year (accounts
    # migration 0009).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL gatecheck.audit_prune = 'on'")
    return QuerySet.delete(batch)[0]


# --- Factors ---------------------------------------------------------------


def totp_devices(user: User, confirmed: bool = True):
    return TOTPDevice.objects.devices_for_user(user, confirmed=confirmed)


def has_confirmed_factor(user: User) -> bool:
    return django_otp.user_has_device(user, confirmed=True)


def needs_authenticator(user: User) -> bool:
    """A verified user whose session rests on a backup code and who has no
    authenticator app nor passkey. Sessions verified otherwise cost no query."""
    return (
        isinstance(user.otp_device, RecoveryCodeDevice)
        and not totp_devices(user).exists()
        and not WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    )


def second_factor_verify(*, user: User, token: str) -> Device | None:
    """Check a code against the user's devices of the matching kind.

    Six digits go to the authenticator apps, anything else to the backup
    codes, so a wrong TOTP never throttles the backup codes and vice versa.
    Verification goes through django_otp.verify_token (transaction and row
    lock), so of two parallel submits of one code exactly one succeeds.
    """
    token = (token or "").strip().replace(" ", "")
    if TOTP_PATTERN.match(token):
        candidates = totp_devices(user)
    else:
        candidates = RecoveryCodeDevice.objects.devices_for_user(user, confirmed=True)
    for device in candidates:
        verified = django_otp.verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None


def throttled_until(user: User, token: str) -> datetime | None:
    """If every device that could take this token is in back-off, until when."""
    token = (token or "").strip()
    devices = totp_devices(user) if TOTP_PATTERN.match(token) else RecoveryCodeDevice.objects.devices_for_user(user)
    until = []
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if allowed:
            return None
        until.append((info or {}).get("locked_until"))
    return max((u for u in until if u), default=None)


def backup_codes_generate(*, user: User, request: HttpRequest | None = None) -> list[str]:
    """Create (or replace) the user's backup codes; returns them to show once."""
    device, _ = RecoveryCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Backup codes", "confirmed": True}
    )
    codes = device.generate_codes()
    record_event(action="mfa.backup_codes_generated", request=request, subject=user, object_label=device.name)
    signin.trust_void(user=user, reason="backup codes regenerated", request=request)
    return codes


def totp_pending_device(user: User) -> TOTPDevice:
    """The unconfirmed device an enrolment works on, created with a fresh
    160-bit seed the first time."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def totp_confirm(*, request: HttpRequest, device: TOTPDevice, token: str, name: str) -> bool:
    """Confirm an enrolment with a valid code; the session becomes verified."""
    token = (token or "").strip()
    if not TOTP_PATTERN.match(token):
        return False
    verified = django_otp.verify_token(device.user, device.persistent_id, token)
    if verified is None:
        return False
    verified.confirmed = True
    verified.name = name or "Authenticator app"
    verified.save(update_fields=["confirmed", "name"])
    session_mark_verified(request, verified)
    record_event(action="mfa.authenticator_added", request=request, object_label=verified.name)
    signin.trust_void(user=device.user, reason="authenticator added", request=request)
    security_notice(device.user, "A new authenticator was added", f"The authenticator '{verified.name}' was added to your Gatecheck account.")
    return True


def authenticator_remove(*, request: HttpRequest, device: TOTPDevice) -> None:
    """Remove an authenticator. Sessions it verified lose their verification,
    because django-otp can no longer load the device their session names."""
    name = device.name
    device.delete()
    record_event(action="mfa.authenticator_removed", request=request, object_label=name)
    signin.trust_void(user=request.user, reason="authenticator removed", request=request)
    security_notice(request.user, "An authenticator was removed", f"The authenticator '{name}' was removed from your Gatecheck account.")


def authenticator_rename(*, request: HttpRequest, device: TOTPDevice, name: str) -> None:
    old = device.name
    device.name = name
    device.save(update_fields=["name"])
    record_event(
        action="mfa.authenticator_renamed", request=request, object_label=name, details={"name": [old, name]}
    )


def mfa_reset(*, request: HttpRequest, trader: User, reason: str) -> str:
    """Remove every factor of a locked-out trader and end their sessions, so the
    next sign-in starts a fresh enrolment, which needs the password and the
    enrolment code returned here (to be shown to the resetting lead once)."""
    with transaction.atomic():
        for device in django_otp.devices_for_user(trader, confirmed=None):
            device.delete()
        access_revoke(user=trader)
        tokens.revoke_all(user=trader, reason="MFA reset", request=request)
        code = signin.enrolment_code_issue(trader=trader, by=request.user)
        record_event(action="mfa.reset", request=request, subject=trader, object_label=trader.username, details={"reason": reason})
    security_notice(
        trader,
        "Your two-factor authentication was reset",
        f"{request.user.get_username()} reset the authenticators on your Gatecheck account. "
        "At your next sign-in you will set up a new authenticator app; you need your password and the "
        "one-time enrolment code your desk lead gives you (valid for 24 hours).",
    )
    return code


# --- Sign-in and sessions ---------------------------------------------------


SESSION_ROW = "gatecheck_session_row"


def session_row_id(request: HttpRequest) -> int | None:
    """The id of the UserSession row that tracks this browser's session.

    The row is found by this id, kept in the session itself, never by the
    session key: the key changes after each sign-in step and after a password
    change, and a lookup by an old key would lose the browser."""
    return request.session.get(SESSION_ROW)


def session_track(request: HttpRequest) -> None:
    """Point this browser's row at its current session key (after any key change)."""
    row_id = session_row_id(request)
    if row_id and request.session.session_key:
        UserSession.objects.filter(pk=row_id, user_id=request.user.pk).update(session_key=request.session.session_key)


def session_tracked_row(request: HttpRequest) -> UserSession | None:
    """The row tracking this signed-in session, or None when it has none (it
    was revoked). A session from before rows were found by id is adopted
    through its key, once."""
    row_id = session_row_id(request)
    if row_id:
        return UserSession.objects.filter(pk=row_id, user_id=request.user.pk).first()
    row = UserSession.objects.filter(session_key=request.session.session_key, user_id=request.user.pk).first()
    if row is not None:
        request.session[SESSION_ROW] = row.pk
    return row


def session_problem(data, *, verified: bool, now: float) -> str | None:
    """Why a session can no longer be used, or None: the one rule for the
    middleware (which ends such a session) and the list of signed-in browsers."""
    auth_at = data.get("auth_at", 0)
    if now - auth_at > settings.GATECHECK_ABSOLUTE_TIMEOUT:
        return "Your session reached its 24-hour limit. Please sign in again."
    if now - data.get("seen_at", auth_at) > settings.GATECHECK_IDLE_TIMEOUT:
        return "You were signed out after an hour without activity."
    if not verified and now - auth_at > settings.GATECHECK_PENDING_LOGIN_TIMEOUT:
        return "The sign-in took longer than 10 minutes. Please start again."
    return None


def password_step_complete(*, request: HttpRequest, user: User, action: str = "login.password") -> None:
    """Sign the user in after the password; the session is not MFA-verified yet.

    The session key changes, and the password is never kept. A second
    password POST in the same pending sign-in gets a new key too, but keeps
    its row and the time of the first password step: resubmitting never
    buys more than the 10 minutes allowed for the code step.
    """
    same_pending = (
        request.user.is_authenticated
        and request.user.pk == user.pk
        and not request.user.is_verified()
        and session_tracked_row(request) is not None
    )
    if same_pending:
        request.session.cycle_key()
        session_track(request)
        record_event(action=action, request=request, subject=user, object_label=user.username)
        return
    previous = session_row_id(request)
    key_before = request.session.session_key
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if request.session.session_key and request.session.session_key == key_before:
        request.session.cycle_key()
    # The session this one replaces (another account's) is over.
    if previous:
        UserSession.objects.filter(pk=previous).delete()
    now = time.time()
    request.session["auth_at"] = now
    request.session["seen_at"] = now
    request.session.save()
    row = UserSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )
    request.session[SESSION_ROW] = row.pk
    record_event(action=action, request=request, subject=user, object_label=user.username)


def session_mark_verified(request: HttpRequest, device: Device) -> None:
    """Bind the device to the session, under a new session key."""
    django_otp.login(request, device)
    request.session.cycle_key()
    request.session["mfa_at"] = time.time()
    request.session.save()
    session_track(request)


def session_bind_without_code(request: HttpRequest, device: Device, marker: str, value) -> None:
    """Bind a pending session to ``device`` under a new key, without the code
    step (a trusted browser, the identity provider's amr), marked so
    (``signin.code_skipped``): it gets no ``mfa_at``, so step-up and the
    admin still ask for a fresh code."""
    django_otp.login(request, device)
    request.session.cycle_key()
    request.session.pop("mfa_at", None)
    request.session[marker] = value
    request.session.save()
    session_track(request)


def session_mark_trusted(request: HttpRequest) -> bool:
    """At the code step, on a browser the user trusted: the session is bound
    to the device that verified the sign-in which gave the trust. Returns
    whether the code step was skipped."""
    found = signin.trusted_browser_for(request, request.user)
    if found is None:
        return False
    row, device = found
    session_bind_without_code(request, device, signin.TRUSTED_SESSION, row.pk)
    row.last_used_at = timezone.now()
    row.save(update_fields=["last_used_at"])
    record_event(action="browser.trust_used", request=request, object_label=row.browser)
    record_event(action="login.success", request=request, object_label=device.name, details={"via": "trusted browser"})
    return True


def sign_in_reported(*, request: HttpRequest, alert: SignInAlert) -> bool:
    """The "this wasn't me" link of a new-browser alert, used once: that
    browser is signed out and forgotten, and the password is replaced by a
    random one nobody knows. Whoever signed in had the password, so asking
    for a change at the next sign-in would let them make it first; the user
    sets a new one through the reset e-mail instead. Every session ends and
    every trusted browser is forgotten with the old password. Returns False
    when the link was used already (two clicks at once: one wins)."""
    user = alert.user
    with transaction.atomic():
        if not SignInAlert.objects.filter(pk=alert.pk, used_at__isnull=True).update(used_at=timezone.now()):
            return False
        row = UserSession.objects.filter(pk=alert.session_row, user=user).first()
        if row is not None:
            session_end(row)
        KnownBrowser.objects.filter(pk=alert.known_browser_id).delete()
        user.set_password(secrets.token_urlsafe(32))
        user.save(update_fields=["password"])
        access_revoke(user=user)
        record_event(action="login.reported", request=request, actor=user, subject=user, object_label=user.username, details={"alert": alert.pk})
    return True


def step_up(*, request: HttpRequest) -> None:
    request.session["mfa_at"] = time.time()


def sessions_live(*, user: User) -> list[UserSession]:
    """The user's sessions that can still be used, newest activity first, each
    with ``pending`` set when only the password step is done.

    Rows of sessions that ended (timeout, expiry, a flushed session) are
    dropped on the way, so that they are neither listed nor counted.
    """
    now = time.time()
    rows = list(UserSession.objects.filter(user=user))
    stored = {s.session_key: s for s in Session.objects.filter(session_key__in=[r.session_key for r in rows])}
    live, dead = [], []
    for row in rows:
        session = stored.get(row.session_key)
        data = session.get_decoded() if session is not None and session.expire_date > timezone.now() else None
        if not data or str(data.get("_auth_user_id")) != str(user.pk):
            dead.append(row.pk)
            continue
        verified = _session_verified(user, data.get(django_otp.DEVICE_ID_SESSION_KEY))
        if session_problem(data, verified=verified, now=now):
            dead.append(row.pk)
            continue
        row.pending = not verified
        live.append(row)
    if dead:
        dead_keys = [r.session_key for r in rows if r.pk in dead]
        Session.objects.filter(session_key__in=dead_keys).delete()
        UserSession.objects.filter(pk__in=dead).delete()
    return live


def _session_verified(user: User, persistent_id: str | None) -> bool:
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and device.confirmed


def sessions_end(*, user: User, keep: int | None = None) -> int:
    """End a user's sessions on the server, optionally all but one row (by id).

    Deleting the row is what ends a session: the middleware signs out any
    session whose row is gone, whatever its key became. The session data is
    deleted too where the key is known."""
    rows = UserSession.objects.filter(user=user)
    if keep:
        rows = rows.exclude(pk=keep)
    keys = list(rows.values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    rows.delete()
    return len(keys)


def access_revoke(*, user: User, keep: int | None = None) -> None:
    """After a password or factor change: end the user's other sessions and
    tell the apps that hold other credentials (the calendar feed token) to void them."""
    sessions_end(user=user, keep=keep)
    signin.trust_void(user=user, reason="password or factors changed")
    access_revoked.send(sender=User, user=user)


def session_forget(sender, request: HttpRequest, user, **kwargs) -> None:
    """user_logged_out receiver: the signed-out session's row goes with it."""
    if request is None or not hasattr(request, "session"):
        return
    row_id = session_row_id(request)
    if row_id:
        UserSession.objects.filter(pk=row_id).delete()
    elif request.session.session_key:
        UserSession.objects.filter(session_key=request.session.session_key).delete()


def session_end(row: UserSession) -> None:
    Session.objects.filter(session_key=row.session_key).delete()
    row.delete()


def password_changed(*, request: HttpRequest, user: User) -> None:
    """Everything that follows a new password, whoever set it (the user on the
    password page, or a superuser in the admin): the changing browser stays
    signed in under a new key, every other session of the user ends, the
    calendar token is voided, the change is audited and the user e-mailed."""
    own = request.user.pk == user.pk
    if own:
        update_session_auth_hash(request, user)
        session_track(request)
    access_revoke(user=user, keep=session_row_id(request) if own else None)
    record_event(action="password.changed", request=request, subject=user, object_label=user.username)
    security_notice(user, "Your password was changed", "The password of your Gatecheck account was changed.")


def login_failed(*, request: HttpRequest, username: str, step: str, action: str | None = None) -> None:
    """Audit a failed or refused attempt (attempt_open counted it, unless a
    lock refused it unchecked). The typed
    username is recorded only when it names a real account: it might be a
    password typed in the wrong field."""
    user = User.objects.filter(username=User.normalize_username(username)).first()
    record_event(
        action=action or ("login.failure" if step == "password" else "mfa.failure"),
        request=request,
        actor=user,
        subject=user,
        object_label=user.username if user else "(unknown username)",
        outcome=AuditEvent.Outcome.FAILURE,
    )


# --- Health -------------------------------------------------------------------


def health_checks(*, background: bool = True) -> dict[str, str]:
    """What /healthz reports, each "ok" or what is wrong:

    - ``database``: it answers a query;
    - ``database_write``: it commits a write (one tiny row, really committed,
      so a full disk or a read-only database is seen: a rolled-back probe
      would pass on both);
    - ``sweep``: the per-minute heartbeat sweep finished lately;
    - ``queue``: no task has waited too long for a worker
    (the last two left out with ``background=False``).
    """
    from .background import health_background, mark_set

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        checks = {"database": "unreachable", "database_write": "not checked"}
        return {**checks, "sweep": "not checked", "queue": "not checked"} if background else checks
    checks = {"database": "ok", "database_write": "ok"}
    try:
        with transaction.atomic():
            mark_set("healthz")
    except DatabaseError as error:
        checks["database_write"] = "refused"
        logger.error("healthz: the database refused a write: %s", error)
    if not background:
        return checks
    try:
        checks.update(health_background())
    except DatabaseError:
        checks.update({"sweep": "not checked", "queue": "not checked"})
    return checks
