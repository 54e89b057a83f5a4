"""Background work that survives faults, and says so when it cannot.

Gatecheck's alarms (a bot's login died, a trader's readiness fell) run on a
task worker and a scheduler; this module keeps both alive and visible:

- ``periodic``: declares a task's cron schedule; ``scheduler_tick`` enqueues
  each periodic task once per due time. The last due time enqueued is a
  ``JobMark`` moved by a conditional update in the transaction that
  enqueues, so two schedulers enqueue it once, and a due time missed while
  the scheduler or the database was down is enqueued once when they are
  back (the missed ones coalesce into that one run).
- ``Worker``: django-tasks-db's worker with what its own issue #46 asks for.
  It beats (``WorkerBeat``) every few seconds, also while a task runs; a
  RUNNING task whose worker stopped beating is taken back
  (``tasks_reclaim``), so a worker killed with SIGKILL loses nothing. Every
  task has a time limit; a task that raises is tried again later, and ends
  FAILED after ``GATECHECK_TASK_MAX_TRIES``. SIGTERM gives the running task
  back at once. A lost database is waited out with backoff, never fatal.

Every handler is safe to run twice (each says why in its docstring): a task
taken back from a dead worker runs again from the start.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import signal
import socket
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from traceback import format_exception
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from django.apps import apps
from django.conf import settings
from django.db import Error as DatabaseFault
from django.db import close_old_connections, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.db.models import Case, F, When
from django.db.models.functions import Greatest
from django.tasks import Task, TaskContext
from django.utils import timezone
from django.utils.module_loading import module_has_submodule
from django_tasks_db.compat import TaskResultStatus, task_finished, task_started
from django_tasks_db.models import DBTaskResult, get_date_max
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from . import metrics
from .models import JobMark, WorkerBeat

logger = logging.getLogger("gatecheck.background")

# --------------------------------------------------------------------------
# Periodic jobs
# --------------------------------------------------------------------------

PERIODIC: dict[str, tuple[Task, CronTrigger]] = {}
# A scheduler catching up looks back at most this far (a per-minute job
# after a long outage coalesces into one run either way).
CATCH_UP = timedelta(days=2)


def periodic(schedule: str):
    """Run the decorated task on a five-field cron ``schedule`` in TIME_ZONE."""

    def decorator(task: Task) -> Task:
        PERIODIC[task.name] = (task, CronTrigger.from_crontab(schedule, timezone=timezone.get_default_timezone()))
        return task

    return decorator


def load_periodic() -> dict[str, tuple[Task, CronTrigger]]:
    """Import every app's ``tasks`` module, where periodic tasks are declared."""
    for app in apps.get_app_configs():
        if module_has_submodule(app.module, "tasks"):
            importlib.import_module(f"{app.name}.tasks")
    return PERIODIC


def latest_due(trigger: CronTrigger, since: datetime, now: datetime) -> datetime | None:
    """The last fire time of ``trigger`` after ``since`` and not after ``now``."""
    since = max(since, now - CATCH_UP)
    latest, fire = None, trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        latest, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


def scheduler_tick(now: datetime | None = None) -> list[str]:
    """Enqueue each periodic task that fell due since it was last enqueued;
    returns the names enqueued. A job seen for the first time starts from
    now (a new install does not run yesterday's reminders)."""
    now = now or timezone.now()
    enqueued = []
    for name, (task, trigger) in PERIODIC.items():
        try:
            if _enqueue_due(name, task, trigger, now):
                enqueued.append(name)
        except DatabaseFault:
            raise  # the database is gone for every job: the loop backs off
        except Exception:
            # One job that cannot be enqueued never holds back the others.
            logger.exception("scheduler: enqueueing %s failed; tried again next tick", name)
    return enqueued


