"""Replace a trader's inventory with a gatecheck.inventory/1 document (shared/INVENTORY.md)."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from accounts.management.base import GatecheckCommand
from accounts.models import User
from devices.inventory import MAX_IMPORT_BYTES, InventoryInvalid, load, replace_inventory


class Command(GatecheckCommand):
    help = "Replace USERNAME's readiness inventory with FILE (JSON, gatecheck.inventory/1); '-' reads standard input."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="USERNAME")
        parser.add_argument("file", metavar="FILE")

    def handle(self, *args, **options):
        username = User.normalize_username(options["user"])
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        text = self._read(options["file"])
        try:
            plan = load(text)
        except InventoryInvalid as invalid:
            lines = "\n".join(f"  {line}" for line in invalid.lines())
            raise CommandError(f"Refused {options['file']}: {invalid.total} problem(s); nothing was changed.\n{lines}")
        counts = replace_inventory(user=user, plan=plan, source="command")
        summary = ", ".join(f"{key} {count}" for key, count in counts.items() if key != "profile")
        self.stdout.write(f"Imported the inventory of {user.username}: {summary}.")

    @staticmethod
    def _read(path: str) -> bytes:
        # One byte over the limit is enough for load() to refuse the file,
        # so a huge file is never read whole.
        if path == "-":
            return sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        try:
            with open(path, "rb") as handle:
                return handle.read(MAX_IMPORT_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.")
