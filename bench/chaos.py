"""The fault run of "Gatecheck watches itself" (``make chaos``), bounded to
ten minutes at 5,000 traders.

Real processes on a throwaway database: a private PostgreSQL cluster when
this machine can start one (root and PostgreSQL's initdb), else a SQLite
file (then without the outage, which needs a server to stop). Mail goes to
aiosmtpd, a real SMTP server that counts what arrives, or to a socket that
accepts and never answers. Two schedulers run throughout, and bots ping over
HTTP (gunicorn) the whole time: each answered ping is an acknowledged write.

1. the nightly scores, their worker killed with SIGKILL mid-run;
2. the daily reminders, their worker killed with SIGKILL mid-batch;
3. twenty notices sent while the mail server is silent;
4. a 30 s database outage (PostgreSQL);
5. every worker killed: /healthz must say so (``sweep``) in time.

Then it counts, for tasks, mails, scores and acknowledged writes, what was
lost, sent twice, or is stuck, and its last line reads
``chaos: lost=N duplicated=N stuck=N``.

    python bench/chaos.py [--traders 5000] [--sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from email import message_from_bytes
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = "django_tasks_database_dbtaskresult"
BUDGET = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Sink:
    """aiosmtpd's handler: every message received, by recipient (and subject).
    A trader's bot alerts and a lead's several alerts are not duplicates; the
    run counts the reminders and the notices it sent."""

    def __init__(self):
        self.received: Counter[str] = Counter()
        self.messages: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content)
        for rcpt in envelope.rcpt_tos:
            self.received[rcpt] += 1
            self.messages.append((rcpt, str(parsed.get("Subject", "")), str(parsed.get("Message-ID", ""))))
        return "250 OK"


class Cluster:
    """A private PostgreSQL cluster, started and stopped as the postgres user."""

    def __init__(self):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = found[-1].parent
        self.home = Path(f"/tmp/gc-chaos-{uuid.uuid4().hex[:8]}")
        self.port = free_port()
        self.home.mkdir()
        shutil.chown(self.home, "postgres", "postgres")
        self._as_postgres(f"{self.bin}/initdb -D {self.home}/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8")
        self.start()

    @staticmethod
    def possible() -> bool:
        return os.geteuid() == 0 and bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))) and shutil.which("su") is not None

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home} -c fsync=off -c max_connections=200"
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.home}/data -l {self.home}/log -w -o '{options}' start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.home}/data -w -m {mode} stop")

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", f"{self.bin}/pg_ctl -D {self.home}/data -m immediate stop"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


class Run:
    def __init__(self, database_url: str, workdir: Path, smtp_port: int):
        self.url = database_url
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "chaos-" + "k" * 50,
            "DATABASE_URL": database_url,
            "DJANGO_SSL_REDIRECT": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_PORT": str(smtp_port),
            "GATECHECK_TASK_RECLAIM_SECONDS": "5",
            "GATECHECK_WORKER_BEAT_SECONDS": "1",
            "GATECHECK_SWEEP_MAX_LAG_SECONDS": "60",
            "GATECHECK_LOG_FORMAT": "json",
            "DJANGO_LOG_LEVEL": "WARNING",
        }

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-2000:]}")
        return done.stdout.strip()

    def shell(self, code: str) -> str:
        return self.manage("shell", "-v", "0", "-c", code)

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "a")  # noqa: SIM115 (closed with the run)
        command = [sys.executable, "manage.py", *args] if args[0] != "gunicorn" else [sys.executable, "-m", *args]
        process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(signum)
        process.wait(30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(30)
        self.processes.clear()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=3) as db:
            cursor = db.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def value(self, sql: str, params: tuple = ()):
        return self.query(sql, params)[0][0]

    def enqueue(self, code: str) -> str:
        return self.shell(code).splitlines()[-1]

    def task_status(self, task_id: str) -> str:
        key = task_id.replace("-", "") if self.url.startswith("sqlite") else task_id
        return self.value(f"SELECT status FROM {TASKS} WHERE id = %s", (key,))


def wait_for(check, seconds: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")


# --------------------------------------------------------------------------
# Seeding (runs inside `manage.py shell`)
# --------------------------------------------------------------------------


def seed(traders: int) -> None:
    """The firm of bench/run.py without history: desks of 500 with a lead,
    varied inventories (many traders have items due), a bot each."""
    from django.utils import timezone

    from accounts.models import Desk, User
    from bench.run import DESK_SIZE, _inventory

    today = timezone.localdate()
    for start in range(0, traders, DESK_SIZE):
        desk = Desk.objects.create(name=f"Desk {start // DESK_SIZE + 1:03d}")
        lead = User.objects.create_user(f"lead{start}", email=f"lead{start}@example.com", verified_email=f"lead{start}@example.com")
        desk.leads.add(lead)
        users = User.objects.bulk_create(
            [
                User(username=f"trader{i:05d}", email=f"t{i}@example.com", verified_email=f"t{i}@example.com")
                for i in range(start, min(start + DESK_SIZE, traders))
            ]
        )
        desk.members.add(*users)
        _inventory(users, today, start)


def expected_reminders() -> list[str]:
    """Who should get today's daily reminder, from the same rules the job uses."""
    from django.utils import timezone

    from accounts.models import User, has_verified_email
    from desk.services import reminder_items
    from devices.selectors import inventories_for

    today = timezone.localdate()
    people = list(User.objects.filter(has_verified_email(), is_active=True, desks__isnull=False).distinct().order_by("pk"))
    due = []
    for start in range(0, len(people), 500):
        batch = people[start : start + 500]
        inventories = inventories_for([u.pk for u in batch])
        due += [u.email for u in batch if reminder_items(inventories[u.pk], today)]
    return due


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