def _enqueue_due(name: str, task: Task, trigger: CronTrigger, now: datetime) -> bool:
    key = f"schedule:{name}"
    mark, _ = JobMark.objects.get_or_create(name=key, defaults={"at": now})
    due = latest_due(trigger, mark.at, now)
    if due is None:
        return False
    # A daily job caught up late still works for the day it was due.
    day = {"as_of": timezone.localdate(due).isoformat()} if "as_of" in inspect.signature(task.func).parameters else {}
    with transaction.atomic():
        # Only the scheduler whose update moves the mark enqueues.
        if not JobMark.objects.filter(name=key, at=mark.at).update(at=due, value={"enqueued_at": now.isoformat()}):
            return False
        task.enqueue(**day)
    if now - due > timedelta(minutes=1):
        logger.warning("scheduler: %s was due at %s and runs late", name, due.isoformat())
    return True


def scheduler_run(stop: threading.Event, *, interval: float = 5) -> None:
    """The scheduler's loop: a tick every ``interval`` seconds until ``stop``;
    a lost database (or task queue) is retried with backoff, never fatal."""
    backoff = 1.0
    while not stop.is_set():
        try:
            close_old_connections()
            scheduler_tick()
            mark_set("scheduler")
            wait, backoff = interval, 1.0
        except Exception:
            logger.warning("scheduler: a tick failed (database or queue down?); trying again in %.0f s", backoff, exc_info=True)
            connections.close_all()
            wait, backoff = backoff, min(backoff * 2, 60)
        stop.wait(wait)


# --------------------------------------------------------------------------
# Marks
# --------------------------------------------------------------------------


def mark_set(name: str, value: dict | None = None, *, at: datetime | None = None) -> None:
    """Record that ``name`` happened now, with ``value``: one upsert."""
    JobMark.objects.bulk_create(
        [JobMark(name=name, at=at or timezone.now(), value=value or {})],
        update_conflicts=True, unique_fields=["name"], update_fields=["at", "value"],
    )


def mark_get(name: str) -> JobMark | None:
    return JobMark.objects.filter(name=name).first()


def sweep_finished() -> None:
    """After each heartbeat sweep: the mark /healthz reads, then the self
    ping to an outside monitor (GATECHECK_SELF_PING_URL), so that someone
    hears when Gatecheck's own background work stops."""
    mark_set("sweep")
    url = settings.GATECHECK_SELF_PING_URL
    if not url:
        return
    try:
        with urllib.request.urlopen(url, timeout=settings.GATECHECK_SELF_PING_TIMEOUT) as response:  # noqa: S310 (operator's URL)
            response.read(100)
    except Exception as error:
        # The URL may carry the monitor's key: name the failure, not the URL.
        logger.warning("self ping failed: %s", type(error).__name__)


# --------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------


class WorkerStopping(BaseException):
    """Raised in a running task when the worker is told to stop: the task goes back to the queue."""


class TaskTimeout(BaseException):
    """Raised in a task that ran past GATECHECK_TASK_TIMEOUT_SECONDS (a
    BaseException, so that a handler's ``except Exception`` does not swallow it)."""


class WorkerLost(Exception):
    """Recorded on a task that was taken back from dead workers too many times."""


# Set when this process's worker is told to stop; a task checks it between
# two units of work (``stop_point``) so that it stops where nothing is half done.
STOPPING = threading.Event()
# Seconds a running task has to reach a stop point before it is interrupted.
STOP_GRACE = 2


def stop_point() -> None:
    """Where a long task may stop: between two messages, two batches. Raises
    WorkerStopping when the worker was told to stop (the task goes back to
    the queue and resumes from its own checkpoint)."""
    if STOPPING.is_set():
        raise WorkerStopping


def _retry_delay(tries: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(tries - 1, 0), 600))


