"""Background work of the devices app: the per-minute heartbeat sweep.

Enqueued by the one scheduler (``manage.py crontask``); idempotent, since each
transition is told once (the heartbeat remembers what it last notified).
"""

from __future__ import annotations

from crontask import cron
from django.tasks import task

from .services import heartbeat_sweep


@cron("* * * * *")
@task
def heartbeats_sweep() -> dict:
    """Every minute: bots whose last check-in is past period + grace go down, alerts sent once."""
    return {"went_down": heartbeat_sweep()}
