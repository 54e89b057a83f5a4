"""Data lifecycle: what each app's hourly task deletes at the edge of its
retention, and a backup restored into an empty database giving back every
trader's inventory and score."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tasks import audit_old_prune
from checklist.models import ReadinessSnapshot
from checklist.tasks import snapshots_old_thin
from desk.models import ReminderLog
from desk.tasks import reminder_logs_old_prune
from devices.models import HeartbeatSignal
from devices.tasks import signals_old_prune
from tests.builders import automation, heartbeat, snapshot, today

ROOT = Path(__file__).resolve().parent.parent
MINUTE = timedelta(minutes=1)

pytestmark = pytest.mark.django_db


# --- Retention, through the periodic tasks ------------------------------------------------


def test_audit_events_go_after_seven_years_and_not_a_minute_before(alice, settings):
    assert settings.GATECHECK_AUDIT_RETENTION_DAYS == 7 * 365 + 2
    horizon = timezone.now() - timedelta(days=settings.GATECHECK_AUDIT_RETENTION_DAYS)
    outside = AuditEvent.objects.create(action="login.success", actor=alice, subject=alice, at=horizon - MINUTE)
    inside = AuditEvent.objects.create(action="login.success", actor=alice, subject=alice, at=horizon + MINUTE)
    assert audit_old_prune.enqueue().return_value == {"audit_events": 1}
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [inside.pk]
    assert not AuditEvent.objects.filter(pk=outside.pk).exists()
    assert audit_old_prune.enqueue().return_value == {"audit_events": 0}


def test_old_audit_events_go_in_batches_until_none_is_left(alice, settings):
    settings.GATECHECK_PRUNE_BATCH = 2
    long_ago = timezone.now() - timedelta(days=settings.GATECHECK_AUDIT_RETENTION_DAYS + 1)
    AuditEvent.objects.bulk_create([AuditEvent(action="logout", actor=alice, subject=alice, at=long_ago) for _ in range(5)])
    assert audit_old_prune.enqueue().return_value == {"audit_events": 5}
    assert not AuditEvent.objects.exists()


def test_heartbeat_signals_go_after_their_retention(alice, settings):
    beat = heartbeat(automation(alice))
    horizon = timezone.now() - timedelta(days=settings.GATECHECK_SIGNAL_RETENTION_DAYS)
    for at in (horizon - MINUTE, horizon + MINUTE):
        HeartbeatSignal.objects.create(owner=alice, heartbeat=beat, at=at, kind="success")
    assert signals_old_prune.enqueue().return_value == {"signals": 1}
    assert list(HeartbeatSignal.objects.values_list("at", flat=True)) == [horizon + MINUTE]
    assert signals_old_prune.enqueue().return_value == {"signals": 0}


def test_signals_outlive_every_history_a_page_shows(settings):
    from checklist.selectors import HISTORY_DAYS

    # The longest history shown is the 90-day score chart; a weekly bot's last
    # five signals (what its page lists) span 35 days.
    assert settings.GATECHECK_SIGNAL_RETENTION_DAYS > max(HISTORY_DAYS, 5 * 7)
    assert settings.GATECHECK_SNAPSHOT_THIN_DAYS > HISTORY_DAYS + 14


def test_reminder_logs_go_after_ninety_days(alice, settings):
    assert settings.GATECHECK_REMINDER_RETENTION_DAYS == 90
    day = today()
    for age in (90, 91):
        ReminderLog.objects.create(recipient=alice, kind=ReminderLog.Kind.DAILY, date=day - timedelta(days=age))
    ReminderLog.objects.create(recipient=alice, kind=ReminderLog.Kind.DAILY, date=day)
    assert reminder_logs_old_prune.enqueue().return_value == {"reminder_logs": 1}
    assert sorted(ReminderLog.objects.values_list("date", flat=True)) == [day - timedelta(days=90), day]
    assert reminder_logs_old_prune.enqueue().return_value == {"reminder_logs": 0}


def _iso_week(day: date) -> tuple[int, int]:
    return day.isocalendar()[:2]


def test_scores_past_400_days_are_thinned_to_the_last_of_each_week(alice, settings):
    horizon = today() - timedelta(days=settings.GATECHECK_SNAPSHOT_THIN_DAYS)
    for days_ago in range(430, 390, -1):
        snapshot(alice, days_ago=days_ago, score=days_ago % 100)
    snapshot(alice, score=90)
    before = set(ReadinessSnapshot.objects.filter(user=alice).values_list("date", flat=True))
    old = sorted(day for day in before if day < horizon)
    weeks = {_iso_week(day) for day in old}

    first = snapshots_old_thin.enqueue().return_value["snapshots"]

    after = set(ReadinessSnapshot.objects.filter(user=alice).values_list("date", flat=True))
    # From the horizon on (400 days old included), every day stays.
    assert {day for day in before if day >= horizon} <= after
    # Past it, one per ISO week: the week's last one.
    kept_old = sorted(day for day in after if day < horizon)
    assert sorted(_iso_week(day) for day in kept_old) == sorted(weeks)
    assert kept_old == sorted(max(day for day in old if _iso_week(day) == week) for week in weeks)
    assert first == len(old) - len(weeks) > 0
    assert snapshots_old_thin.enqueue().return_value == {"snapshots": 0}


def test_a_traders_newest_score_is_kept_however_old(bob, settings):
    # bob stopped trading long ago: his last two scores fell in one week.
    sunday = today() - timedelta(days=settings.GATECHECK_SNAPSHOT_THIN_DAYS + 30)
    sunday -= timedelta(days=sunday.isoweekday() % 7)
    for day in (sunday - timedelta(days=2), sunday - timedelta(days=1)):
        snapshot(bob, days_ago=(today() - day).days, score=55)
    snapshots_old_thin.enqueue()
    assert list(ReadinessSnapshot.objects.filter(user=bob).values_list("date", flat=True)) == [sunday - timedelta(days=1)]
    assert bob.current_score.date == sunday - timedelta(days=1)


@pytest.mark.postgres
def test_postgres_lets_only_the_prune_delete_audit_rows_and_none_younger_than_seven_years(alice):
    if connection.vendor != "postgresql":
        pytest.skip("The audit trigger exists on PostgreSQL only (DATABASE_URL=postgres://...).")
    now = timezone.now()
    ancient = AuditEvent.objects.create(action="logout", actor=alice, subject=alice, at=now - timedelta(days=3000))
    # Past a year, within seven: the flag anyone can set deletes nothing.
    recent = AuditEvent.objects.create(action="logout", actor=alice, subject=alice, at=now - timedelta(days=2000))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [ancient.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL gatecheck.audit_prune = 'on'")
        cursor.execute("DELETE FROM accounts_auditevent WHERE id = %s", [recent.pk])
    assert audit_old_prune.enqueue().return_value == {"audit_events": 1}
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]


# --- Backup and restore ----------------------------------------------------------------------

STATE = """
import json
from django.apps import apps
from django.utils import timezone
from accounts.models import User
from devices.inventory import export_inventory
from checklist.models import CurrentScore, ReadinessSnapshot
from devices.selectors import report_for

