"""Users, desks, the append-only audit log, recovery codes and session records."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models.functions import Coalesce, Concat, Lower, NullIf, Trim
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin


class User(AbstractUser):
    """A Gatecheck user: a trader, and possibly the lead of one or more desks.

    Usernames are stored lower-case so that "Alice" and "alice" are one
    account, for sign-in and for counting failed attempts alike.
    """

    # The address whose verification link was followed. The account's e-mail
    # counts as verified only while it is that same address, so a change
    # through any path (the security page, the admin) needs a new link.
    verified_email = models.EmailField(blank=True)
    # How the desk sorts and ties names: the full name, else the username,
    # lower-cased. Kept by the database itself (a generated column), so every
    # path that renames a user keeps it true, and indexed for the desk's pages.
    sort_name = models.GeneratedField(
        expression=Lower(
            Coalesce(
                NullIf(Trim(Concat("first_name", models.Value(" "), "last_name", output_field=models.TextField())), models.Value("")),
                "username",
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    # SCIM (accounts.scim): the provisioning client's own id for the person;
    # when the client created the account; when it deleted it (the account
    # stays, deactivated, with its inventory and audit trail, but SCIM no
    # longer shows it).
    scim_external_id = models.CharField(max_length=254, blank=True)
    scim_provisioned_at = models.DateTimeField(null=True, blank=True, editable=False)
    scim_removed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractUser.Meta):
        indexes = [models.Index(fields=["sort_name", "id"], name="user_sort_name")]

    @classmethod
    def normalize_username(cls, username):
        return super().normalize_username(username).lower()

    @property
    def email_verified(self) -> bool:
        return bool(self.email) and self.email == self.verified_email

    @property
    def is_desk_lead(self) -> bool:
        return self.led_desks.exists()

    @property
    def oversees_desks(self) -> bool:
        """A lead of at least one desk, or a superuser (who oversees every desk)."""
        return self.is_superuser or self.is_desk_lead


def has_verified_email() -> models.Q:
    """For querysets of users: the address is the one its link confirmed (what
    ``User.email_verified`` says of one user). Whom mail may go to is decided
    in ``accounts.mail``."""
    return ~models.Q(email="") & models.Q(email=models.F("verified_email"))


class Desk(models.Model):
    """A trading desk: its leads oversee the readiness of its members."""

    name = models.CharField(max_length=100, unique=True)
    leads = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="led_desks", blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="desks", blank=True)
    # A bot down or failing and not acknowledged for this long reaches the desk's leads' channels.
    escalation_minutes = models.PositiveIntegerField(default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)])
    scim_external_id = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are append-only: bulk edits and deletes refuse."""

    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")

    def for_user(self, user) -> AuditEventQuerySet:
        return self.filter(models.Q(subject=user) | models.Q(actor=user))


