"""Back up the whole database to FILE (see accounts.backups)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from accounts.backups import BackupProblem, database_backup
from accounts.management.base import GatecheckCommand


class Command(GatecheckCommand):
    help = (
        "Copy the whole database, consistently, to FILE while the site runs: a SQLite database "
        "file, or a pg_dump custom archive on PostgreSQL. FILE appears only once complete."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")

    def handle(self, *args, file: str, **options):
        path = Path(file)
        try:
            database_backup(path)
        except (BackupProblem, OSError) as problem:
            raise CommandError(f"No backup written: {problem}") from None
        self.stdout.write(f"Backed up the database to {path} ({path.stat().st_size} bytes).")
