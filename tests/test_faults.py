"""Gatecheck watches itself (issue 20), with real processes: a worker killed
with SIGKILL mid-task, a mail server that accepts and never answers, SIGTERM
during a hung task, a PostgreSQL cluster stopped and started under a worker
and a scheduler, and a full disk under SQLite.

Each test runs `manage.py worker` and `manage.py scheduler` as production
would (production settings, a throwaway database of their own: a file for
SQLite, a database on the server of DATABASE_URL for PostgreSQL), with mail
going to aiosmtpd, a real SMTP server, or to a socket that accepts and never
speaks. The test reads the task table directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
TASKS = "django_tasks_database_dbtaskresult"
SERVER_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = SERVER_URL.startswith("postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, *, seconds: float, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Sink:
    """Every message aiosmtpd receives."""

    def __init__(self):
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": envelope.rcpt_tos, "data": envelope.content.decode("utf-8", "replace")})
        return "250 OK"


@pytest.fixture(scope="module")
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, sink
    controller.stop()


@pytest.fixture(scope="module")
def silent_smtp():
    """A mail server that accepts connections (the kernel completes the
    handshake) and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    yield server.getsockname()[1]
    server.close()


class World:
    """A throwaway database and the environment of production processes using it."""

    def __init__(self, database_url: str, workdir: Path):
        self.url = database_url
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "fault-test-" + "k" * 50,
            "DATABASE_URL": database_url,
            "DJANGO_SSL_REDIRECT": "0",
            "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_TIMEOUT": "30",
            "GATECHECK_TASK_RECLAIM_SECONDS": "3",
            "GATECHECK_WORKER_BEAT_SECONDS": "0.5",
            "GATECHECK_LOG_FORMAT": "json",
            "DJANGO_LOG_LEVEL": "INFO",
        }

    def manage(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout
        )

    def shell(self, code: str) -> str:
        done = self.manage("shell", "-v", "0", "-c", code)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{args[0]}-{len(self.processes)}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        self.processes.clear()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            cursor = db.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def task(self, task_id: str) -> tuple[str, list[str]]:
        status, worker_ids = self.query(f"SELECT status, worker_ids FROM {TASKS} WHERE id = %s", (self.task_key(task_id),))[0]
        return status, json.loads(worker_ids) if isinstance(worker_ids, str) else worker_ids

    def task_key(self, task_id: str) -> str:
        return task_id.replace("-", "") if self.url.startswith("sqlite") else task_id

    def enqueue_mail(self, to: str) -> str:
        return self.shell(
            "from accounts import mail; "
            f"print(mail.mail_send.enqueue([mail.payload(to=[{to!r}], subject='fault test', body='hello')]).id)"
        )

    def clear_tasks(self) -> None:
        self.query(f"DELETE FROM {TASKS}")


