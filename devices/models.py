"""What can get a trader into (or lock them out of) their broker account.

Field names and allowed values follow shared/INVENTORY.md. No model here
holds a secret: keys are metadata with at most a 4-character fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from readiness import vocabulary as words
from readiness.masking import mask_label
from readiness.validators import HEARTBEAT_GRACE_MINUTES as GRACE
from readiness.validators import HEARTBEAT_PERIOD_MINUTES as PERIOD


def choices(name: str, labels: Mapping[str, str]) -> type[models.TextChoices]:
    """``TextChoices`` built from a vocabulary mapping, so codes and labels are spelled once."""
    return models.TextChoices(name, [(code.upper(), (code, label)) for code, label in labels.items()])


def one_of(field_name: str, labels: Mapping[str, str], constraint: str) -> models.CheckConstraint:
    """The database's own guard that ``field_name`` holds a code of ``labels``."""
    return models.CheckConstraint(condition=models.Q(**{f"{field_name}__in": list(labels)}), name=constraint)


class OwnedQuerySet(models.QuerySet):
    def for_owner(self, user) -> OwnedQuerySet:
        """The one place ownership is enforced: views look objects up through this."""
        return self.filter(owner=user)


Platform = choices("Platform", words.ACCESS_POINTS)


class TrustedDevice(models.Model):
    Kind = choices("Kind", words.DEVICE_KINDS)
    Status = choices("Status", words.DEVICE_STATUSES)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_devices")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    platforms = models.JSONField(default=list, blank=True, help_text="Access points used on this device.")
    validated_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    browser_saved_password = models.BooleanField(default=False)
    notes = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="device_name_unique_per_owner"),
            one_of("kind", words.DEVICE_KINDS, "device_kind_valid"),
            one_of("status", words.DEVICE_STATUSES, "device_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def sort_key(self) -> tuple:
        """Lists and the inventory file show devices by name, case-insensitively."""
        return (self.name.casefold(), self.name, self.pk or 0)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def platform_names(self) -> list[str]:
        return [Platform(code).label for code in self.platforms if code in Platform.values]


class RecoveryMethod(models.Model):
    Kind = choices("Kind", words.RECOVERY_KINDS)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_methods")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    label = models.CharField(max_length=120)
    last_verified_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "label"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "label"], name="recovery_label_unique_per_owner"),
            one_of("kind", words.RECOVERY_KINDS, "recovery_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.masked_label

    def sort_key(self) -> tuple:
        """Phone and e-mail first (kinds in catalog order), then by label."""
        return (self.Kind.values.index(self.kind) if self.kind in self.Kind.values else 99, self.label.casefold(), self.label, self.pk or 0)

    @property
    def masked_label(self) -> str:
        """The label as everyone but the owner's own edit form shows it."""
        return mask_label(self.kind, self.label)


class ApiKey(models.Model):
    Scope = choices("Scope", words.KEY_SCOPES)
    Status = choices("Status", words.KEY_STATUSES)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100)
    scopes = models.JSONField(default=list, blank=True)
    service_account = models.BooleanField(default=False)
    created_on = models.DateField()
    last_rotated_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    fingerprint = models.CharField(max_length=4, blank=True, help_text="At most the last 4 characters of the key.")
    ip_restricted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["label"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(fields=["owner", "label"], name="apikey_label_unique_per_owner"),
            one_of("status", words.KEY_STATUSES, "apikey_status_valid"),
            # SQLite ignores max_length; a longer value could be a pasted secret.
            models.CheckConstraint(condition=LessThanOrEqual(Length("fingerprint"), 4), name="apikey_fingerprint_at_most_4"),
        ]

    def __str__(self) -> str:
        return self.label

    def sort_key(self) -> tuple:
        return (self.label.casefold(), self.label, self.pk or 0)

    @property
    def scope_names(self) -> list[str]:
        return [self.Scope(code).label for code in self.scopes if code in self.Scope.values]

    @property
    def money_scopes(self) -> list[str]:
        """For styling the scope chips; whether that is a problem is the rules' call."""
        return [scope for scope in self.scopes if scope in words.MONEY_SCOPES]

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Automation(models.Model):
    OnAuthFailure = choices("OnAuthFailure", words.AUTH_FAILURE_ACTIONS)
    Status = choices("Status", words.AUTOMATION_STATUSES)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=100)
    # Null means the automation runs on the trader's human login.
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="automations")
    token_refresh = models.BooleanField(default=False)
    fallback_contact = models.CharField(max_length=200, blank=True)
    on_auth_failure = models.CharField(max_length=10, choices=OnAuthFailure.choices, default=OnAuthFailure.HALT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="automation_name_unique_per_owner"),
            one_of("on_auth_failure", words.AUTH_FAILURE_ACTIONS, "automation_failure_valid"),
            one_of("status", words.AUTOMATION_STATUSES, "automation_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def sort_key(self) -> tuple:
        return (self.name.casefold(), self.name, self.pk or 0)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Heartbeat(models.Model):
    """An automation's check-in schedule and what was last observed.

    The bot calls its secret ping URL after each successful token refresh or
    keep-alive, and its fail URL when authentication fails. Only a SHA-256 of
    the ping token is kept. ``deadline`` is when the last success stops
    counting (last success + period + grace), so the sweep finds heartbeats
    that went down with one indexed query.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="heartbeats")
    automation = models.OneToOneField(Automation, on_delete=models.CASCADE, related_name="heartbeat")
    period_minutes = models.PositiveIntegerField()
    grace_minutes = models.PositiveIntegerField()
    token_digest = models.CharField(max_length=64, unique=True, null=True, blank=True)
    last_kind = models.CharField(max_length=10, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    # The last status the trader and their leads were told about.
    notified = models.CharField(max_length=10, default="new")
    # A fixed window per token bounds the pings it can record (one row, no scan).
    window_start = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)
    # Signals recorded since the last trim of the history (HeartbeatSignal.TRIM_EVERY).
    signals_since_trim = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_minutes__gte=PERIOD[0], period_minutes__lte=PERIOD[1]), name="heartbeat_period_range"
            ),
            models.CheckConstraint(condition=models.Q(grace_minutes__gte=GRACE[0], grace_minutes__lte=GRACE[1]), name="heartbeat_grace_range"),
        ]

    def __str__(self) -> str:
        return f"Heartbeat of {self.automation}"


class HeartbeatSignal(models.Model):
    """One ping received. A heartbeat keeps its last ``SIGNALS_KEPT``,
    trimmed on every ``TRIM_EVERY``-th ping, so never more than
    ``SIGNALS_KEPT + TRIM_EVERY - 1``, and nine pings in ten delete nothing."""

    SIGNALS_KEPT = 20
    TRIM_EVERY = 10

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="heartbeat_signals")
    heartbeat = models.ForeignKey(Heartbeat, on_delete=models.CASCADE, related_name="signals")
    at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=list(words.SIGNAL_KINDS.items()))
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    message = models.CharField(max_length=1000, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["heartbeat", "-id"], name="signal_heartbeat_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"
