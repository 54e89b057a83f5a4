"""What can get a trader into (or lock them out of) their broker account.

Field names and allowed values follow shared/INVENTORY.md. No model here
holds a secret: keys are metadata with at most a 4-character fingerprint.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
        return self.label


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
        ]

    def __str__(self) -> str:
        return self.label


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
