"""What the desk app remembers: which reminders went out, per person and day."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ReminderLog(models.Model):
    """One reminder e-mail sent to one person on one day.

    The unique constraint is the idempotency key: the daily command and the
    lead's "send reminder" button each claim a row before sending, so a second
    run (or a second click) the same day finds the row and sends nothing.
    """

    class Kind(models.TextChoices):
        DAILY = "daily", "Daily reminder"
        MANUAL = "manual", "Reminder sent by a lead"
        DIGEST = "digest", "Lead digest"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders_received")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    date = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    item_count = models.PositiveIntegerField(default=0)
    # Which run claimed the row: a batch inserts its claims at once and reads
    # back the ones carrying its token (the others were already taken).
    claim = models.UUIDField(null=True, blank=True, editable=False)
    # False while a lead's claim waits for the worker; set in the transaction
    # that sends (a daily claim is inserted delivered, with its send).
    delivered = models.BooleanField(default=True)

    class Meta:
        ordering = ["-date", "-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "date"], name="reminder_once_per_kind_and_day"),
            models.CheckConstraint(condition=models.Q(kind__in=["daily", "manual", "digest"]), name="reminder_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} on {self.date}"


class LeaverCheck(models.Model):
    """What a desk must revoke at the broker for a person who left: opened
    when they are deactivated (accounts.offboarding), from the inventory
    Gatecheck holds; a lead ticks each item off."""

    desk = models.ForeignKey("accounts.Desk", on_delete=models.CASCADE, related_name="leaver_checks")
    # PROTECT: deleting the leaver's account must not wipe what is left to revoke.
    leaver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self) -> str:
        return f"Leaver checklist of {self.leaver} on {self.desk}"


class LeaverItem(models.Model):
    class Kind(models.TextChoices):
        KEY = "key", "API key"
        BOT = "bot", "Bot"
        DEVICE = "device", "Trusted device"

    check_list = models.ForeignKey(LeaverCheck, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    label = models.CharField(max_length=100)
    detail = models.CharField(max_length=200, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["pk"]  # as listed: keys, bots, devices

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label}"
