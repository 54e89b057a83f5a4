"""Background work of the desk: the daily reminders and digests (a lead's
one-click reminder is delivered by ``desk.services.reminders_deliver``), and
the hourly prune of old reminder logs.

Enqueued by the scheduler (``manage.py scheduler``); idempotent per day
through ``ReminderLog``'s (recipient, kind, day) claims, each taken in the
transaction that sends its one message.
"""

from __future__ import annotations

from datetime import date

from django.tasks import task
from django.utils import timezone

from accounts.background import periodic

from .services import reminder_logs_prune, reminders_send_daily


@periodic("30 6 * * *")
@task
def reminders_daily(as_of: str | None = None) -> dict:
    """06:30: every trader's reminder and every lead's digest, after the
    night's scores (``checklist.tasks.snapshots_nightly``).

    Twice is safe: each message is claimed (person, kind, day) in the
    transaction that sends it, so a second run, or a run taken back from a
    killed worker, sends only what was not sent."""
    day = date.fromisoformat(as_of) if as_of else timezone.localdate()
    run = reminders_send_daily(as_of=day)
    return {"reminders": run.reminders, "digests": run.digests, "already": run.already, "failed": run.failed}


@periodic("37 * * * *")
@task
def reminder_logs_old_prune() -> dict:
    """Hourly: reminder logs past GATECHECK_REMINDER_RETENTION_DAYS deleted,
    in short batches (today's claims are never among them). Twice is safe:
    the second run finds nothing more."""
    return {"reminder_logs": reminder_logs_prune()}
