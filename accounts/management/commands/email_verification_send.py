"""Mail a confirmation link to every active account whose address is not
confirmed: run once after upgrading to a version that confirms addresses,
since accounts from before count as unconfirmed and get no security notices,
reminders or reset links until their owner follows a link."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from accounts import mail
from accounts.management.base import GatecheckCommand
from accounts.models import User, has_verified_email


class Command(GatecheckCommand):
    help = "E-mail a confirmation link to every active account with an unconfirmed address (links on GATECHECK_SITE_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count the accounts")

    def handle(self, *args, dry_run: bool = False, **options):
        base = settings.GATECHECK_SITE_URL.rstrip("/")
        if not base and not dry_run:
            raise CommandError("Set GATECHECK_SITE_URL (e.g. https://gatecheck.example.com): the links need the site's address.")
        people = User.objects.filter(is_active=True).exclude(email="").exclude(has_verified_email()).values_list("pk", "email")
        sent = 0
        for pk, email in people.iterator(chunk_size=1000):
            if not dry_run:
                mail.linked_enqueue("verify", pk, base=base + "/", extra={"email": email})
            sent += 1
        self.stdout.write(f"{sent} account(s) {'would be' if dry_run else ''} sent a confirmation link.".replace("  ", " "))