ACTION_LABELS = {
    "account.created": "Account created",
    "login.password": "Password accepted",
    "login.success": "Signed in",
    "login.failure": "Wrong password",
    "login.lockout": "Sign-in blocked after too many failures",
    "logout": "Signed out",
    "mfa.failure": "Wrong code",
    "mfa.lockout": "Codes blocked after too many failures",
    "mfa.step_up": "Confirmed with a fresh code",
    "mfa.authenticator_added": "Authenticator added",
    "mfa.authenticator_removed": "Authenticator removed",
    "mfa.authenticator_renamed": "Authenticator renamed",
    "mfa.passkey_added": "Passkey added",
    "mfa.passkey_removed": "Passkey removed",
    "mfa.passkey_renamed": "Passkey renamed",
    "mfa.backup_codes_generated": "Backup codes generated",
    "mfa.backup_code_used": "Backup code used",
    "mfa.backup_code_issued": "Backup code issued by an administrator",
    "mfa.reset": "Two-factor sign-in reset",
    "api_token.created": "API token created",
    "api_token.revoked": "API token revoked",
    "key.rotation_recorded": "Key rotation recorded by a pipeline",
    "mfa.enrolment_code_accepted": "Enrolment code accepted",
    "mfa.enrolment_code_failure": "Wrong or expired enrolment code",
    "browser.trusted": "Browser trusted for sign-in",
    "browser.trust_used": "Signed in on a trusted browser",
    "browser.forgotten": "Trusted browser removed",
    "browser.trust_voided": "Trusted browsers removed after a security change",
    "browser.new_alert": "Sign-in from a new browser e-mailed",
    "login.reported": "Sign-in reported as not me",
    "email.changed": "E-mail address changed",
    "email.verified": "E-mail address confirmed",
    "password.changed": "Password changed",
    "password.reset": "Password reset by e-mail link",
    "session.ended": "Another session signed out",
    "session.ended_others": "All other sessions signed out",
    "login.sso": "Signed on with the firm's identity provider",
    "login.sso_failure": "Single sign-on refused",
    "sso.linked": "Single sign-on linked",
    "sso.unlinked": "Single sign-on unlinked",
    "invitation.sent": "Invitation sent",
    "invitation.resent": "Invitation sent again",
    "invitation.revoked": "Invitation revoked",
    "invitation.accepted": "Invitation accepted",
    "user.deactivated": "Account deactivated",
    "desk.member_removed": "Removed from a desk",
    "leaver.item_done": "Leaver checklist item done",
    "scim_token.created": "SCIM token created",
    "scim_token.revoked": "SCIM token revoked",
    "scim.user_updated": "Changed by the firm's provisioning (SCIM)",
    "scim.group_updated": "Desk changed by the firm's provisioning (SCIM)",
    "scim.group_deleted": "Desk deleted by the firm's provisioning (SCIM)",
    "user.reactivated": "Account reactivated",
}


class AuditEvent(models.Model):
    """One security-relevant event. Written only through accounts.audit.record_event."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    # PROTECT: deleting a user would rewrite their audit trail; deactivate
    # accounts instead.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_label = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["subject", "-at"])]
        # Related-object access goes through the guarded queryset too.
        base_manager_name = "objects"

    def __str__(self) -> str:
        # No object label: admin page titles show this to desk leads, and a
        # label can hold a phone number or an address.
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")

    @property
    def label(self) -> str:
        """Plain words for the action; inventory actions read well as they are."""
        return ACTION_LABELS.get(self.action, self.action.replace(".", " ").replace("_", " ").capitalize())


def _hash_code(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def normalize_code(code: str) -> str:
    """Backup codes compare case-insensitively and ignore spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A set of single-use backup codes, stored only as salted SHA-256 hashes.

    Each code carries 80 random bits, so a fast hash with a per-code salt is
    enough: there is nothing to brute-force offline that a slow hash would
    protect.
    """

    CODE_COUNT = 10
    ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I mix-ups
    CODE_LENGTH = 16  # 16 symbols of 32 = 80 bits

    class Meta(Device.Meta):
        verbose_name = "backup-code set"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    @classmethod
    def new_code(cls) -> str:
        return "".join(secrets.choice(cls.ALPHABET) for _ in range(cls.CODE_LENGTH))

    def add_code(self) -> str:
        """Add one more code (issue_backup_code); returns it, to be shown once."""
        code = self.new_code()
        RecoveryCode.from_plain(self, code).save()
        return format_code(code)

    def generate_codes(self) -> list[str]:
        """Replace every code with fresh ones; returns the plain codes, to be shown once."""
        plain = [self.new_code() for _ in range(self.CODE_COUNT)]
        with transaction.atomic():
            self.codes.all().delete()
            RecoveryCode.objects.bulk_create(
                [RecoveryCode.from_plain(self, code) for code in plain]
            )
        return [format_code(code) for code in plain]

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        code = normalize_code(str(token))
        match = None
        if len(code) == self.CODE_LENGTH:
            for row in self.codes.filter(used_at__isnull=True).select_for_update():
                if hmac.compare_digest(row.code_hash, _hash_code(row.salt, code)):
                    match = row
                    break
        if match is None:
            self.throttle_increment()
            return False
        match.used_at = timezone.now()
        match.save(update_fields=["used_at"])
        self.throttle_reset()
        return True


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    salt = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def from_plain(cls, device: RecoveryCodeDevice, code: str) -> RecoveryCode:
        salt = secrets.token_hex(16)
        return cls(device=device, salt=salt, code_hash=_hash_code(salt, normalize_code(code)))


class UserSession(models.Model):
    """A signed-in browser, so that users can see and end their sessions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="browser_sessions")
    session_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-last_seen"]

    @property
    def browser(self) -> str:
        return browser_summary(self.user_agent)


