"""``manage.py scheduler``: enqueue the periodic tasks when they fall due (accounts.background)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from accounts.background import jobs_statement_timeout, load_periodic, scheduler_run


class Command(BaseCommand):
    # Started during a database outage, it waits for the database instead of
    # failing its start-up checks (which query it).
    requires_system_checks: list = []
    requires_migrations_checks = False
    help = (
        "Enqueue each periodic task once per due time. Safe to run twice (a second scheduler enqueues nothing "
        "more); a job missed while it or the database was down runs once when both are back."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=5, help="Seconds between looks at the clock.")

    def handle(self, *, interval: float, **options) -> None:
        jobs = load_periodic()
        jobs_statement_timeout()
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"Scheduler started: {', '.join(sorted(jobs))}.")
        scheduler_run(stop, interval=interval)
        self.stdout.write("Scheduler stopped.")
