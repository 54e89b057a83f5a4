"""Periodic work of accounts: pruning, and the audit trail's retention.
(E-mail delivery is ``accounts.mail``.)

Tasks run on Django's task framework (``settings.TASKS``); periodic ones are
declared with ``accounts.background.periodic`` and enqueued by ``manage.py
scheduler``, which imports every app's ``tasks`` module. A task may run twice
(a worker that died is replaced), so each is idempotent: running it twice
does nothing new.
"""

from __future__ import annotations

from django.tasks import task

from .background import periodic
from .services import audit_prune, rows_prune


@periodic("7 * * * *")
@task
def prune() -> dict:
    """Hourly: delete what no longer counts (see accounts.services.rows_prune).
    Twice is safe: the second run finds nothing more to delete."""
    return rows_prune()


@periodic("47 * * * *")
@task
def audit_old_prune() -> dict:
    """Hourly: audit events past GATECHECK_AUDIT_RETENTION_DAYS deleted, in
    short batches; its own job, so the audit trail's deletions show on the
    background page apart from the rest. Twice is safe: the second run finds
    nothing more."""
    return {"audit_events": audit_prune()}
