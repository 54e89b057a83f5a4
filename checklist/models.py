"""The remaining readiness inputs (profile, market data, drills, accepted
risks) and the stored daily scores. Values follow shared/INVENTORY.md."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import models

from devices.models import OwnedQuerySet, Platform, choices
from readiness import rules
from readiness import vocabulary as words
from readiness.validators import ACCEPTED_RISK_MAX_DAYS

Region = choices("Region", words.REGIONS)


class TradingProfile(models.Model):
    BrokerMfa = choices("BrokerMfa", words.BROKER_MFA)

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_profile")
    broker = models.CharField(max_length=50, default="IBKR")
    broker_mfa = models.CharField(max_length=20, choices=BrokerMfa.choices, null=True, blank=True)
    regions_traded = models.JSONField(default=list, blank=True)
    plan_complex_orders = models.CharField(max_length=20, choices=Platform.choices, null=True, blank=True)
    plan_transfers_statements = models.CharField(max_length=20, choices=Platform.choices, null=True, blank=True)
    plan_alerts_light_execution = models.CharField(max_length=20, choices=Platform.choices, null=True, blank=True)
    products_traded = models.JSONField(default=list, blank=True)
    support_contact = models.CharField(
        max_length=200, blank=True, help_text="Your broker's support line, printed on your recovery card."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.owner} @ {self.broker}"


class Subscription(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    region = models.CharField(max_length=5, choices=Region.choices)
    feed = models.CharField(max_length=120)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["region", "feed"]
        constraints = [models.UniqueConstraint(fields=["owner", "feed"], name="subscription_feed_unique_per_owner")]

    def __str__(self) -> str:
        return f"{self.region}: {self.feed}"


class Drill(models.Model):
    """A rehearsed device loss. Times come from the server clock, never the browser.

    A drill is running until it is finished (``completed``, ``finished_at``)
    or abandoned (``abandoned_at``; ``finished_at`` stays null as INVENTORY.md
    requires for a drill that was not completed).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drills")
    lost_device = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    completed = models.BooleanField(default=False)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    # True for a drill run in Gatecheck (its clock and steps were recorded on
    # the server); False for one that came in from an inventory file.
    recorded = models.BooleanField(default=False)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(completed=False) | models.Q(finished_at__isnull=False), name="drill_completed_has_finish"
            ),
            models.CheckConstraint(
                condition=models.Q(completed=False) | models.Q(abandoned_at__isnull=True), name="drill_completed_not_abandoned"
            ),
            # One running drill per trader, whatever the number of parallel starts.
            models.UniqueConstraint(
                fields=["owner"], condition=models.Q(completed=False, abandoned_at__isnull=True), name="drill_one_running_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"Drill: lost {self.lost_device} ({self.started_at:%Y-%m-%d %H:%M} UTC)"

    @property
    def is_running(self) -> bool:
        return not self.completed and self.abandoned_at is None

    @property
    def reentry(self) -> timedelta | None:
        """How long re-entry took; None unless the drill was completed."""
        if not self.completed or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def too_fast(self) -> bool:
        """Completed faster than a real re-entry can be (Catalog v2.1): it does not count."""
        return self.reentry is not None and not rules.reentry_plausible(self.reentry)


class DrillStep(models.Model):
    """One step of a drill's way back in, confirmed by the trader at server time.

    The steps are fixed when the drill starts (from the inventory as it was),
    so a drill is evidence of what the trader really did, step by step.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drill_steps")
    drill = models.ForeignKey(Drill, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120)
    detail = models.TextField(max_length=1000)
    gap = models.BooleanField(default=False)
    fix_url = models.CharField(max_length=60, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["drill", "position"]
        constraints = [models.UniqueConstraint(fields=["drill", "position"], name="drill_step_unique_position")]

    def __str__(self) -> str:
        return f"Step {self.position + 1}: {self.title}"


Product = choices("Product", words.PRODUCTS)


class Permission(models.Model):
    """A trading permission of the account: a product in a region, and where the request stands."""

    Status = choices("Status", words.PERMISSION_STATUSES)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="permissions")
    product = models.CharField(max_length=10, choices=Product.choices)
    region = models.CharField(max_length=5, choices=Region.choices)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.NOT_REQUESTED)
    requested_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["product", "region"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "product", "region"], name="permission_unique_per_pair"),
            models.CheckConstraint(condition=models.Q(status__in=list(words.PERMISSION_STATUSES)), name="permission_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_product_display()} in {self.region}"

    def sort_key(self) -> tuple:
        return (list(words.PRODUCTS).index(self.product) if self.product in words.PRODUCTS else 99, self.region, self.pk or 0)


class AcceptedRisk(models.Model):
    """A rule the trader knowingly leaves open until a date (at most 90 days ahead).

    It never changes the rule's status or points; it only takes the rule out of
    the next best actions and is shown, with its reason, to the desk lead.
    """

    MAX_DAYS = ACCEPTED_RISK_MAX_DAYS

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="accepted_risks")
    rule = models.CharField(max_length=40)
    reason = models.CharField(max_length=300)
    until = models.DateField()
    created_on = models.DateField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["rule"]
        constraints = [models.UniqueConstraint(fields=["owner", "rule"], name="accepted_risk_unique_per_rule")]

    def __str__(self) -> str:
        return self.rule


class ReadinessSnapshot(models.Model):
    """One trader's score on one day; rewritten, never duplicated, that day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="readiness_snapshots")
    date = models.DateField()
    score = models.PositiveSmallIntegerField()
    level = models.CharField(max_length=10)
    statuses = models.JSONField(default=dict, help_text="Rule id -> status.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date"]
        # Also the (user, date) index every bounded history read uses.
        constraints = [models.UniqueConstraint(fields=["user", "date"], name="snapshot_unique_per_day")]


# The desk filters and sorts on each rule's status, so each has a column.
# One column per rule of the catalog, named after its id (a test checks the model has each).
RULE_COLUMNS: dict[str, str] = {rule.id: rule.id.replace(".", "_") for rule in rules.CATALOG}


def _rule_column() -> models.CharField:
    return models.CharField(max_length=8, blank=True, db_index=True)


class CurrentScore(models.Model):
    """Each trader's newest stored score, one row per trader, so that the desk
    filters, sorts, pages and counts in SQL whatever the history's length.

    Written only by ``checklist.services`` together with the snapshot it
    mirrors (``snapshots_store``). Besides the score it keeps the trader's due
    dates (``due``; ``next_due_on`` is the earliest dated one, ``due_now`` says
    one was never done), so "overdue" and "due soon" are read on any later day
    without re-reading the inventory: the dates do not move, today does.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="current_score")
    date = models.DateField()
    score = models.PositiveSmallIntegerField()
    level = models.CharField(max_length=10)
    level_rank = models.PositiveSmallIntegerField(help_text="readiness.vocabulary.LEVEL_ORDER, for sorting.")
    change = models.SmallIntegerField(null=True, blank=True, help_text="Score minus the newest one stored 7 to 14 days earlier.")
    # Rule id -> the lead's one-line reason (masked), shown on the desk heatmap.
    reasons = models.JSONField(default=dict, blank=True)
    devices_trusted = _rule_column()
    recovery_current = _rule_column()
    credentials_segmented = _rule_column()
    credentials_rotation = _rule_column()
    interfaces_mapped = _rule_column()
    marketdata_covered = _rule_column()
    drill_rehearsed = _rule_column()
    automation_failsafe = _rule_column()
    mfa_broker = _rule_column()
    permissions_cleared = _rule_column()
    automation_alive = _rule_column()
    next_due_on = models.DateField(null=True, blank=True, db_index=True)
    due_now = models.BooleanField(default=False)
    due = models.JSONField(default=list, help_text="[due day or null, kind] for every due date.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["score"], name="current_score"),
            models.Index(fields=["level_rank", "score"], name="current_level_score"),
            models.Index(fields=["change"], name="current_change"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.score} on {self.date}"


class ScoreTally(models.Model):
    """One count of a desk's current scores (``checklist.tallies``): the
    desk's tiles and per-rule totals, kept in step with ``CurrentScore`` by
    the write that changes it, so a desk page never reads every trader.

    ``scope`` is ``d<desk id>`` or ``all`` (the members of any desk, each
    counted once); ``as_of`` is the day "overdue" was counted against.
    """

    scope = models.CharField(max_length=24)
    name = models.CharField(max_length=40)
    n = models.BigIntegerField(default=0)
    as_of = models.DateField()
    built_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "name"], name="tally_unique_per_scope")]

    def __str__(self) -> str:
        return f"{self.scope} {self.name}={self.n}"


class CalendarFeed(models.Model):
    """A revocable random token that grants read access to one user's due-date feed only."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    # Only a SHA-256 of the token is kept, so a database read does not yield
    # working feed URLs; the trader sees the token once, when it is made.
    token = models.CharField(max_length=64, unique=True, help_text="SHA-256 (hex) of the feed token, never the token.")
    created_at = models.DateTimeField(auto_now_add=True)

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