def tasks_reclaim(*, worker_id: str = "", current: str = "", now: datetime | None = None) -> int:
    """Give back RUNNING tasks whose worker is gone: its beat is older than
    GATECHECK_TASK_RECLAIM_SECONDS (killed, frozen, its machine lost), or it
    is ``worker_id`` itself and the task is not ``current`` (its result could
    not be written during an outage). A task already tried
    GATECHECK_TASK_MAX_TRIES times ends FAILED instead. Each row is moved by
    a conditional update, so two workers never take back one task twice."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GATECHECK_TASK_RECLAIM_SECONDS)
    live = set(WorkerBeat.objects.filter(seen_at__gte=cutoff).values_list("worker_id", flat=True))
    taken = 0
    for result in DBTaskResult.objects.running().only("id", "started_at", "worker_ids", "task_path"):
        owner = result.worker_ids[-1] if result.worker_ids else ""
        mine = owner == worker_id and str(result.id) != current
        if not mine and (owner in live or (result.started_at and result.started_at >= cutoff)):
            continue
        same = DBTaskResult.objects.filter(pk=result.pk, status=TaskResultStatus.RUNNING, started_at=result.started_at)
        if len(result.worker_ids) >= settings.GATECHECK_TASK_MAX_TRIES:
            moved = same.update(
                status=TaskResultStatus.FAILED, finished_at=now, exception_class_path=f"{__name__}.WorkerLost",
                traceback=f"WorkerLost: its worker stopped answering on each of {len(result.worker_ids)} tries.",
            )
            outcome = "failed"
        else:
            moved = same.update(status=TaskResultStatus.READY, run_after=now)
            outcome = "reclaimed"
        if moved:
            taken += 1
            metrics.counter_add("tasks_total", task=result.task_path.rsplit(".", 1)[-1], outcome=outcome)
            logger.warning("worker: task %s (%s) of lost worker %s %s", result.id, result.task_path, owner or "?", outcome)
    return taken


def _statement_timeout(sender, connection, **kwargs) -> None:
    """Jobs never wait on one PostgreSQL statement longer than the set limit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = %s", [int(settings.GATECHECK_JOB_STATEMENT_TIMEOUT_SECONDS * 1000)])


def jobs_statement_timeout() -> None:
    """Apply the job statement timeout to this process's connections (worker, scheduler)."""
    connection_created.connect(_statement_timeout, dispatch_uid="gatecheck_job_statement_timeout")
    connections.close_all()