day = timezone.localdate()
state = {"rows": {m._meta.label: m._base_manager.count() for m in apps.get_models()}, "traders": {}}
for user in User.objects.order_by("username"):
    state["traders"][user.username] = {
        "export": export_inventory(user),
        "score": report_for(user, day).score,
        "current": list(CurrentScore.objects.filter(user=user).values_list("score", "level", "date")),
        "history": list(ReadinessSnapshot.objects.filter(user=user).order_by("date").values_list("date", "score")),
    }
print(json.dumps(state, default=str, sort_keys=True))
"""

ZOE = """
from tests.builders import prepared_trader, snapshot
from tests.conftest import make_user
zoe = make_user("zoe")
prepared_trader(zoe)
snapshot(zoe, days_ago=1, score=100)
"""


def manage(database: Path, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": f"sqlite:///{database}"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def state_of(database: Path) -> dict:
    done = manage(database, "shell", "--no-imports", "-c", STATE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def seeded_once(tmp_path_factory) -> Path:
    database = tmp_path_factory.mktemp("seeded") / "live.sqlite3"
    for args in (("migrate", "-v0"), ("seed_demo", "--force"), ("shell", "--no-imports", "-c", ZOE)):
        done = manage(database, *args)
        assert done.returncode == 0, done.stderr
    return database


@pytest.fixture
def seeded(seeded_once, tmp_path) -> Path:
    """A real SQLite file: a demo desk (a lead, twelve traders, 90 days of
    scores) and zoe, built with the test builders; each test its own copy."""
    database = tmp_path / "live.sqlite3"
    shutil.copyfile(seeded_once, database)  # closed by its last command: no WAL left beside it
    return database


def test_a_backup_restored_into_an_empty_database_gives_back_every_trader(seeded, tmp_path):
    backup = tmp_path / "gatecheck.backup"
    done = manage(seeded, "backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert backup.is_file() and not Path(f"{backup}.partial").exists()
    assert backup.stat().st_mode & 0o077 == 0  # password hashes and authenticator seeds: the owner's eyes only

    empty = tmp_path / "new.sqlite3"
    done = manage(empty, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gatecheck")) == ["gatecheck.backup"]  # one self-contained file

    original, restored = state_of(seeded), state_of(empty)
    assert len(original["traders"]) == 14 and original["traders"]["zoe"]["score"] == 100
    assert all(trader["history"] for name, trader in original["traders"].items() if name != "lena")
    assert restored == original


def test_restore_refuses_a_database_with_people_unless_forced(seeded, tmp_path):
    backup = tmp_path / "gatecheck.backup"
    assert manage(seeded, "backup", str(backup)).returncode == 0
    at_backup = state_of(seeded)
    done = manage(seeded, "shell", "--no-imports", "-c", "from tests.conftest import make_user; make_user('yann')")
    assert done.returncode == 0, done.stderr
    since = state_of(seeded)

    refused = manage(seeded, "restore", str(backup))
    assert refused.returncode != 0 and "not empty" in refused.stderr
    assert state_of(seeded) == since

    forced = manage(seeded, "restore", str(backup), "--force")
    assert forced.returncode == 0, forced.stderr
    assert state_of(seeded) == at_backup


def test_a_damaged_backup_restores_nothing(seeded, tmp_path):
    backup = tmp_path / "gatecheck.backup"
    assert manage(seeded, "backup", str(backup)).returncode == 0
    before = state_of(seeded)
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(backup.read_bytes()[: backup.stat().st_size // 3])
    done = manage(seeded, "restore", str(damaged), "--force")
    assert done.returncode != 0 and "Nothing restored" in done.stderr
    assert state_of(seeded) == before


@pytest.mark.django_db(transaction=True)
def test_a_backup_that_fails_leaves_no_file(alice, tmp_path, monkeypatch):
    target = tmp_path / "gatecheck.backup"

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CommandError, match="No space left"):
        call_command("backup", str(target))
    assert list(tmp_path.iterdir()) == []


def test_a_backup_waits_for_a_locked_database_only_so_long(alice, tmp_path, monkeypatch):
    from django.db import connection

    from accounts import backups

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's online backup waits on a lock; pg_dump reads a snapshot and never does")
    # This test's open transaction locks its in-memory database for a copy.
    monkeypatch.setattr(backups, "SQLITE_LOCK_WAIT", 0.2)
    with pytest.raises(CommandError, match="stayed locked"):
        call_command("backup", str(tmp_path / "gatecheck.backup"))
    assert list(tmp_path.iterdir()) == []


def test_a_backup_never_replaces_the_live_database(seeded):
    before = seeded.read_bytes()
    for target in (seeded, seeded.with_name(seeded.name + "-wal")):
        done = manage(seeded, "backup", str(target))
        assert done.returncode != 0 and "live database" in done.stderr
    assert seeded.read_bytes() == before
