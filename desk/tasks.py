"""Background work of the desk: the daily reminders and digests, and the
delivery of a lead's one-click reminder.

Enqueued by the scheduler (``manage.py scheduler``); idempotent per day
through ``ReminderLog``'s (recipient, kind, day) claims, each taken in the
transaction that sends its one message.
"""

from __future__ import annotations

from datetime import date

from django.tasks import task
from django.utils import timezone

from accounts.background import periodic

from .services import reminders_deliver_claimed, reminders_send_daily


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


@task
def reminders_deliver(kind: str, day: str, messages: list[list]) -> int:
    """Send reminders already claimed in a request; a failure gives the claim back.

    Twice is safe: the claim is marked delivered in the transaction that
    sends, so a second run skips what the first delivered."""
    return reminders_deliver_claimed(kind=kind, day=date.fromisoformat(day), messages={uid: message for uid, message in messages})
