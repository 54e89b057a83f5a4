"""Time Gatecheck's pages and background jobs as ratios to a bare view
measured in the same run (``make bench``, ``make bench-firm``).

Absolute times on these shared machines vary from run to run; the ratio to a
view that does nothing, behind the same middleware and session, does not
vary much. Pages run in-process through the full middleware stack.

One seeding path for every size and database: a firm of ``--traders`` in
desks of 500 (one lead each), varied inventories, ``--days`` of stored
history written in bulk (``COPY`` on PostgreSQL), then tonight's scores by
the real nightly job, which is measured too.

    python bench/run.py [--traders 500] [--days 30] [--runs 30] [--jobs]
                        [--database-url postgres://postgres@127.0.0.1:5432/gatecheck_bench]
                        [--reuse]

Without ``--database-url`` a throwaway SQLite file is used. A PostgreSQL
database named in the URL is created for the run and dropped afterwards.
``BENCH_KEEP=1`` keeps either; ``--reuse --database-url <kept URL>`` measures
it again without seeding. After the pages, the heartbeat sweep and the jobs,
the bare view and the ping are loaded over HTTP: gunicorn (bench/settings.py,
production settings plus the bare view) on a loopback port, and wrk.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DESK_SIZE = 500


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=500)
    parser.add_argument("--days", type=int, default=30, help="days of stored history per trader")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--jobs", action="store_true", help="also time the CSV of everyone, the nightly scores and the reminders")
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL; its database is created and dropped")
    parser.add_argument(
        "--reuse", action="store_true",
        help="measure the firm already in --database-url (postgres:// or sqlite:///path, kept by BENCH_KEEP=1) without seeding it again",
    )
    return parser.parse_args()


ARGS = _arguments() if __name__ == "__main__" else argparse.Namespace(database_url="")
# BENCH_KEEP=1 keeps the database afterwards (its path is printed), to look at query plans.
KEEP = bool(os.environ.get("BENCH_KEEP"))
WORKDIR = tempfile.mkdtemp(prefix="gatecheck-bench-")
if not KEEP:
    atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)


def _postgres(url: str) -> None:
    """Create the URL's database afresh, and drop it when the run ends."""
    import psycopg

    base, name = url.rsplit("/", 1)
    admin = f"{base}/postgres"

    def run(sql: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql)

    run(f'DROP DATABASE IF EXISTS "{name}"')
    run(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    if not KEEP:
        atexit.register(drop)


if ARGS.database_url:
    if not ARGS.reuse:
        _postgres(ARGS.database_url)
    os.environ["DATABASE_URL"] = ARGS.database_url
else:
    os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR}/bench.sqlite3"
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()
# The immediate task backend logs every mail task of the sweep at INFO.
logging.getLogger("django.tasks").setLevel(logging.WARNING)
logging.getLogger("gatecheck.audit").setLevel(logging.WARNING)

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections, connection, transaction  # noqa: E402
from django.db.models import Count, F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from accounts import tokens as api_tokens  # noqa: E402
from accounts.models import Desk, User, UserSession  # noqa: E402
from checklist import tallies  # noqa: E402
from checklist.models import ReadinessSnapshot  # noqa: E402
from checklist.services import snapshot_all  # noqa: E402
from desk.services import reminders_send_daily  # noqa: E402
from devices.models import (  # noqa: E402
    AcceptedRisk,
    ApiKey,
    Automation,
    Drill,
    Heartbeat,
    Incident,
    Permission,
    RecoveryMethod,
    Subscription,
    TradingProfile,
    TrustedDevice,
)
from devices.tasks import heartbeats_sweep  # noqa: E402
from readiness import rules  # noqa: E402

# Every sort key and every filter of the desk page (desk.forms.DeskFilterForm).
SORTS = ("name", "score", "level", "change", "due", *rules.RULE_IDS)
FILTERS = (
    ("q", "Trader 0"),
    *(("level", level) for level in ("ready", "at_risk", "not_ready")),
    *(("failing", rid) for rid in rules.RULE_IDS),
    *(("rule", rid) for rid in rules.RULE_IDS),
    ("due", "overdue"),
    ("due", "due_soon"),
)


