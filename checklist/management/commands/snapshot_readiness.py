"""``manage.py snapshot_readiness [--as-of D]``: store every user's score for a day.

Idempotent: running it again the same day rewrites that day's rows.
"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from accounts.management.base import GatecheckCommand
from checklist.management.commands.readiness import parse_day
from checklist.services import snapshot_all


class Command(GatecheckCommand):
    help = "Score every active user and store the day's readiness snapshot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", help="Day to score (YYYY-MM-DD); today by default.")

    def handle(self, *args, **options) -> None:
        as_of = parse_day(options["as_of"]) if options["as_of"] else timezone.localdate()
        run = snapshot_all(as_of)
        count = run.stored
        self.stdout.write(f"Stored readiness snapshots of {count} user{'s' if count != 1 else ''} for {as_of.isoformat()}.")
        if run.failed:
            # Every other user was stored; the exit status tells cron something needs a look.
            raise CommandError(f"Scoring failed for {len(run.failed)} user(s) (ids {', '.join(map(str, run.failed))}); see the log.")
