"""Print one single-use backup code for a user, e.g. so the first admin can get in."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts.audit import record_event
from accounts.management.base import GatecheckCommand
from accounts.models import RecoveryCodeDevice, User


class Command(GatecheckCommand):
    help = "Add one single-use backup code to USERNAME's account and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = User.objects.filter(username=User.normalize_username(username)).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Backup codes", "confirmed": True})
        code = device.add_code()
        record_event(action="mfa.backup_code_issued", subject=user, object_label=user.username, details={"via": "manage.py"})
        self.stdout.write(code)
