"""The stored scores: each trader's daily snapshots, their current row for
the desk, the desks' tallies, and the calendar feed's token. What the
scores are computed from (the whole inventory) lives in the devices app."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from readiness import rules


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
