"""Background work of the checklist: the nightly stored scores, and the
hourly thinning of old ones.

Enqueued by the scheduler (``manage.py scheduler``).
"""

from __future__ import annotations

from datetime import date

from django.tasks import task
from django.utils import timezone

from accounts.background import periodic

from .services import snapshot_all, snapshots_thin


@periodic("5 0 * * *")
@task
def snapshots_nightly(as_of: str | None = None) -> dict:
    """00:05: score and store every active trader for the new day; a trader
    who cannot be scored is logged and skipped (``failed``).

    Twice is safe: a snapshot is unique per trader and day and is rewritten,
    never duplicated; a run taken back from a killed worker resumes after the
    last batch the killed run committed (``snapshot_all``'s checkpoint)."""
    run = snapshot_all(date.fromisoformat(as_of) if as_of else timezone.localdate())
    return {"stored": run.stored, "failed": run.failed}


@periodic("27 * * * *")
@task
def snapshots_old_thin() -> dict:
    """Hourly: stored scores past GATECHECK_SNAPSHOT_THIN_DAYS thinned to
    the last of each ISO week per trader, in short batches. Twice is safe:
    the second run finds nothing more to thin."""
    return {"snapshots": snapshots_thin()}
