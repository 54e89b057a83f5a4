"""What can get a trader into (or lock them out of) their broker account.

Field names and allowed values follow shared/INVENTORY.md. No model here
holds a secret: keys are metadata with at most a 4-character fingerprint.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from readiness.masking import mask_label

# A key expiring within this many days is flagged on the keys page.
EXPIRY_WARNING_DAYS = 14
MONEY_SCOPES = ("transfer", "withdraw")


class OwnedQuerySet(models.QuerySet):
    def for_owner(self, user) -> OwnedQuerySet:
        """The one place ownership is enforced: views look objects up through this."""
        return self.filter(owner=user)


class Platform(models.TextChoices):
    TWS = "tws", "Trader Workstation"
    DESKTOP = "desktop", "IBKR Desktop"
    CLIENT_PORTAL = "client_portal", "Client Portal"
    MOBILE = "mobile", "IBKR Mobile"
    API = "api", "Programmatic API"


class TrustedDevice(models.Model):
    class Kind(models.TextChoices):
        DESKTOP = "desktop", "Desktop"
        LAPTOP = "laptop", "Laptop"
        MOBILE = "mobile", "Mobile phone"
        TABLET = "tablet", "Tablet"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LOST = "lost", "Lost"
        REVOKED = "revoked", "Revoked"

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
            models.CheckConstraint(condition=models.Q(kind__in=["desktop", "laptop", "mobile", "tablet"]), name="device_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=["active", "lost", "revoked"]), name="device_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def sort_key(self) -> tuple:
        """Lists and the inventory file show devices by name, case-insensitively."""
        return (self.name.casefold(), self.name, self.pk or 0)

    @property
    def platform_names(self) -> list[str]:
        return [Platform(code).label for code in self.platforms if code in Platform.values]

    def is_stale(self, today: date) -> bool:
        limit = settings.GATECHECK_LIMITS["device_days"]
        return self.validated_on is None or (today - self.validated_on).days > limit

    def warnings(self, today: date) -> list[str]:
        """Plain-words problems shown next to the device."""
        if self.status == self.Status.LOST:
            return ["Lost: revoke it at your broker now, from another trusted device, then mark it revoked here."]
        if self.status == self.Status.REVOKED:
            return []
        found = []
        if self.validated_on is None:
            found.append("Never validated at the broker: validate it now, not during a volatile session.")
        elif self.is_stale(today):
            limit = settings.GATECHECK_LIMITS["device_days"]
            found.append(f"Last validated more than {limit} days ago: validate it again and record the day.")
        if self.browser_saved_password:
            found.append("A browser saves your broker password here: remove it and rely on your second factor.")
        return found


class RecoveryMethod(models.Model):
    class Kind(models.TextChoices):
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"
        AUTHENTICATOR = "authenticator", "Authenticator app"
        BACKUP_CODES = "backup_codes", "Backup codes"
        HARDWARE_KEY = "hardware_key", "Hardware key"
        SECONDARY_DEVICE = "secondary_device", "Secondary device"

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
            models.CheckConstraint(
                condition=models.Q(kind__in=["phone", "email", "authenticator", "backup_codes", "hardware_key", "secondary_device"]),
                name="recovery_kind_valid",
            ),
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

    def is_stale(self, today: date) -> bool:
        limit = settings.GATECHECK_LIMITS["recovery_days"]
        return self.last_verified_on is None or (today - self.last_verified_on).days > limit

    def warnings(self, today: date) -> list[str]:
        if self.last_verified_on is None:
            return ["Never verified: check that it still reaches you, then mark it verified."]
        if self.is_stale(today):
            limit = settings.GATECHECK_LIMITS["recovery_days"]
            return [f"Not verified for more than {limit} days: check that it still reaches you."]
        return []


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        TRADE = "trade", "Trade"
        TRANSFER = "transfer", "Transfer"
        WITHDRAW = "withdraw", "Withdraw"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

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
            models.CheckConstraint(condition=models.Q(status__in=["active", "revoked"]), name="apikey_status_valid"),
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
        return [scope for scope in self.scopes if scope in MONEY_SCOPES]

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def age_from(self) -> date:
        """The day the key's age counts from: the later of creation and last rotation."""
        return max(self.created_on, self.last_rotated_on or self.created_on)

    def warnings(self, today: date) -> list[str]:
        """Plain-words problems shown next to the key. Reads ``automations``:
        prefetch it on lists."""
        if not self.is_active:
            return []
        found = []
        users = [a.name for a in self.automations.all()]
        if self.money_scopes and users:
            found.append(
                f"Has {' and '.join(self.money_scopes)} scope and is used by {', '.join(users)}: "
                "an automation should never be able to move money. Issue it a key without these scopes."
            )
        if not self.ip_restricted:
            found.append("Not limited to known IP addresses: anyone holding the secret can use it from anywhere.")
        if self.expires_on is not None:
            days = (self.expires_on - today).days
            if days < 0:
                found.append(f"Expired on {self.expires_on:%Y-%m-%d}: rotate it and record the new expiry.")
            elif days <= EXPIRY_WARNING_DAYS:
                when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
                found.append(f"Expires {when} ({self.expires_on:%Y-%m-%d}): rotate it before it stops your automations.")
        if len(users) > 1:
            found.append(f"Shared by {len(users)} automations: give each its own key so one can be revoked alone.")
        return found


class Automation(models.Model):
    class OnAuthFailure(models.TextChoices):
        FLATTEN = "flatten", "Flatten positions"
        CLOSE = "close", "Close positions"
        HALT = "halt", "Halt only"
        NONE = "none", "Nothing"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

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
            models.CheckConstraint(condition=models.Q(on_auth_failure__in=["flatten", "close", "halt", "none"]), name="automation_failure_valid"),
            models.CheckConstraint(condition=models.Q(status__in=["active", "paused"]), name="automation_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def sort_key(self) -> tuple:
        return (self.name.casefold(), self.name, self.pk or 0)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def warnings(self) -> list[str]:
        """Plain-words problems shown next to the automation. Reads
        ``api_key``: use select_related on lists."""
        found = []
        key = self.api_key
        if key is None:
            found.append(
                "Runs on your human login: a bot error or a leaked session exposes everything you can do. "
                "Give it its own permission-limited service-account key."
            )
        else:
            if key.money_scopes:
                found.append(f"Its key '{key.label}' has {' and '.join(key.money_scopes)} scope: remove it.")
            if key.status == ApiKey.Status.REVOKED:
                found.append(f"Its key '{key.label}' is revoked: record the key it uses now.")
            elif not key.service_account:
                found.append(f"Its key '{key.label}' is not held by a service account.")
        if not self.token_refresh:
            found.append("No token refresh: it stops, or worse, runs blind when its session expires.")
        if not self.fallback_contact.strip():
            found.append("No fallback contact: nobody is told when it cannot log in.")
        if self.on_auth_failure == self.OnAuthFailure.NONE:
            found.append("Does nothing when authentication fails: positions stay open unattended.")
        return found