class Worker:
    """One worker process: claims READY tasks of ``queues`` one at a time."""

    def __init__(self, *, worker_id: str, queues: list[str], interval: float = 1, batch: bool = False, backend: str = "default"):
        self.worker_id = worker_id
        self.queues = queues
        self.interval = interval
        self.batch = batch
        self.backend = backend
        self.running = True
        self.in_task = False
        self.current = ""
        self.stopped = threading.Event()
        self.time_limits = False

    # -- signals --------------------------------------------------------------

    def configure_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGALRM, self._timeout)
        self.time_limits = True

    def _stop(self, signum, frame) -> None:
        """Stop: a running task is asked to give up at its next safe point
        (``stop_point``), and interrupted if it has not within STOP_GRACE."""
        logger.warning("worker %s: %s, stopping", self.worker_id, signal.strsignal(signum))
        self.running = False
        STOPPING.set()
        if self.in_task and self.time_limits:
            signal.setitimer(signal.ITIMER_REAL, STOP_GRACE)

    def _timeout(self, signum, frame) -> None:
        if not self.in_task:
            return
        if STOPPING.is_set():
            raise WorkerStopping
        raise TaskTimeout(f"ran longer than {settings.GATECHECK_TASK_TIMEOUT_SECONDS} s")

    # -- beats ----------------------------------------------------------------

    def _beat(self) -> None:
        WorkerBeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"host": socket.gethostname()[:255], "pid": os.getpid(), "seen_at": timezone.now(), "task_id": self.current},
        )

    def _beat_loop(self) -> None:
        # Whatever goes wrong, the loop goes on: a beat that stops for good
        # would let another worker take back this worker's running task.
        while not self.stopped.wait(settings.GATECHECK_WORKER_BEAT_SECONDS):
            try:
                self._beat()
            except Exception:
                logger.warning("worker %s: beat not recorded (database down?)", self.worker_id, exc_info=True)
                try:
                    connection.close()
                except Exception:
                    logger.debug("worker %s: closing the beat's connection failed", self.worker_id, exc_info=True)

    # -- the loop -------------------------------------------------------------

    def _claim(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend)
        if "*" not in self.queues:
            tasks = tasks.filter(queue_name__in=self.queues)
        try:
            with exclusive_transaction(tasks.db):
                result = tasks.get_locked()
                if result is not None:
                    result.claim(self.worker_id)
                return result
        except DatabaseFault as error:
            if is_locked_database_exception(error):
                return None
            raise

    def run(self) -> None:
        STOPPING.clear()
        logger.info("worker %s: started, queues %s", self.worker_id, ",".join(self.queues))
        beats = threading.Thread(target=self._beat_loop, name="worker-beat", daemon=True)
        backoff, last_reclaim, started = 1.0, 0.0, False
        try:
            while self.running:
                try:
                    if not connection.in_atomic_block:  # (a test runs a worker inside its transaction)
                        close_old_connections()
                    if not started:
                        self._beat()
                        beats.start()
                        started = True
                    if time.monotonic() - last_reclaim >= settings.GATECHECK_WORKER_BEAT_SECONDS:
                        tasks_reclaim(worker_id=self.worker_id, current=self.current)
                        last_reclaim = time.monotonic()
                    result = self._claim()
                    if result is not None:
                        # A fault while recording the outcome leaves the task
                        # RUNNING under this worker: tasks_reclaim gives it back.
                        self.run_task(result)
                    backoff = 1.0
                except DatabaseFault:
                    logger.warning("worker %s: database unreachable; trying again in %.0f s", self.worker_id, backoff, exc_info=True)
                    connections.close_all()
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30)
                    continue
                if result is None and self.batch:
                    return
                if result is None and self.running:
                    time.sleep(self.interval)
        finally:
            self.stopped.set()
            try:
                WorkerBeat.objects.filter(worker_id=self.worker_id).delete()
            except DatabaseFault:
                pass
            logger.info("worker %s: stopped", self.worker_id)

    def run_task(self, db_result: DBTaskResult) -> None:
        """Run one claimed task under its time limit; record the outcome."""
        self.current = str(db_result.id)
        name = db_result.task_path.rsplit(".", 1)[-1]
        began = time.monotonic()
        outcome, error = "successful", None
        try:
            task = db_result.task
            task_result = db_result.task_result
            task_started.send(sender=type(task.get_backend()), task_result=task_result)
            if self.time_limits:
                signal.setitimer(signal.ITIMER_REAL, settings.GATECHECK_TASK_TIMEOUT_SECONDS)
            self.in_task = True
            try:
                context = (TaskContext(task_result=task_result),) if task.takes_context else ()
                value = task.call(*context, *task_result.args, **task_result.kwargs)
            finally:
                self.in_task = False
                if self.time_limits:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except WorkerStopping:
            outcome = "stopped"
        except BaseException as raised:  # noqa: BLE001 (a task's failure is recorded, whatever it is)
            outcome, error = "error", raised
        if outcome != "successful" and not connection.in_atomic_block:
            # Interrupted anywhere (mid-query, mid-commit): start the record
            # of its outcome on a fresh connection, whatever state it left.
            connections.close_all()
        try:
            if outcome == "successful":
                db_result.set_successful(value)
            elif outcome == "stopped":
                self._give_back(db_result, count=False)
            else:
                outcome = self._failed(db_result, error)
            if outcome in ("successful", "failed"):
                task_finished.send(sender=type(db_result.task.get_backend()), task_result=db_result.task_result)
        finally:
            self.current = ""
            metrics.counter_add("tasks_total", task=name, outcome=outcome)
            metrics.counter_add("task_seconds_total", time.monotonic() - began, task=name)

    def _give_back(self, db_result: DBTaskResult, *, count: bool, delay: timedelta = timedelta(0), error: BaseException | None = None) -> None:
        """Back to READY, with the last try's error kept to look at; a stop does not count as a try."""
        worker_ids = db_result.worker_ids if count else db_result.worker_ids[:-1]
        last = {"exception_class_path": f"{type(error).__module__}.{type(error).__qualname__}", "traceback": "".join(format_exception(error))} if error else {}
        DBTaskResult.objects.filter(pk=db_result.pk).update(
            status=TaskResultStatus.READY, run_after=timezone.now() + delay, worker_ids=worker_ids, **last
        )
        logger.warning("worker %s: task %s (%s) given back", self.worker_id, db_result.id, db_result.task_path)

    def _failed(self, db_result: DBTaskResult, error: BaseException) -> str:
        tries = len(db_result.worker_ids)
        logger.error("worker %s: task %s (%s) failed on try %d: %r", self.worker_id, db_result.id, db_result.task_path, tries, error)
        if tries < settings.GATECHECK_TASK_MAX_TRIES:
            self._give_back(db_result, count=True, delay=_retry_delay(tries), error=error)
            return "retried"
        db_result.set_failed(error)
        return "failed"


