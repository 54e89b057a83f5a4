"""``manage.py worker``: run background tasks, surviving faults (accounts.background)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string

from accounts.background import Worker, jobs_statement_timeout


class Command(BaseCommand):
    # Started during a database outage, it waits for the database instead of
    # failing its start-up checks (which query it).
    requires_system_checks: list = []
    requires_migrations_checks = False
    help = (
        "Run background tasks from the database queue. Beats while it runs, takes back tasks of dead "
        "workers, limits each task's time, survives a lost database, and gives its task back on SIGTERM."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--queue-name", default="default", help="Queues to take tasks from, comma-separated; '*' for all.")
        parser.add_argument("--interval", type=float, default=1, help="Seconds to wait when the queue is empty.")
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")
        parser.add_argument("--worker-id", default="", help="A name unique among workers (default: random).")

    def handle(self, *, queue_name: str, interval: float, batch: bool, worker_id: str, **options) -> None:
        jobs_statement_timeout()
        worker = Worker(worker_id=worker_id or get_random_string(32), queues=queue_name.split(","), interval=interval, batch=batch)
        worker.configure_signals()
        worker.run()
