"""``heartbeat_sweep``: find bots that stopped checking in and tell about each once (run every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from devices.services import heartbeat_sweep


class Command(BaseCommand):
    help = "Mark heartbeats whose last check-in is past period + grace as down, and alert once per transition."

    def handle(self, *args, **options):
        self.stdout.write(f"{heartbeat_sweep()} heartbeat(s) went down")
