"""Periodic work of accounts: pruning. (E-mail delivery is ``accounts.mail``.)

Tasks run on Django's task framework (``settings.TASKS``); periodic ones are
enqueued by the one scheduler, ``manage.py crontask`` (django-crontask), which
imports every app's ``tasks`` module. Each is idempotent: running it twice
does nothing new.
"""

from __future__ import annotations

from crontask import cron
from django.tasks import task

from .services import rows_prune


@cron("7 * * * *")
@task
def prune() -> dict:
    """Hourly: delete what no longer counts (see accounts.services.rows_prune)."""
    return rows_prune()
