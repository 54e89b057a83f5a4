"""What can get a trader into (or lock them out of) their broker account.

Field names and allowed values follow shared/INVENTORY.md. No model here
holds a secret: keys are metadata with at most a 4-character fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_label
from readiness.validators import ACCEPTED_RISK_MAX_DAYS
from readiness.validators import HEARTBEAT_GRACE_MINUTES as GRACE
from readiness.validators import HEARTBEAT_PERIOD_MINUTES as PERIOD

from . import schedules


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
    # Set when a pipeline recorded the rotation through the API (recorded
    # evidence: the server's clock and the token); cleared when the trader
    # types a rotation date again (declared evidence).
    rotation_recorded_at = models.DateTimeField(null=True, blank=True)
    rotation_token = models.ForeignKey("accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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
    the ping token is kept. The schedule (``readiness.schedules``) says when
    check-ins are expected; ``deadline`` is the next moment the status can
    change without a ping (``schedules.next_change``: down, or a market bot's
    window closing), so the sweep finds heartbeats to look at with one
    indexed query, whatever their schedules.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="heartbeats")
    automation = models.OneToOneField(Automation, on_delete=models.CASCADE, related_name="heartbeat")
    period_minutes = models.PositiveIntegerField()
    grace_minutes = models.PositiveIntegerField()
    schedule_kind = models.CharField(max_length=10, default="simple", choices=[(k, k) for k in schedules.KINDS])
    cron = models.CharField(max_length=100, blank=True)
    tz = models.CharField("time zone", max_length=64, default="UTC")
    exchange = models.CharField(max_length=10, blank=True)
    before_open = models.PositiveSmallIntegerField(default=0)
    after_close = models.PositiveSmallIntegerField(default=0)
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
            one_of("schedule_kind", dict.fromkeys(schedules.KINDS), "heartbeat_schedule_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(before_open__lte=schedules.MARGIN_MINUTES[1], after_close__lte=schedules.MARGIN_MINUTES[1]),
                name="heartbeat_margins_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Heartbeat of {self.automation}"

    SCHEDULE_FIELDS = ("schedule_kind", "cron", "tz", "exchange", "before_open", "after_close")

    @property
    def schedule(self) -> schedules.Schedule:
        return schedules.Schedule(self.schedule_kind, self.cron, self.tz, self.exchange, self.before_open, self.after_close)

    def _observed(self) -> dict:
        success = self.last_at if self.last_kind == "success" else None
        return {"last_kind": self.last_kind or None, "last_success": success, "period_minutes": self.period_minutes,
                "grace_minutes": self.grace_minutes, "created_at": self.created_at or timezone.now()}

    def status_at(self, now: datetime) -> str:
        """new, up, late, down, failing or idle (readiness.schedules)."""
        return schedules.status(self.schedule, **self._observed(), now=now)

    def next_change(self, now: datetime) -> datetime | None:
        """What ``deadline`` should hold from ``now`` on."""
        return schedules.next_change(self.schedule, **self._observed(), now=now, told=self.notified)


class HeartbeatSignal(models.Model):
    """One ping received. A heartbeat keeps its last ``SIGNALS_KEPT``,
    trimmed on every ``TRIM_EVERY``-th ping, so never more than
    ``SIGNALS_KEPT + TRIM_EVERY - 1``, and nine pings in ten delete nothing."""

    SIGNALS_KEPT = 20
    TRIM_EVERY = 10
    # Bytes of a ping's body kept (sent as the Ping-Body-Limit header).
    BODY_LIMIT = 10_000

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="heartbeat_signals")
    heartbeat = models.ForeignKey(Heartbeat, on_delete=models.CASCADE, related_name="signals")
    at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=list(words.SIGNAL_KINDS.items()))
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    # The POST body: at most BODY_LIMIT characters, line breaks kept, secrets masked in place.
    message = models.TextField(blank=True)
    # /ping/<token>/<0-255>: the exit status the signal came with.
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # ?rid=<uuid>: the run a start and its end belong to.
    rid = models.UUIDField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["heartbeat", "-id"], name="signal_heartbeat_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"


class Incident(models.Model):
    """A bot that went down or failing: open until it checks in again.
    Acknowledged ("I'm on it") by its owner or a lead through a link each
    of them got; unacknowledged past its desk's escalation time, it reaches
    the desk's leads' channels (devices.incidents)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="incidents")
    heartbeat = models.ForeignKey(Heartbeat, on_delete=models.CASCADE, related_name="incidents")
    status = models.CharField(max_length=10)  # down or failing
    opened_at = models.DateTimeField(default=timezone.now)
    acked_at = models.DateTimeField(null=True, blank=True)
    acked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # When it goes to the leads if nobody acknowledged it: the shortest escalation time of its owner's desks, set when it opens.
    escalate_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            # The sweep's question each minute: which incidents waiting for someone are due to escalate.
            models.Index(
                fields=["escalate_at"], name="incident_to_escalate",
                condition=models.Q(closed_at__isnull=True, acked_at__isnull=True, escalated_at__isnull=True),
            ),
        ]
        constraints = [
            # At most one open incident per bot.
            models.UniqueConstraint(fields=["heartbeat"], condition=models.Q(closed_at__isnull=True), name="incident_one_open_per_bot"),
        ]

    def __str__(self) -> str:
        return f"{self.status} at {self.opened_at:%Y-%m-%d %H:%M}"


class AckLink(models.Model):
    """One recipient's "I'm on it" link of an incident (SECURITY.md 34):
    192 random bits, only the SHA-256 kept, valid 24 hours, good once."""

    LIFETIME = timedelta(hours=24)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="links")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class PingKey(models.Model):
    """A trader's ping key: ``/ping/<key>/<slug>`` reaches any of their bots
    by its slug, so one secret serves a fleet. 192 random bits, shown once;
    only the SHA-256 is kept."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ping_key")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    def __str__(self) -> str:
        return "Ping key"


# --------------------------------------------------------------------------
# The rest of what a trader declares or records: profile, market data, drills,
# permissions and accepted risks (in the checklist app's tables until 2026-12).
# --------------------------------------------------------------------------


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
    # When the trader's TWS or IB Gateway restarts each day (its Lock and Exit
    # setting), in their own zone: a quiet window in the calendar feed. Not in
    # the inventory file, and kept by an import, like the support contact.
    platform_restart_at = models.TimeField(null=True, blank=True)
    platform_restart_tz = models.CharField(max_length=64, default="America/New_York")
    support_contact = models.CharField(
        max_length=200, blank=True, help_text="Your broker's support line, printed on your recovery card."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_tradingprofile"

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
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_subscription"
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
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_drill"
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
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_drillstep"
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
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_permission"
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
        # Moved from the checklist app; the table keeps its name.
        db_table = "checklist_acceptedrisk"
        ordering = ["rule"]
        constraints = [models.UniqueConstraint(fields=["owner", "rule"], name="accepted_risk_unique_per_rule")]

    def __str__(self) -> str:
        return self.rule
