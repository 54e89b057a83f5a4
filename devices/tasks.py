"""Background work of the devices app: the per-minute heartbeat sweep, and
the hourly prune of old heartbeat signals.

Enqueued by the scheduler (``manage.py scheduler``).
"""

from __future__ import annotations

from django.tasks import task

from accounts.background import periodic, sweep_finished

from .services import heartbeat_sweep, signals_prune


@periodic("* * * * *")
@task
def heartbeats_sweep() -> dict:
    """Every minute: bots whose last check-in is past period + grace go down,
    alerts sent once; then the sweep's mark for /healthz and the self ping.

    Twice is safe: each heartbeat remembers the state it last told, under a
    row lock, so a second run tells nothing new."""
    went_down = heartbeat_sweep()
    sweep_finished()
    return {"went_down": went_down}


@periodic("17 * * * *")
@task
def signals_old_prune() -> dict:
    """Hourly: delete heartbeat signals past GATECHECK_SIGNAL_RETENTION_DAYS,
    in short batches. Twice is safe: the second run finds nothing more."""
    return {"signals": signals_prune()}
