"""Print a trader's inventory as a gatecheck.inventory/1 document (shared/INVENTORY.md)."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts.audit import record_read
from accounts.management.base import GatecheckCommand
from accounts.models import User
from devices.inventory import dumps, export_inventory


class Command(GatecheckCommand):
    help = "Print USERNAME's readiness inventory as JSON (gatecheck.inventory/1)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="USERNAME")

    def handle(self, *args, **options):
        username = User.normalize_username(options["user"])
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        document = export_inventory(user)
        record_read(action="inventory.exported", subject=user, object_label="command")
        self.stdout.write(dumps(document), ending="")
