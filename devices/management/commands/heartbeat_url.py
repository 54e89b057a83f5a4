"""``heartbeat_url --user USERNAME --automation NAME``: a new ping token, printed as two URLs."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.urls import reverse

from accounts.management.base import GatecheckCommand
from accounts.models import User
from accounts.net import site_base
from devices import services
from devices.models import Automation, Heartbeat


class Command(GatecheckCommand):
    help = "Give an automation a new ping token (the old one stops working) and print its success and fail URLs."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--automation", required=True)

    def handle(self, *args, user: str, automation: str, **options):
        owner = User.objects.filter(username=User.normalize_username(user)).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}.")
        bot = Automation.objects.for_owner(owner).filter(name=automation).first()
        if bot is None:
            raise CommandError(f"{owner.username} has no automation named {automation!r}.")
        beat = Heartbeat.objects.filter(automation=bot).first()
        if beat is None:
            raise CommandError(f"Automation {automation!r} has no heartbeat schedule yet: set one on its page or in an inventory file first.")
        token = services.heartbeat_rotate(request=None, heartbeat=beat)
        site = site_base()
        self.stdout.write(site + reverse("devices:ping", args=[token]))
        self.stdout.write(site + reverse("devices:ping_fail", args=[token]))
