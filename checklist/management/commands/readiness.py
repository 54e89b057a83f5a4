"""``manage.py readiness --user U [--as-of D] [--json]``: one trader's score."""

from __future__ import annotations

import json
from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from accounts.management.base import GatecheckCommand
from checklist.templatetags.readiness import level_label, points, status_label
from devices.selectors import report_for


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of: '{value}' is not a date (YYYY-MM-DD)")


class Command(GatecheckCommand):
    help = "Print a trader's readiness score; --json prints the object of INVENTORY.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username of the trader.")
        parser.add_argument("--as-of", help="Day to score (YYYY-MM-DD); today by default.")
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object.")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        username = User.normalize_username(options["user"])
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user: no user named '{options['user']}'")
        as_of = parse_day(options["as_of"]) if options["as_of"] else timezone.localdate()
        report = report_for(user, as_of)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(user.get_username())))
            return
        self.stdout.write(f"{user.get_username()} on {as_of.isoformat()}: {report.score}/100, {level_label(report.level).lower()}")
        for r in report.results:
            accepted = f" [risk accepted until {r.accepted_until.isoformat()}]" if r.accepted_until else ""
            self.stdout.write(f"  {status_label(r.status):<14} {points(r.points):>4}/{r.weight:<3} {r.id:<22} {r.reason}{accepted}")
