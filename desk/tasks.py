"""Background work of the desk: the daily reminders and digests, and the
delivery of a lead's one-click reminder.

Enqueued by the one scheduler (``manage.py crontask``); idempotent per day
through ``ReminderLog``'s (recipient, kind, day) claims.
"""

from __future__ import annotations

from datetime import date

from crontask import cron
from django.tasks import task
from django.utils import timezone

from .services import reminders_deliver_claimed, reminders_send_daily


@cron("30 6 * * *")
@task
def reminders_daily(as_of: str | None = None) -> dict:
    """06:30: every trader's reminder and every lead's digest, after the
    night's scores (``checklist.tasks.snapshots_nightly``)."""
    day = date.fromisoformat(as_of) if as_of else timezone.localdate()
    run = reminders_send_daily(as_of=day)
    return {"reminders": run.reminders, "digests": run.digests, "already": run.already, "failed": run.failed}


@task
def reminders_deliver(kind: str, day: str, messages: list[list]) -> int:
    """Send reminders already claimed in a request; a failure gives the claim back."""
    return reminders_deliver_claimed(kind=kind, day=date.fromisoformat(day), messages={uid: message for uid, message in messages})
