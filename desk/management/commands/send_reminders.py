"""E-mail traders their overdue and due-soon items, and leads a digest.

Run it daily after ``snapshot_readiness`` (the digest compares today's stored
levels with yesterday's). Running it twice on one day sends nothing new.
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError
from django.utils import timezone

from accounts.management.base import GatecheckCommand
from desk.services import reminders_send_daily


class Command(GatecheckCommand):
    help = "E-mail each trader the items coming due or overdue, and each desk lead a digest."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="The day to remind for, YYYY-MM-DD (default: today).")

    def handle(self, *args, as_of=None, **options):
        try:
            day = date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of: {as_of!r} is not a date like 2026-11-25")
        run = reminders_send_daily(as_of=day)
        self.stdout.write(
            f"{day:%Y-%m-%d}: sent {run.reminders} reminder(s) and {run.digests} digest(s); "
            f"{run.already} already sent today."
        )
        if run.failed:
            # Everyone else was reminded; the exit status tells cron something needs a look.
            raise CommandError(f"Reminders failed for {len(run.failed)} user(s) (ids {', '.join(map(str, run.failed))}); see the log.")
