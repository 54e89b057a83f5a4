"""Whole-database backup and restore, for ``manage.py backup`` and ``restore``.

Each engine's own tool, so a backup is the database exactly as it was:
every table (tasks, sessions, migrations applied), sequences, and on
PostgreSQL the audit table's trigger. A backup restored on a newer release
is brought up to date by ``manage.py migrate``, as any older database is.

- SQLite: the online backup API copies every page in one step, from one
  read snapshot, while the site keeps running (WAL lets writers go on).
  Restoring copies the backup's pages into the live file in one write
  transaction: a failure part way leaves the database as it was.
- PostgreSQL: ``pg_dump --format=custom`` reads everything in one snapshot;
  ``pg_restore --single-transaction --exit-on-error`` replaces the tables
  all at once or not at all. Both must be on PATH (the PostgreSQL client).

A backup is written to FILE.partial and renamed to FILE once complete, so
FILE is never half written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection

SQLITE_MAGIC = b"SQLite format 3\x00"
# How long a SQLite copy waits for a lock another connection holds.
SQLITE_LOCK_WAIT = 30
PG_MAGIC = b"PGDMP"


class BackupProblem(Exception):
    """Why a backup or a restore could not be done; nothing was changed."""


def database_backup(path: Path) -> None:
    """Write a consistent copy of the whole database to ``path``, readable by
    its owner alone (it holds password hashes and authenticator seeds)."""
    partial = path.with_name(path.name + ".partial")
    if connection.vendor == "sqlite" and path.resolve() in _sqlite_files():
        raise BackupProblem(f"{path} is the live database (or its journal): choose another file.")
    partial.unlink(missing_ok=True)
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        if connection.vendor == "sqlite":
            _sqlite_backup(partial)
        elif connection.vendor == "postgresql":
            _pg_run("pg_dump", ["--format=custom", "--file", str(partial)], [])
        else:
            raise BackupProblem(f"No backup for the {connection.vendor} engine.")
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _sqlite_files() -> set[Path]:
    live = Path(connection.settings_dict["NAME"]).resolve()
    return {live, live.with_name(live.name + "-wal"), live.with_name(live.name + "-shm")}


def database_restore(path: Path) -> None:
    """Replace the whole database with the backup at ``path``, all or nothing."""
    with open(path, "rb") as backup:
        head = backup.read(len(SQLITE_MAGIC))
    if connection.vendor == "sqlite":
        if not head.startswith(SQLITE_MAGIC):
            raise BackupProblem(f"{path} is not a backup of a SQLite database.")
        _sqlite_restore(path)
    elif connection.vendor == "postgresql":
        if not head.startswith(PG_MAGIC):
            raise BackupProblem(f"{path} is not a pg_dump archive (custom format).")
        if not connection.settings_dict.get("NAME"):
            raise BackupProblem("Set the database NAME (DATABASE_URL with a database name): pg_restore needs it.")
        connection.close()
        _pg_run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges",
                               "--single-transaction", "--exit-on-error", "--dbname"], [str(path)])
    else:
        raise BackupProblem(f"No restore for the {connection.vendor} engine.")
    connection.close()


def database_holds_people() -> bool:
    """Whether the database has any user, or any row that belongs to one
    (inventory, scores, sessions, the audit trail): what a restore would lose."""
    present = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in _owned_tables() & present:
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT 1")  # noqa: S608 (a table name from the models)
            if cursor.fetchone():
                return True
    return False


def _owned_tables() -> set[str]:
    user = get_user_model()
    tables = {user._meta.db_table}
    for model in apps.get_models():
        if any(field.many_to_one or field.one_to_one for field in model._meta.concrete_fields if field.related_model is user):
            tables.add(model._meta.db_table)
    return tables


def _sqlite_backup(partial: Path) -> None:
    connection.ensure_connection()
    copy = sqlite3.connect(partial)
    try:
        connection.connection.backup(copy, progress=_give_up_after(SQLITE_LOCK_WAIT))  # every page in one step: one snapshot
        # The copy keeps the live file's WAL mode; one self-contained file is what a backup should be.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def _sqlite_restore(path: Path) -> None:
    backup = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            ok = backup.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            ok = ok and backup.execute("SELECT 1 FROM django_migrations LIMIT 1").fetchone() is not None
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            raise BackupProblem(f"{path} is not a whole Gatecheck database (damaged, or never migrated).")
        connection.ensure_connection()
        # One step, one write transaction on the live file: all or nothing.
        try:
            backup.backup(connection.connection, progress=_give_up_after(SQLITE_LOCK_WAIT))
        except sqlite3.Error as error:
            raise BackupProblem(f"the copy stopped ({error}); the database is as it was") from None
    finally:
        backup.close()


def _give_up_after(seconds: float):
    """A progress callback for sqlite3's backup, which otherwise retries a
    locked database for ever: after ``seconds`` it ends the copy, undone."""
    deadline = time.monotonic() + seconds

    def progress(status: int, remaining: int, total: int) -> None:
        if time.monotonic() > deadline:
            raise BackupProblem(f"the database stayed locked for {seconds} s (another connection writing?)")

    return progress


def _pg_run(program: str, options: list[str], after: list[str]) -> None:
    if shutil.which(program) is None:
        raise BackupProblem(f"{program} is not on PATH: install the PostgreSQL client of the server's version.")
    args, env = connection.client.settings_to_cmd_args_env(connection.settings_dict, options)
    done = subprocess.run([program, *args[1:], *after], env={**os.environ, **(env or {})}, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupProblem(f"{program} failed: {reason}")
