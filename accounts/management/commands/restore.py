"""Replace the whole database with a backup made by ``manage.py backup`` (see accounts.backups)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from accounts.backups import BackupProblem, database_holds_people, database_restore
from accounts.management.base import GatecheckCommand


class Command(GatecheckCommand):
    help = (
        "Replace the whole database with FILE, all or nothing. Refuses a database that holds any user "
        "or anything of one unless --force. Stop the web, worker and scheduler first; run migrate after."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--force", action="store_true", help="Replace a database that holds users and their data.")

    def handle(self, *args, file: str, force: bool = False, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No backup at {path}.")
        # Restoring over people's data loses whatever happened since the backup.
        if not force and database_holds_people():
            raise CommandError("The database is not empty (it holds users or their data): nothing restored. Use --force to replace it.")
        try:
            database_restore(path)
        except (BackupProblem, OSError) as problem:
            raise CommandError(f"Nothing restored: {problem}") from None
        self.stdout.write(f"Restored the database from {path}. Run `manage.py migrate` if this release is newer than the backup.")