def cold() -> None:
    """Every cache of the desk page emptied: the trend (Django's cache) and the tallies."""
    cache.clear()
    tallies.forget()


# The project's routes plus one view that does nothing, behind the same
# middleware (bench/urls.py; the gunicorn of the HTTP part serves it too).
URLCONF = "bench.urls"
BARE = "/bench/bare/"


# --------------------------------------------------------------------------
# Seeding: one path for every size and both databases
# --------------------------------------------------------------------------


def _inventory(users: list[User], today: date, offset: int) -> None:
    devices, methods, keys, subs, drills, profiles, risks = [], [], [], [], [], [], []
    for n, u in enumerate(users):
        i = offset + n
        devices += [
            TrustedDevice(owner=u, name="Workstation", kind="desktop", platforms=["tws", "client_portal"], validated_on=today - timedelta(days=i % 400)),
            TrustedDevice(owner=u, name="Phone", kind="mobile", platforms=["mobile"], validated_on=today - timedelta(days=(i * 3) % 400)),
        ]
        methods += [
            RecoveryMethod(owner=u, kind="phone", label=f"+1 555 010 {i % 10000:04d}", last_verified_on=today - timedelta(days=i % 220)),
            RecoveryMethod(owner=u, kind="email", label=f"t{i}@example.net", last_verified_on=today - timedelta(days=(i * 7) % 220)),
            RecoveryMethod(owner=u, kind="backup_codes", label="Printed card", last_verified_on=today - timedelta(days=30)),
        ]
        created, expires = today - timedelta(days=i % 120), today + timedelta(days=(i % 60) - 10)
        keys.append(ApiKey(owner=u, label="algo", scopes=["read", "trade"], service_account=True, created_on=created, expires_on=expires))
        subs.append(Subscription(owner=u, region="US", feed="US equities bundle", active=i % 5 != 0))
        started = datetime.now(UTC) - timedelta(days=i % 120)
        drills.append(Drill(owner=u, lost_device="Phone", started_at=started, finished_at=started + timedelta(minutes=10 + i % 40), completed=True))
        profiles.append(
            TradingProfile(
                owner=u, broker_mfa=("ib_key", "sms", "authenticator_app", None)[i % 4], regions_traded=["US"],
                plan_complex_orders="tws", plan_transfers_statements="client_portal", plan_alerts_light_execution="mobile",
            )
        )
        if i % 4 == 0:
            risks.append(AcceptedRisk(owner=u, rule="marketdata.covered", reason="US feed renewal pending", until=today + timedelta(days=20)))
    TrustedDevice.objects.bulk_create(devices)
    RecoveryMethod.objects.bulk_create(methods)
    stored_keys = ApiKey.objects.bulk_create(keys)
    Automation.objects.bulk_create(
        [
            Automation(owner=k.owner, name="Spread bot", api_key=k, token_refresh=True, fallback_contact="desk", on_auth_failure=("flatten", "halt")[n % 2])
            for n, k in enumerate(stored_keys)
        ]
    )
    _heartbeats(Automation.objects.filter(owner__in=users).values_list("pk", "owner_id"))
    Subscription.objects.bulk_create(subs)
    Drill.objects.bulk_create(drills)
    TradingProfile.objects.bulk_create(profiles)
    AcceptedRisk.objects.bulk_create(risks)


# Every automation has a heartbeat. Most checked in a minute ago and are due
# in a day; one in a hundred (period 5 minutes) went silent an hour ago, so
# each sweep has that many bots going down to tell about.
UP_PERIOD, DOWN_PERIOD = 1440, 5


def ping_token(automation_id: int) -> str:
    """The bench's ping token of an automation (a real one is random)."""
    return f"bench-ping-token-{automation_id:08d}"


