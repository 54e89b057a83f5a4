"""The base of Gatecheck's commands: a database fault is one clear line, not a traceback."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseFault


def database_problem(error: BaseException) -> str:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return (
        f"The database could not finish this command: {reason}. "
        "Check that it is reachable, writable and has free disk space; nothing of the failed step was saved."
    )


class GatecheckCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DatabaseFault as error:
            raise CommandError(database_problem(error)) from None
