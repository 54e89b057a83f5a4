"""Invite people to a desk (INVENTORY.md): the link goes only by e-mail,
through the worker; this prints one line per address and never a link."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts import invitations
from accounts.management.base import GatecheckCommand
from accounts.models import Desk


class Command(GatecheckCommand):
    help = "Invite e-mail addresses to a desk. Each gets a single-use link by e-mail, valid 7 days."

    def add_arguments(self, parser):
        parser.add_argument("--desk", required=True, help="The desk's name.")
        parser.add_argument("emails", nargs="+", metavar="EMAIL")

    def handle(self, *args, desk: str, emails: list[str], **options):
        target = Desk.objects.filter(name=desk).first()
        if target is None:
            raise CommandError(f"No desk named '{desk}'.")
        addresses = invitations.addresses_from(" ".join(emails))
        try:
            results = invitations.invite(desk=target, addresses=addresses, by=None)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from None
        for address, outcome in results:
            self.stdout.write(f"{address}\t{outcome}")