# Live bots' schedules in turn (Heartbeats v2): every period, a cron, an exchange's sessions.
SCHEDULES = ({}, {"schedule_kind": "cron", "cron": "*/15 * * * *", "tz": "America/New_York"},
             {"schedule_kind": "market", "exchange": "XNYS", "before_open": 30, "after_close": 15})


def _heartbeats(automations) -> None:
    now = timezone.now()
    beats = []
    for pk, owner_id in automations:
        down = pk % 100 == 0
        period, last_at = (DOWN_PERIOD, now - timedelta(hours=1)) if down else (UP_PERIOD, now - timedelta(minutes=1))
        beat = Heartbeat(
            owner_id=owner_id, automation_id=pk, period_minutes=period, grace_minutes=10, token_digest=hashlib.sha256(ping_token(pk).encode()).hexdigest(),
            last_kind="success", last_at=last_at, notified="up", created_at=now - timedelta(days=1), **({} if down else SCHEDULES[pk % 3]),
        )
        # What a ping stores: the next moment this bot's status can change.
        beat.deadline = last_at + timedelta(minutes=period + 10) if down else beat.next_change(now)
        beats.append(beat)
    Heartbeat.objects.bulk_create(beats)


BIG = "trader-big"
BIG_ITEMS = 20


def big_inventory(today: date) -> User:
    """A trader with 20 of each item (devices, recovery methods, keys, bots
    with heartbeats, feeds, drills, permissions, accepted risks)."""
    user = User.objects.create_user(BIG, email="big@example.com", verified_email="big@example.com")
    n = range(BIG_ITEMS)
    TrustedDevice.objects.bulk_create(
        TrustedDevice(owner=user, name=f"Device {i}", kind="desktop", platforms=["tws"], validated_on=today - timedelta(days=i * 20)) for i in n
    )
    RecoveryMethod.objects.bulk_create(
        RecoveryMethod(owner=user, kind="phone", label=f"+1 555 020 {i:04d}", last_verified_on=today - timedelta(days=i * 15)) for i in n
    )
    keys = ApiKey.objects.bulk_create(
        ApiKey(owner=user, label=f"key {i}", scopes=["read"], created_on=today - timedelta(days=i * 10), expires_on=today + timedelta(days=i * 5 - 30))
        for i in n
    )
    Automation.objects.bulk_create(Automation(owner=user, name=f"Bot {i}", api_key=k, token_refresh=i % 2 == 0) for i, k in enumerate(keys))
    _heartbeats(Automation.objects.filter(owner=user).values_list("pk", "owner_id"))
    regions = ["US", "CA", "EU", "UK", "CH", "HK", "JP", "AU", "SG", "IN"]
    Subscription.objects.bulk_create(Subscription(owner=user, region=regions[i % 10], feed=f"Feed {i}", active=i % 3 != 0) for i in n)
    now = datetime.now(UTC)
    starts = [now - timedelta(days=i * 9) for i in n]
    Drill.objects.bulk_create(
        Drill(owner=user, lost_device="Phone", started_at=at, finished_at=at + timedelta(minutes=12), completed=True) for at in starts
    )
    products = ["stocks", "options", "futures", "forex", "bonds"]
    Permission.objects.bulk_create(
        Permission(owner=user, product=products[i % 5], region=regions[i // 5], status=("granted", "pending")[i % 2]) for i in n
    )
    AcceptedRisk.objects.bulk_create(
        AcceptedRisk(owner=user, rule=rid, reason="Bench", until=today + timedelta(days=10)) for rid in rules.RULE_IDS[:BIG_ITEMS]
    )
    TradingProfile.objects.create(owner=user, broker_mfa="ib_key", regions_traded=regions[:4], products_traded=products)
    return user


def analyze() -> None:
    """Fresh planner statistics, as a production database has after its
    routine maintenance, so that the plans measured are the real ones."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit = 1000")
        cursor.execute("ANALYZE")


def checkpoint() -> None:
    """On SQLite, fold the write-ahead log into the database file, as its
    automatic checkpoints do in a server's quiet moments: after seeding it
    holds gigabytes, which every read would look through first."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


STATUS_SETS = [
    json.dumps({rule: status for rule in rules.RULE_IDS})
    for status in (rules.PASS, rules.PARTIAL, rules.FAIL)
] + [json.dumps({rule: (rules.PASS, rules.FAIL, rules.NA)[n % 3] for n, rule in enumerate(rules.RULE_IDS)})]


def _history_rows(ids: list[int], today: date, days: int):
    stamp = timezone.now()
    for uid in ids:
        for d in range(days, 0, -1):
            score = (uid * 7 + d) % 101
            yield (uid, today - timedelta(days=d), score, rules.level_for(score), STATUS_SETS[(uid + d) % len(STATUS_SETS)], stamp)


def _history(ids: list[int], today: date, days: int) -> None:
    """``days`` of stored scores before today for every trader, in bulk: the
    rows a year of nightly runs would have left."""
    table = ReadinessSnapshot._meta.db_table
    columns = "user_id, date, score, level, statuses, updated_at"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in _history_rows(ids, today, days):
                    copy.write_row(row)
        else:
            insert = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608 - our own table and columns
            cursor.executemany(insert, _history_rows(ids, today, days))


def build(traders: int, days: int) -> tuple[User, User, User, dict]:
    """The firm: ``traders`` in desks of 500, each with a lead, and history.

    Returns a lead of one desk, a superuser, a trader with a TOTP device, and
    how tonight's nightly job went (it stores today's scores).
    """
    today = timezone.localdate()
    # Confirmed addresses, as a firm's traders have: reminders go only to those.
    boss = User.objects.create_user("boss", email="boss@example.com", verified_email="boss@example.com", is_superuser=True, is_staff=True)
    ids: list[int] = []
    first_lead = None
    for start in range(0, traders, DESK_SIZE):
        count = min(DESK_SIZE, traders - start)
        desk = Desk.objects.create(name=f"Desk {start // DESK_SIZE + 1:03d}")
        lead = User.objects.create_user(f"lead{start // DESK_SIZE + 1:03d}", email=f"lead{start}@example.com", verified_email=f"lead{start}@example.com")
        desk.leads.add(lead)
        first_lead = first_lead or lead
        users = User.objects.bulk_create(
            [
                User(username=f"trader{i:05d}", first_name="Trader", last_name=f"{i:05d}", email=f"t{i}@example.com", verified_email=f"t{i}@example.com")
                for i in range(start, start + count)
            ]
        )
        desk.members.add(*users)
        _inventory(users, today, start)
        ids += [u.pk for u in users]
    big_inventory(today)
    _history(ids, today, days)
    analyze()
    nightly = job(lambda: snapshot_all(today), traders)
    checkpoint()
    return first_lead, boss, User.objects.get(pk=ids[0]), nightly


def reuse(traders: int) -> tuple[User, User, User, dict | None]:
    """The firm an earlier run kept (its nightly job is not run again)."""
    assert User.objects.filter(username="boss").exists(), "--reuse needs a database seeded by an earlier run (BENCH_KEEP=1)"
    if not User.objects.filter(username=BIG).exists():
        big_inventory(timezone.localdate())
    analyze()
    return User.objects.get(username="lead001"), User.objects.get(username="boss"), User.objects.get(username="trader00000"), None


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def signed_in(user: User) -> Client:
    """A client in the state the login flow leaves: password and code done."""
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    session = client.session
    now = time.time()
    session.update({"otp_device_id": device.persistent_id, "auth_at": now, "seen_at": now, "mfa_at": now})
    session.save()
    row = UserSession.objects.create(user=user, session_key=session.session_key)
    session["gatecheck_session_row"] = row.pk
    session.save()
    return client


@contextmanager
def counted():
    """Count queries without keeping their SQL (a capture would hold megabytes)."""
    box = [0]

    def count(execute, sql, params, many, context):
        box[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield box


def timed(client: Client, url, runs: int, yardstick: Client, before=None) -> tuple[float, float, int, int]:
    """Median milliseconds of GET ``url`` (a string, or a callable giving the
    next URL: the pings rotate tokens), the median of the bare view measured
    in turn with it (``yardstick``'s session), response size and query count.

    Each request of the page follows one of the bare view, so that both see
    the same machine: on a shared one the bare view alone moved by 2x from
    minute to minute, and a ratio of medians taken minutes apart with it.
    ``before`` runs before each request of the page, untimed (the cold page
    empties the caches)."""
    next_url = url if callable(url) else lambda: url
    before = before or (lambda: None)
    before()
    with counted() as queries:
        first = next_url()
        response = client.get(first)
    assert response.status_code == 200, f"{first} answered {response.status_code}"
    for _ in range(3):
        yardstick.get(BARE)
        before()
        client.get(next_url())
    samples, bare = [], []
    for _ in range(runs):
        start = time.perf_counter()
        yardstick.get(BARE)
        bare.append((time.perf_counter() - start) * 1000)
        target = next_url()
        before()
        start = time.perf_counter()
        client.get(target)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), statistics.median(bare), len(response.content), queries[0]


def up_tokens(limit: int) -> list[str]:
    """Ping tokens of bots that are up (a ping keeps them up: no alert, no re-score)."""
    ids = Heartbeat.objects.filter(period_minutes=UP_PERIOD).order_by("automation_id").values_list("automation_id", flat=True)[:limit]
    return [ping_token(pk) for pk in ids]


def sweep(people: int) -> dict:
    """One run of the per-minute task ``heartbeats_sweep`` over every bot:
    the one in a hundred that went silent go down, each told once. Before
    each run they are marked up again, so each run has the same work."""

    def reset() -> None:
        Heartbeat.objects.filter(period_minutes=DOWN_PERIOD).update(
            notified="up", last_kind="success", deadline=F("last_at") + timedelta(minutes=DOWN_PERIOD + 10)
        )
        Incident.objects.all().delete()

    with override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}):
        reset()
        with counted() as queries:
            start = time.perf_counter()
            went_down = heartbeats_sweep.call()["went_down"]
            seconds = time.perf_counter() - start
        reset()
        tracemalloc.start()
        heartbeats_sweep.call()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"s": seconds, "queries": queries[0], "went_down": went_down, "peak_mib": peak / 2**20, "people": people}