def browser_summary(ua: str) -> str:
    """A short description of a user agent, e.g. 'Chrome on Linux'."""
    name = next((n for key, n in _BROWSERS if key in ua), "Unknown browser")
    system = next((s for key, s in _SYSTEMS if key in ua), "")
    return f"{name} on {system}" if system else name


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"))


class AuthFailure(models.Model):
    """A password, code or reset attempt that did not succeed, counted per
    bucket in a time window (a success removes its own rows).

    Kept in the database, not a per-process cache, so that every worker sees
    the same counts.
    """

    bucket = models.CharField(max_length=200)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # The counting query: one bucket's rows in the window, newest first.
        indexes = [models.Index(fields=["bucket", "at"], name="authfailure_bucket_at")]


def token_digest(value: str) -> str:
    """How a random secret handed out once (an enrolment code, a cookie value)
    is stored: its SHA-256. Each secret carries at least 64 random bits, so
    there is nothing a slow hash would protect."""
    return hashlib.sha256(value.encode()).hexdigest()


class EnrolmentCode(models.Model):
    """After an MFA reset, the one-time code the lead hands to the trader out
    of band: the first sign-in needs the password and this code before it may
    enrol a new authenticator. Stored hashed; shown to the lead once.

    An unused row, expired or not, keeps the requirement: an expired code
    means the lead resets again, never that the password alone will do."""

    LIFETIME = timedelta(hours=24)

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_code")
    code_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    @property
    def pending(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()

    def matches(self, code: str) -> bool:
        return hmac.compare_digest(self.code_hash, token_digest(normalize_code(code)))


class ShownOnceTicket(models.Model):
    """The one-time ticket of a secret shown once (``accounts.once``): the
    secret itself travels encrypted in a cookie and is never stored; this
    row holds only the SHA-256 of the random ticket the cookie carries, and
    is deleted when the page shows the secret, so a copy of the cookie
    shows nothing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class TrustedBrowserQuerySet(models.QuerySet):
    def for_user(self, user) -> TrustedBrowserQuerySet:
        return self.filter(user=user)

    def live(self) -> TrustedBrowserQuerySet:
        return self.filter(expires_at__gt=timezone.now())


class TrustedBrowser(models.Model):
    """A browser where the user ticked "Trust this browser" at the code step
    (SECURITY.md 18). Its cookie holds this row's id and a random value whose
    digest is here; deleting the row voids the cookie."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_browsers")
    secret_hash = models.CharField(max_length=64)
    # The factor that verified the sign-in which asked for trust: the session
    # a trusted browser gets is bound to it, as django-otp binds any session.
    device_id = models.CharField(max_length=200)
    # What the password and the factors were when trust was given: a change
    # through any path (the admin, a new kind of device) voids the trust even
    # where no code deleted the row.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = TrustedBrowserQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    @property
    def browser(self) -> str:
        return browser_summary(self.user_agent)