def postgres_database(server_url: str) -> tuple[str, callable]:
    """A new database on the server of ``server_url``, and its dropper."""
    import psycopg

    name = f"gc_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as db:
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            db.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return f"{base}/{name}", drop


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults")
    if ON_POSTGRES:
        url, drop = postgres_database(SERVER_URL)
    else:
        url, drop = f"sqlite:///{workdir / 'db.sqlite3'}", lambda: None
    made = World(url, workdir)
    migrated = made.manage("migrate", "--noinput", "-v0", timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    yield made
    made.stop_all()
    drop()


@pytest.fixture
def fresh(world):
    world.clear_tasks()
    yield world
    world.stop_all()


# --- A worker killed with SIGKILL ----------------------------------------------------------


def test_a_task_whose_worker_was_killed_is_run_again_by_another_worker(fresh, smtp, silent_smtp):
    port, sink = smtp
    task_id = fresh.enqueue_mail("killed@example.com")
    hung = fresh.start("worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(silent_smtp)})
    wait_for(lambda: fresh.task(task_id)[0] == "RUNNING", seconds=30, what="the first worker to take the task")
    hung.send_signal(signal.SIGKILL)
    hung.wait(10)
    assert fresh.task(task_id)[0] == "RUNNING"  # what a plain db_worker left forever
    fresh.start("worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(port)})
    wait_for(lambda: fresh.task(task_id)[0] == "SUCCESSFUL", seconds=30, what="the second worker to take the task back")
    status, worker_ids = fresh.task(task_id)
    assert len(worker_ids) == 2 and worker_ids[0] != worker_ids[1]
    assert [m["to"] for m in sink.messages if "killed@example.com" in m["to"]] == [["killed@example.com"]]


# --- A mail server that never answers --------------------------------------------------------


def test_a_silent_mail_server_costs_a_worker_seconds_and_the_mail_is_tried_again(fresh, silent_smtp):
    mail_id = fresh.enqueue_mail("silent@example.com")
    prune_id = fresh.shell("from accounts.tasks import prune; print(prune.enqueue().id)")
    began = time.monotonic()
    fresh.start("worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(silent_smtp), "DJANGO_EMAIL_TIMEOUT": "2"})
    wait_for(lambda: fresh.task(prune_id)[0] == "SUCCESSFUL", seconds=30, what="the task queued behind the mail")
    assert time.monotonic() - began < 20
    assert fresh.task(mail_id)[0] == "SUCCESSFUL"  # the task ended; its message waits for a later try
    retries = fresh.query(f"SELECT status FROM {TASKS} WHERE task_path = 'accounts.mail.mail_send' AND id <> %s", (fresh.task_key(mail_id),))
    assert retries == [("READY",)]


def test_a_task_past_its_time_limit_is_stopped_and_tried_again_later(fresh, silent_smtp):
    task_id = fresh.enqueue_mail("slow@example.com")
    fresh.start("worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(silent_smtp), "GATECHECK_TASK_TIMEOUT_SECONDS": "2"})
    # Status and tries read together: read apart, the task's first READY (before
    # the worker claimed it) and its tries (after) made a false "given back".
    wait_for(lambda: (state := fresh.task(task_id))[0] == "READY" and state[1], seconds=30, what="the time limit")
    traceback = fresh.query(f"SELECT traceback FROM {TASKS} WHERE id = %s", (fresh.task_key(task_id),))[0][0]
    assert "TaskTimeout: ran longer than 2 s" in traceback


def test_sigterm_stops_a_hung_worker_at_once_and_gives_its_task_back(fresh, silent_smtp):
    task_id = fresh.enqueue_mail("term@example.com")
    worker = fresh.start("worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(silent_smtp)})
    wait_for(lambda: fresh.task(task_id)[0] == "RUNNING", seconds=30, what="the worker to take the task")
    time.sleep(0.5)
    stopped_at = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(10)
    assert time.monotonic() - stopped_at < 5
    assert fresh.task(task_id) == ("READY", [])  # a stop is not a failed try


# --- A database stopped and started under the worker and the scheduler -----------------------


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.mark.postgres
def test_worker_and_scheduler_survive_a_database_outage(tmp_path_factory):
    pg_bin = _pg_bin()
    if pg_bin is None or os.geteuid() != 0 or shutil.which("su") is None:
        pytest.skip("needs PostgreSQL's initdb and root (to start a throwaway cluster as the postgres user)")
    home = Path(f"/tmp/gc-outage-{uuid.uuid4().hex[:8]}")
    home.mkdir()
    shutil.chown(home, "postgres", "postgres")
    port = free_port()

    def as_postgres(command: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, capture_output=True, timeout=60)

    ctl = f"{pg_bin}/pg_ctl -D {home}/data -l {home}/log -w"
    as_postgres(f"{pg_bin}/initdb -D {home}/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8")
    start = f"{ctl} -o '-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off' start"
    as_postgres(start)
    outage = World(f"postgres://postgres@127.0.0.1:{port}/postgres", tmp_path_factory.mktemp("outage"))
    try:
        assert outage.manage("migrate", "--noinput", "-v0", timeout=300).returncode == 0
        worker = outage.start("worker", "--interval", "0.2")
        scheduler = outage.start("scheduler", "--interval", "0.5")
        wait_for(lambda: outage.query("SELECT count(*) FROM accounts_jobmark WHERE name = 'scheduler'")[0][0], seconds=30, what="the scheduler")
        as_postgres(f"{ctl} -m fast stop")
        late = outage.start("worker", "--interval", "0.2")  # a worker (re)started during the outage
        time.sleep(8)
        assert worker.poll() is None and scheduler.poll() is None and late.poll() is None  # waiting, not gone
        as_postgres(start)
        back = time.time()
        task_id = wait_for(lambda: _try(lambda: outage.shell("from accounts.tasks import prune; print(prune.enqueue().id)")), seconds=30, what="the database")
        wait_for(lambda: outage.task(task_id)[0] == "SUCCESSFUL", seconds=30, what="the worker to run a task after the outage")
        ticked = wait_for(
            lambda: outage.query("SELECT extract(epoch FROM at) FROM accounts_jobmark WHERE name = 'scheduler'")[0][0] > back and 1,
            seconds=30, what="the scheduler to tick after the outage",
        )
        assert ticked and worker.poll() is None and scheduler.poll() is None and late.poll() is None
    finally:
        outage.stop_all()
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", f"{ctl} -m immediate stop"], capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def _try(call):
    try:
        return call()
    except AssertionError:
        return None


# --- A full disk --------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A SQLite database on a 6 MB file system that is then filled up."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    made = World(f"sqlite:///{mount / 'db.sqlite3'}", tmp_path)
    try:
        assert made.manage("migrate", "--noinput", "-v0", timeout=300).returncode == 0
        made.shell(
            "from accounts.models import User; from tests.builders import prepared_trader; "
            "prepared_trader(User.objects.create_user('dana', 'dana@example.com', 'correct horse battery staple 42'))"
        )
        with sqlite3.connect(mount / "db.sqlite3") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = mount / "filler"
        with open(filler, "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        yield made
    finally:
        made.stop_all()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_shows_on_healthz_and_commands_say_so_in_one_line(full_disk):
    probe = full_disk.shell(
        "from django.test import Client; from accounts.background import mark_set; "
        "r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    )
    status, body = probe.split(" ", 1)
    assert status == "503" and json.loads(body)["database_write"] == "refused" and "database_write" in json.loads(body)["failed"]
    exported = full_disk.manage("export_inventory", "--user", "dana")
    assert exported.returncode == 0 and json.loads(exported.stdout)["format"].startswith("gatecheck.inventory/")
    (full_disk.workdir / "dana.json").write_text(exported.stdout)
    imported = full_disk.manage("import_inventory", "--user", "dana", str(full_disk.workdir / "dana.json"))
    assert imported.returncode == 1
    assert "Traceback" not in imported.stderr
    assert "The database could not finish this command: database or disk is full" in imported.stderr


# --- A pool during an outage -----------------------------------------------------------------


def test_a_pooled_request_during_an_outage_fails_in_seconds_not_ten(tmp_path):
    dead = World(f"postgres://postgres@127.0.0.1:{free_port()}/postgres", tmp_path)  # nothing listens there
    code = (
        "import time; from django.test import Client; began = time.monotonic(); r = Client().get('/healthz'); "
        "print(r.status_code, r.json()['database'], round(time.monotonic() - began, 1))"
    )
    done = dead.manage("shell", "-v", "0", "-c", code, env={"DJANGO_DB_POOL": "1"}, timeout=60)
    status, database, seconds = done.stdout.split()
    assert (status, database) == ("503", "unreachable")
    assert float(seconds) < 4  # DJANGO_DB_POOL_TIMEOUT, 2 s by default; it was 10
