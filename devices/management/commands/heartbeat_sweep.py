"""``heartbeat_sweep``: find bots that stopped checking in and tell about each once (run every minute)."""

from __future__ import annotations

from accounts.background import sweep_finished
from accounts.management.base import GatecheckCommand
from devices.services import heartbeat_sweep


class Command(GatecheckCommand):
    help = "Mark heartbeats whose last check-in is past period + grace as down, and alert once per transition."

    def handle(self, *args, **options):
        went_down = heartbeat_sweep()
        sweep_finished()
        self.stdout.write(f"{went_down} heartbeat(s) went down")