class KnownBrowser(models.Model):
    """A browser that signed in to this account before, by the digest of a
    long-lived random cookie: a sign-in from any other browser is e-mailed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_browsers")
    digest = models.CharField(max_length=64)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "digest"], name="knownbrowser_user_digest")]

    @property
    def browser(self) -> str:
        return browser_summary(self.user_agent)


class SignInAlert(models.Model):
    """A "new browser" e-mail: its "this wasn't me" link is signed and names
    this row, and works once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The UserSession row of the sign-in (not a foreign key: the row goes
    # when the session ends, and the alert stays to say what happened).
    session_row = models.IntegerField()
    known_browser = models.ForeignKey(KnownBrowser, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)


# --- Background work watching itself -------------------------------------------------


class WorkerBeat(models.Model):
    """A task worker that is alive: it touches ``seen_at`` every few seconds,
    also while a task runs. A RUNNING task whose worker has not been seen for
    ``GATECHECK_TASK_RECLAIM_SECONDS`` is taken back (``accounts.background``)."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The task it is running now, if any (a DBTaskResult id).
    task_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.worker_id} on {self.host} (pid {self.pid})"


class JobMark(models.Model):
    """A named point in time that background work leaves behind, with a little
    state: the last finished sweep, the last due time each periodic job was
    enqueued for, where the nightly scoring stopped, the health probe's
    committed write."""

    name = models.CharField(max_length=100, primary_key=True)
    at = models.DateTimeField()
    value = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


class MetricCounter(models.Model):
    """A Prometheus counter kept in the database, so that the worker's counts
    (tasks, mail) are seen by whichever web process answers /metrics."""

    name = models.CharField(max_length=64)
    labels = models.CharField(max_length=200, blank=True)
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_counter_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user) -> ApiTokenQuerySet:
        return self.filter(user=user)

    def live(self, now=None) -> ApiTokenQuerySet:
        """Neither revoked nor expired, and the person still active."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now(), user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for ``/api/v1/`` (SECURITY.md 33): 256 random bits,
    shown once; only the SHA-256 is kept. ``scope`` is one of
    ``accounts.tokens.SCOPES``. Revoking keeps the row (the audit trail and
    the list say when and why); the digest of a revoked token never works."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=20)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    # The per-minute limit: the minute (seconds since the epoch // 60) and the requests counted in it.
    window = models.BigIntegerField(default=0)
    used_in_window = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=100, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return self.name

    @property
    def live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class AlertChannel(models.Model):
    """One of a person's alert channels: an apprise URL (Slack, Teams,
    Telegram, Discord, ntfy, Pushover, PagerDuty, Opsgenie, a JSON webhook,
    e-mail...) and the events it gets (``accounts.channels.EVENTS``).

    The URL holds a credential: it is stored encrypted (``url_sealed``,
    accounts.channels), shown only in apprise's privacy form (``url_shown``),
    never exported nor logged."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=100)
    url_sealed = models.TextField()
    url_shown = models.CharField(max_length=300)
    events = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    # Deliveries that failed in a row since the last that worked; at FAILING_AFTER the person is e-mailed once.
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class InvitationQuerySet(models.QuerySet):
    def open(self) -> InvitationQuerySet:
        """Neither accepted nor revoked (an expired one is still open: inviting
        the address again renews it)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def pending(self, now=None) -> InvitationQuerySet:
        return self.open().filter(expires_at__gt=now or timezone.now())


class Invitation(models.Model):
    """An invitation of one address to one desk (SECURITY.md 34).

    Its link is made by the worker when the e-mail leaves: a signed value
    naming the row and a secret of 256 random bits of which only the SHA-256
    is kept here. Sending again makes a new secret, so only the newest link
    works; accepting or revoking spends it."""

    LIFETIME = timedelta(days=7)

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    email = models.EmailField()  # lower-cased
    desk = models.ForeignKey(Desk, on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    digest = models.CharField(max_length=64, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["desk", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_desk_and_address",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.desk}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return self.Status.ACCEPTED
        if self.revoked_at:
            return self.Status.REVOKED
        return self.Status.PENDING if self.expires_at > timezone.now() else self.Status.EXPIRED

    def get_status_display(self) -> str:
        return self.Status(self.status).label


class ExternalIdentity(models.Model):
    """An account at the firm's identity provider, linked to one Gatecheck
    account: only through an invitation to its verified address, or by the
    signed-in owner after a fresh code (SECURITY.md 32)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    linked_at = models.DateTimeField(default=timezone.now)
    linked_via = models.CharField(max_length=20)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_once")]

    def __str__(self) -> str:
        return f"{self.email or self.subject} at {self.issuer}"


class ScimToken(models.Model):
    """A bearer token of the firm's provisioning client for /scim/v2/
    (SECURITY.md 33): made by ``manage.py scim_token``, shown once, only
    its SHA-256 kept; named, expiring, revocable, its last use recorded."""

    name = models.CharField(max_length=100, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