# --------------------------------------------------------------------------
# What /healthz, /metrics and the background page read
# --------------------------------------------------------------------------


def queue_state(now: datetime | None = None) -> dict[str, Any]:
    """Tasks waiting to run now: how many, and the age of the oldest."""
    now = now or timezone.now()
    # A task waits from when it may run: enqueued, or deferred until run_after.
    waiting = DBTaskResult.objects.ready().annotate(
        since=Case(When(run_after=get_date_max(), then=F("enqueued_at")), default=Greatest("enqueued_at", "run_after"))
    )
    depth = waiting.count()
    oldest = waiting.order_by("since").values_list("since", flat=True).first()
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return {"depth": depth, "oldest_seconds": age}


def workers_alive(now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.GATECHECK_TASK_RECLAIM_SECONDS)
    return WorkerBeat.objects.filter(seen_at__gte=cutoff).count()


def background_state(now: datetime | None = None) -> dict[str, Any]:
    """The state of background work for a superuser's page and for /metrics."""
    now = now or timezone.now()
    sweep = mark_get("sweep")
    since_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    beats = list(WorkerBeat.objects.order_by("-seen_at"))
    cutoff = now - timedelta(seconds=settings.GATECHECK_TASK_RECLAIM_SECONDS)
    return {
        "now": now,
        "sweep_at": sweep.at if sweep else None,
        "sweep_lag": (now - sweep.at).total_seconds() if sweep else None,
        "scheduler": mark_get("scheduler"),
        "queue": queue_state(now),
        "running": DBTaskResult.objects.running().count(),
        "failed_today": list(DBTaskResult.objects.failed().filter(finished_at__gte=since_day).order_by("-finished_at")[:50]),
        "workers": [{"beat": beat, "alive": beat.seen_at >= cutoff} for beat in beats],
        "schedule": [
            {"name": name, "mark": mark_get(f"schedule:{name}")} for name in sorted(load_periodic())
        ],
    }


def health_background(now: datetime | None = None) -> dict[str, str]:
    """/healthz's ``sweep`` and ``queue`` checks: "ok" or what is wrong."""
    now = now or timezone.now()
    sweep = mark_get("sweep")
    if sweep is None:
        sweep_check = "never finished"
    elif (lag := (now - sweep.at).total_seconds()) > settings.GATECHECK_SWEEP_MAX_LAG_SECONDS:
        sweep_check = f"last finished {int(lag)} s ago"
    else:
        sweep_check = "ok"
    queue = queue_state(now)
    queue_check = "ok"
    if queue["oldest_seconds"] > settings.GATECHECK_QUEUE_MAX_AGE_SECONDS:
        queue_check = f"oldest task waiting {int(queue['oldest_seconds'])} s ({queue['depth']} queued)"
    return {"sweep": sweep_check, "queue": queue_check}


# /metrics reads these at scrape time (accounts.metrics imports nothing of this module).
metrics.gauge("queue_depth", "Tasks waiting to run now.")(lambda: {(): queue_state()["depth"]})
metrics.gauge("queue_oldest_seconds", "Age of the oldest task waiting to run.")(lambda: {(): queue_state()["oldest_seconds"]})
metrics.gauge("sweep_lag_seconds", "Seconds since the heartbeat sweep last finished.")(
    lambda: {(): (timezone.now() - sweep.at).total_seconds() if (sweep := mark_get("sweep")) else float("inf")}
)
metrics.gauge("workers_alive", "Task workers that beat recently.")(lambda: {(): workers_alive()})