# --------------------------------------------------------------------------
# Over HTTP: gunicorn on loopback, wrk as the load
# --------------------------------------------------------------------------

WRK = ["-t2", "-c16", "-d10s"]
# The desk over HTTP: 8 connections, as issue 25 measures it.
WRK_DESK = ["-t2", "-c8", "-d10s"]
# wrk's Lua: each request pings the next token of the list, each thread from
# its own place in it, so no token reaches its 30-a-minute limit.
WRK_ROTATE = """local paths = {%s}
local started = 0
function setup(thread) thread:set("offset", started * math.floor(#paths / 2)); started = started + 1 end
function init(args) i = offset end
function request() i = i %% #paths + 1; return wrk.format("GET", paths[i]) end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wrk(url: str, script: str | None = None, cookie: str = "", load: list[str] = WRK) -> tuple[float, int]:
    """Requests per second and non-2xx answers of one wrk run."""
    command = ["wrk", *load, *(["-s", script] if script else []), *(["-H", f"Cookie: {cookie}"] if cookie else []), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout  # noqa: S603 - our own arguments
    rps = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    bad = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return rps, bad


def over_http(tokens: list[str], session: Client, lead: Client) -> None:
    """The bare view (signed in with ``session``'s cookie, the yardstick of
    every in-process row, and without a session) and the ping through
    gunicorn (production settings, two workers, persistent connections)
    under wrk on loopback."""
    if shutil.which("wrk") is None:
        print("\nHTTP part skipped: wrk is not installed (apt-get install wrk).")
        return
    if not tokens:
        print("\nHTTP part skipped: too few traders to leave ping tokens for wrk (use --traders 100 or more).")
        return
    port = _free_port()
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings",
        # The in-process key, so that gunicorn reads the signed-in session made here.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SSL_REDIRECT": "0", "DJANGO_HSTS_SECONDS": "0", "DJANGO_CONN_MAX_AGE": "600", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    # Pages name their static files by the manifest, as in production.
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "collectstatic", "--noinput", "-v0"], env=env, check=True, timeout=300)  # noqa: S603
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(  # noqa: S603 - our own arguments
        [
            str(gunicorn), "config.wsgi:application", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--graceful-timeout", "5", "--chdir", str(ROOT),
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    script = Path(WORKDIR) / "ping.lua"
    script.write_text(WRK_ROTATE % ",".join(f'"/ping/{t}"' for t in tokens))
    try:
        _wait_for(f"{base}/bench/bare/", server)
        cookie = f"{settings.SESSION_COOKIE_NAME}={session.cookies[settings.SESSION_COOKIE_NAME].value}"
        signed_rps, signed_bad = _wrk(f"{base}/bench/bare/", cookie=cookie)
        bare_rps, bare_bad = _wrk(f"{base}/bench/bare/")
        ping_rps, ping_bad = _wrk(base, str(script))
        lead_cookie = f"{settings.SESSION_COOKIE_NAME}={lead.cookies[settings.SESSION_COOKIE_NAME].value}"
        lead_bare_rps, _ = _wrk(f"{base}/bench/bare/", cookie=lead_cookie, load=WRK_DESK)
        desk_rps, desk_bad = _wrk(f"{base}/desk/", cookie=lead_cookie, load=WRK_DESK)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"\nOver HTTP: gunicorn, 2 sync workers, production settings; wrk {' '.join(WRK)} on loopback, same run:\n")
    print(f"{'path':<40} {'req/s':>8} {'x bare':>8} {'non-2xx':>8}")
    print(f"{'bare view, signed in':<40} {signed_rps:>8.0f} {1:>8.2f} {signed_bad:>8}")
    print(f"{'bare view, no session':<40} {bare_rps:>8.0f} {bare_rps / signed_rps:>8.2f} {bare_bad:>8}")
    print(f"{'ping, rotating over ' + format(len(tokens), ',') + ' tokens':<40} {ping_rps:>8.0f} {ping_rps / signed_rps:>8.2f} {ping_bad:>8}")
    print(f"(ping: {ping_rps / signed_rps:.2f} of the signed-in bare view's requests/s, {ping_rps / bare_rps:.2f} of the session-less one's)")
    print(f"\nThe lead's desk over HTTP, wrk {' '.join(WRK_DESK)}, the lead's session:")
    print(f"{'bare view, signed in':<40} {lead_bare_rps:>8.0f} {1:>8.2f}")
    print(f"{'desk first page':<40} {desk_rps:>8.0f} {desk_rps / lead_bare_rps:>8.2f} {desk_bad:>8}")
    if ping_bad:
        print(f"(Too few tokens for this rate: {ping_bad} pings refused by the 30-a-minute limit; seed more traders.)")
    else:
        print("(Each ping token may record 30 pings a minute; wrk's script rotates over the tokens so none reaches it.)")


def _wait_for(url: str, server: subprocess.Popen) -> None:
    import urllib.request

    for _ in range(150):
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn stopped: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own loopback server
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def job(action, people: int) -> dict:
    """Seconds, queries per 1,000 traders and peak traced memory of ``action``
    (run twice: once timed, once under tracemalloc, which slows it down).
    Every job measured here is idempotent or given a fresh day."""
    with counted() as queries:
        start = time.perf_counter()
        action()
        seconds = time.perf_counter() - start
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"s": seconds, "queries_per_1000": queries[0] / people * 1000, "peak_mib": peak / 2**20}


def csv_all(client: Client) -> int:
    """Read the whole CSV of the firm as a browser would, chunk by chunk."""
    response = client.get("/desk/export.csv")
    assert response.status_code == 200 and response.streaming
    return sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1


def keep_connection() -> None:
    """Keep one database connection across requests, as CONN_MAX_AGE does in
    production and Django's test runner does, so that queries can be counted."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)


