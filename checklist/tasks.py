"""Background work of the checklist: the nightly stored scores.

Enqueued by the one scheduler (``manage.py crontask``); idempotent, since a
snapshot is unique per trader and day and is rewritten, never duplicated.
"""

from __future__ import annotations

from datetime import date

from crontask import cron
from django.tasks import task
from django.utils import timezone

from .services import snapshot_all


@cron("5 0 * * *")
@task
def snapshots_nightly(as_of: str | None = None) -> dict:
    """00:05: score and store every active trader for the new day; a trader
    who cannot be scored is logged and skipped (``failed``)."""
    run = snapshot_all(date.fromisoformat(as_of) if as_of else timezone.localdate())
    return {"stored": run.stored, "failed": run.failed}