class Pinger(threading.Thread):
    """Bots pinging over HTTP throughout: each answered ping (200) is an
    acknowledged write, whose message must be stored."""

    def __init__(self, port: int, tokens: list[str]):
        super().__init__(daemon=True)
        self.port, self.tokens = port, tokens
        self.acknowledged: list[str] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        for n, token in enumerate(self.tokens):
            if self.stop.is_set():
                return
            message = f"chaos-{n}-{uuid.uuid4().hex[:6]}"
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/ping/{token}", data=message.encode(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    if answer.status == 200:
                        self.acknowledged.append(message)
            except (urllib.error.URLError, OSError):
                self.refused += 1
            self.stop.wait(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=5000)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even where a PostgreSQL cluster could be started")
    args = parser.parse_args()
    began = time.monotonic()
    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    workdir = Path(tempfile.mkdtemp(prefix="gatecheck-chaos-"))
    cluster = None if args.sqlite or not Cluster.possible() else Cluster()
    url = cluster.url if cluster else f"sqlite:///{workdir / 'chaos.sqlite3'}"
    run = Run(url, workdir, smtp.port)
    report: dict[str, dict[str, int]] = {}
    try:
        say(f"database: {'PostgreSQL (private cluster)' if cluster else 'SQLite'}; logs in {workdir}")
        run.manage("migrate", "--noinput", "-v0")
        run.shell(f"import bench.chaos as c; c.seed({args.traders})")
        traders = run.value("SELECT count(*) FROM accounts_user WHERE username LIKE 'trader%%'")
        say(f"seeded {traders} traders")
        tokens = [f"bench-ping-token-{pk:08d}" for (pk,) in run.query("SELECT id FROM devices_automation ORDER BY id")]

        http_port = free_port()
        run.start("web", "gunicorn", "config.wsgi:application", "--no-control-socket", "--bind", f"127.0.0.1:{http_port}", "--workers", "2")
        wait_for(lambda: "database" in _healthz(http_port), 60, "the web server")
        run.start("scheduler-1", "scheduler", "--interval", "1")
        run.start("scheduler-2", "scheduler", "--interval", "1")
        pinger = Pinger(http_port, tokens)
        pinger.start()

        # 1. The nightly scores, their worker killed mid-run.
        nightly = run.enqueue("from checklist.tasks import snapshots_nightly; print(snapshots_nightly.enqueue().id)")
        run.start("worker-a", "worker", "--interval", "0.2")
        wait_for(lambda: run.value("SELECT count(*) FROM accounts_jobmark WHERE name LIKE 'snapshots:%%'"), 300, "the first batch of scores")
        run.kill("worker-a")
        say("nightly scores: worker killed with SIGKILL after its first batch")
        run.start("worker-b", "worker", "--interval", "0.2")
        wait_for(lambda: run.task_status(nightly) == "SUCCESSFUL", 300, "the nightly scores to finish on another worker")
        active = run.value("SELECT count(*) FROM accounts_user WHERE is_active")
        scored = run.value("SELECT count(DISTINCT user_id) FROM checklist_readinesssnapshot")
        report["scores"] = {"lost": active - scored, "duplicated": 0, "stuck": 0}
        say(f"nightly scores: {scored} of {active} people scored")

        # 2. The daily reminders, their worker killed mid-batch.
        expected = json.loads(run.shell("import json, bench.chaos as c; print(json.dumps(c.expected_reminders()))").splitlines()[-1])
        daily = run.enqueue("from desk.tasks import reminders_daily; print(reminders_daily.enqueue().id)")
        wait_for(lambda: sum(sink.received[e] for e in expected) >= min(100, len(expected) // 3), 300, "the first reminders")
        run.kill("worker-b")
        say(f"reminders: worker killed with SIGKILL after {sum(sink.received[e] for e in expected)} of {len(expected)}")
        run.start("worker-c", "worker", "--interval", "0.2")
        wait_for(lambda: run.task_status(daily) == "SUCCESSFUL", 300, "the reminders to finish on another worker")

        # 3. Notices while the mail server is silent, then when it is back.
        run.kill("worker-c", signal.SIGTERM)
        run.start("worker-silent", "worker", "--interval", "0.2", env={"DJANGO_EMAIL_PORT": str(silent.getsockname()[1]), "DJANGO_EMAIL_TIMEOUT": "1"})
        notices = [f"notice{n}@example.com" for n in range(20)]
        run.shell(
            "from accounts import mail\n"
            f"for to in {notices!r}:\n"
            "    mail.enqueue([mail.payload(to=[to], subject='Chaos notice', body='hello')])"
        )
        prune = run.enqueue("from accounts.tasks import prune; print(prune.enqueue().id)")
        started = time.monotonic()
        wait_for(lambda: run.task_status(prune) == "SUCCESSFUL", 120, "a task queued behind 20 notices to a silent mail server")
        say(f"silent mail server: the task behind 20 notices ran after {time.monotonic() - started:.0f} s")
        run.kill("worker-silent", signal.SIGTERM)
        run.start("worker-d", "worker", "--interval", "0.2")
        run.start("worker-e", "worker", "--interval", "0.2")

        # 4. A 30 s database outage.
        if cluster:
            cluster.stop()
            say("database stopped for 30 s")
            time.sleep(30)
            cluster.start()
            back = time.time()
            say("database started again")
            wait_for(
                lambda: run.value("SELECT extract(epoch FROM at) FROM accounts_jobmark WHERE name = 'scheduler'") > back, 60,
                "a scheduler tick after the outage",
            )
        wait_for(lambda: all(sink.received[to] for to in notices), 240, "the notices, tried again after the silent server")

        # Everything queued so far runs out.
        wait_for(lambda: run.value(f"SELECT count(*) FROM {TASKS} WHERE status IN ('READY', 'RUNNING') AND run_after <= %s", (_now(run),)) == 0,
                 120, "the queue to drain")
        pinger.stop.set()
        pinger.join(30)
        alive = {name: p.poll() is None for name, p in run.processes.items()}
        say(f"processes alive after the faults: {alive}")
        # Tasks: none failed or left behind; each due time of the sweep enqueued once by two schedulers.
        sweeps = Counter(
            str(row[0])[:16] for row in run.query(f"SELECT enqueued_at FROM {TASKS} WHERE task_path = 'devices.tasks.heartbeats_sweep'")
        )
        stuck = run.value(f"SELECT count(*) FROM {TASKS} WHERE status = 'RUNNING'")
        stuck += run.value(f"SELECT count(*) FROM {TASKS} WHERE status = 'READY' AND run_after <= %s", (_now(run),))
        failed = run.value(f"SELECT count(*) FROM {TASKS} WHERE status = 'FAILED'")
        report["tasks"] = {"lost": failed, "duplicated": sum(n - 1 for n in sweeps.values() if n > 1), "stuck": stuck + (not all(alive.values()))}
        say(f"tasks: {sum(sweeps.values())} sweeps over {len(sweeps)} minutes, {failed} failed, {stuck} left behind")

        # 5. Every worker killed: /healthz must say so.
        for name in [n for n in run.processes if n.startswith("worker")]:
            run.kill(name)
        killed = time.monotonic()
        wait_for(lambda: _healthz(http_port).get("sweep", "ok") != "ok", 200, "/healthz to report the stopped sweep", every=2)
        say(f"every worker killed: /healthz said '{_healthz(http_port)['sweep']}' after {time.monotonic() - killed:.0f} s")

        # A mailbox shows a message once per Message-ID: a second delivery of
        # the same Message-ID is the in-flight message resent after a SIGKILL.
        wanted = set(expected)
        ours = [(to, subject, mid) for to, subject, mid in sink.messages if (to in wanted and "readiness" in subject.lower()) or subject == "Chaos notice"]
        shown = Counter((to, mid) for to, _, mid in ours)
        per_person = Counter(to for to, _ in shown)
        resent = sum(n - 1 for n in shown.values() if n > 1)
        report["mails"] = {
            "lost": sum(1 for to in [*expected, *notices] if not per_person[to]),
            "duplicated": sum(n - 1 for n in per_person.values() if n > 1),
            "stuck": 0,
        }
        reminders = sum(1 for to, subject, _ in ours if subject != "Chaos notice")
        say(f"mails: {reminders} reminder deliveries to {len(expected)} traders due one, {len(ours) - reminders} of 20 notices; "
            f"{resent} in-flight message(s) delivered again with the same Message-ID")
        stored = {m for (m,) in run.query("SELECT message FROM devices_heartbeatsignal WHERE message LIKE 'chaos-%%'")}
        report["acknowledged writes"] = {"lost": sum(1 for m in pinger.acknowledged if m not in stored), "duplicated": 0, "stuck": 0}
        say(f"pings: {len(pinger.acknowledged)} acknowledged, {pinger.refused} refused or timed out (not acknowledged)")
    finally:
        run.stop_all()
        smtp.stop()
        silent.close()
        if cluster:
            cluster.remove()
    width = max(len(k) for k in report)
    for what, counts in report.items():
        print(f"  {what:<{width}}  lost={counts['lost']} duplicated={counts['duplicated']} stuck={counts['stuck']}")
    total = {key: sum(c[key] for c in report.values()) for key in ("lost", "duplicated", "stuck")}
    print(f"took {time.monotonic() - began:.0f} s (budget {BUDGET} s)")
    print(f"chaos: lost={total['lost']} duplicated={total['duplicated']} stuck={total['stuck']}")
    return 0 if not any(total.values()) and time.monotonic() - began <= BUDGET else 1


def _now(run: Run) -> str:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    # SQLite holds Django's datetimes as naive UTC text.
    return now.replace(tzinfo=None).isoformat(sep=" ") if run.url.startswith("sqlite") else now.isoformat()


def _healthz(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