def machine() -> str:
    cpus = os.cpu_count()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")) / 2**20
    except (OSError, StopIteration):
        mem = 0
    return f"{model}, {cpus} cores, {mem:.0f} GiB, Python {platform.python_version()}, {connection.vendor} {connection.Database.__name__}"


def main() -> None:
    call_command("migrate", verbosity=0)
    keep_connection()
    started = time.perf_counter()
    lead, boss, trader, nightly = reuse(ARGS.traders) if ARGS.reuse else build(ARGS.traders, ARGS.days)
    seeded = time.perf_counter() - started
    history = ReadinessSnapshot.objects.count()
    print(f"Machine: {machine()}")
    if KEEP:
        print(f"Kept: {os.environ['DATABASE_URL']}")
    if ARGS.reuse:
        print(f"Reused {ARGS.traders} traders, {history:,} stored scores; ANALYZE took {seeded:.0f} s ({connection.vendor}).")
    else:
        print(f"Seeded {ARGS.traders} traders, {history:,} stored scores ({ARGS.days} days + today) in {seeded:.0f} s ({connection.vendor}).")
    lead_client, boss_client, trader_client = signed_in(lead), signed_in(boss), signed_in(trader)

    anonymous = Client(HTTP_HOST="localhost")
    # In-process pings take tokens from the end of the list, HTTP from the start.
    tokens = up_tokens(50000)
    local = iter(tokens[::-1])

    # API clients: a trader's read token and the lead's desk token, unlimited for the run.
    trader_api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {api_tokens.create(user=trader, name='bench', scope='read')[1]}")
    lead_api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {api_tokens.create(user=lead, name='bench', scope='desk:read')[1]}")

    with override_settings(ROOT_URLCONF=URLCONF, GATECHECK_API_REQUESTS_PER_MINUTE=10**9):
        big_client = signed_in(User.objects.get(username=BIG))
        pages = [
            ("bare view", lead_client, BARE, None),
            ("bare view, no session", anonymous, BARE, None),
            ("ping (no session, rotating tokens)", anonymous, lambda: f"/ping/{next(local)}", None),
            (f"desk page, a lead's {min(DESK_SIZE, ARGS.traders)}", lead_client, "/desk/", None),
            (f"desk page, superuser, all {ARGS.traders}", boss_client, "/desk/", None),
            ("  same, every cache cold (tallies, trend)", boss_client, "/desk/", cold),
            ("desk trader detail", lead_client, f"/desk/traders/{trader.pk}/", None),
            ("trader dashboard", trader_client, "/", None),
            (f"trader dashboard, {BIG_ITEMS} of each item", big_client, "/", None),
            ("admin user list, lead", lead_client, "/admin/accounts/user/", None),
            ("admin user list, superuser", boss_client, "/admin/accounts/user/", None),
            ("API readiness (session JSON, /api/readiness/)", trader_client, "/api/readiness/", None),
            ("API readiness (token, /api/v1/readiness)", trader_api, "/api/v1/readiness", None),
            ("API desk rows, a lead's first page (token)", lead_api, "/api/v1/desk/rows", None),
        ]
        results = [(label, *timed(client, url, ARGS.runs, lead_client, before)) for label, client, url, before in pages]

        anonymous_base = results[1][1]
        print(f"\nMedian of {ARGS.runs} requests each, in-process through the full middleware stack, each after")
        print("a request of the signed-in bare view (the yardstick; 'x bare' is against those requests' median):\n")
        print(f"{'page':<44} {'ms':>8} {'bare ms':>8} {'x bare':>8} {'queries':>8} {'KiB':>8}")
        for label, ms, base, size, queries in results:
            print(f"{label:<44} {ms:>8.1f} {base:>8.1f} {ms / base:>8.2f} {queries:>8} {size / 1024:>8.0f}")
        ratio = {label: ms / base for label, ms, base, *_ in results}
        api, desk_api = ratio["API readiness (token, /api/v1/readiness)"], ratio["API desk rows, a lead's first page (token)"]
        print(f"(API, target at most 1.5x the matching page: readiness {api / ratio['trader dashboard']:.2f}x the trader dashboard, "
              f"{api / ratio['API readiness (session JSON, /api/readiness/)']:.2f}x the session JSON; "
              f"desk rows {desk_api / ratio[pages[3][0]]:.2f}x the lead's desk page)")
        ping, ping_base = next((ms, base) for label, ms, base, *_ in results if label.startswith("ping"))
        # A bot's ping carries no session cookie; the bare view is measured both ways.
        print(f"(ping: {ping / ping_base:.1f}x the bare view with a session, {ping / anonymous_base:.1f}x the bare view without one)")

        variants = [(f"sort={key}&page=9", f"sort by {key}, page 9") for key in SORTS]
        variants += [("sort=score&dir=desc&page=9", "sort by score going down, page 9")]
        variants += [(f"{name}={value}&page=9", f"filter {name}={value}, page 9") for name, value in FILTERS]
        print(f"\nThe superuser's desk (all {ARGS.traders}), every sort and every filter, page 9 (or the last page):\n")
        print(f"{'query':<44} {'ms':>8} {'bare ms':>8} {'x bare':>8} {'queries':>8}")
        worst = (0.0, "")
        swept_rows = []
        for query, label in variants:
            ms, base, _, queries = timed(boss_client, f"/desk/?{query}", max(5, ARGS.runs // 2), lead_client)
            swept_rows.append(base)
            worst = max(worst, (ms / base, label))
            print(f"{label:<44} {ms:>8.1f} {base:>8.1f} {ms / base:>8.2f} {queries:>8}")
        print(f"(slowest: {worst[1]}, {worst[0]:.2f}x)")
        bares = [base for _, _, base, *_ in results] + swept_rows
        spread = max(bares) / min(bares)
        noisy = "NOISY: compare ratios only" if spread > 1.3 else "quiet"
        print(f"(the bare view's median moved from {min(bares):.1f} to {max(bares):.1f} ms across the rows, {spread:.2f}x: {noisy})")

        if ARGS.jobs:
            jobs = [("nightly scores (snapshot_all)", nightly)] if nightly else []
            with override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}):
                days = iter(range(1, 10))
                jobs.append(
                    ("daily reminders + digests", job(lambda: reminders_send_daily(as_of=timezone.localdate() + timedelta(days=next(days))), ARGS.traders))
                )
            rows = []
            jobs.append((f"CSV of all {ARGS.traders} (superuser)", job(lambda: rows.append(csv_all(boss_client)), ARGS.traders)))
            assert rows[0] == ARGS.traders, rows
            swept = sweep(ARGS.traders)
            kinds = ", ".join(f"{n:,} {kind}" for kind, n in Heartbeat.objects.values_list("schedule_kind").annotate(n=Count("pk")).order_by("schedule_kind"))
            print(f"\nHeartbeat sweep over {Heartbeat.objects.count():,} automations ({kinds}): {swept['went_down']} went down, "
                  f"{swept['s']:.1f} s, {swept['queries']} queries, peak {swept['peak_mib']:.1f} MiB")
            print(f"\nBackground jobs and the full export, {ARGS.traders} traders:\n")
            print(f"{'job':<40} {'s':>8} {'q/1000':>8} {'peak MiB':>9}")
            for label, r in jobs:
                print(f"{label:<40} {r['s']:>8.1f} {r['queries_per_1000']:>8.1f} {r['peak_mib']:>9.1f}")

    checkpoint()
    over_http(tokens[: len(tokens) - ARGS.runs - 4], signed_in(trader), lead_client)  # all tokens but those the in-process pings used


if __name__ == "__main__":
    main()
