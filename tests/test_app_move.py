"""The inventory's models moved from the checklist app to the devices app
(issue "One inventory, one read model") on their own tables: a database
built by the code of main before the move keeps every row.

The code of that commit (``BEFORE_MOVE``, taken from this repository's own
history with ``git archive``) migrates a fresh database and seeds the demo
firm; its own commands print every trader's inventory file and readiness
report. Today's code then migrates the same database and prints them again:
they must be the same, byte for byte, and so must the rows of every moved
table. Real processes, real migrations, on SQLite and, when the suite runs on
PostgreSQL, on a throwaway PostgreSQL database too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Main before this round's migrations (checklist 0010 and 0011, devices 0005):
# its models live in checklist, its current rows keep the JSON and sort-name copies.
BEFORE_MOVE = "67307e3"
TRADERS = ("ava", "ben", "carla", "dev", "elena", "farid", "grace", "hiro", "ines", "jonas", "kemi", "liam")
MOVED_TABLES = (
    "checklist_tradingprofile",
    "checklist_subscription",
    "checklist_drill",
    "checklist_drillstep",
    "checklist_permission",
    "checklist_acceptedrisk",
)



def _run(code: Path, database_url: str, *args: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DJANGO_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(code),
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "manage.py", *args], cwd=code, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{' '.join(args)} in {code}: {done.stderr[-3000:]}"
    return done.stdout


def _seen(code: Path, database_url: str) -> dict[str, str]:
    """Every row of every moved table (raw SQL: no model needed), and each
    trader's inventory file and readiness report, printed by that code's own
    commands: one process."""
    script = (
        "import io, json\n"
        "from django.core.management import call_command\n"
        "from django.db import connection\n"
        "seen = {}\n"
        f"for table in {MOVED_TABLES!r}:\n"
        "    with connection.cursor() as c:\n"
        "        c.execute(f'SELECT * FROM {table} ORDER BY id')\n"
        "        names = [d[0] for d in c.description]\n"
        "        seen[table] = [{n: str(v) for n, v in zip(names, row)} for row in c.fetchall()]\n"
        f"for user in {TRADERS!r}:\n"
        "    for name, options in (('export_inventory', {}), ('readiness', {'json': True})):\n"
        "        out = io.StringIO()\n"
        "        call_command(name, user=user, stdout=out, **options)\n"
        "        seen[f'{user} {name}'] = out.getvalue()\n"
        "print(json.dumps(seen))\n"
    )
    return json.loads(_run(code, database_url, "shell", "--no-imports", "-c", script))


@pytest.fixture(scope="module")
def before_move(tmp_path_factory) -> Path:
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BEFORE_MOVE}^{{commit}}"], capture_output=True).returncode:  # noqa: S603, S607
        pytest.skip(f"this clone has no commit {BEFORE_MOVE} (a shallow clone)")
    code = tmp_path_factory.mktemp("before-move")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE_MOVE], capture_output=True, check=True).stdout  # noqa: S603, S607
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)  # noqa: S603, S607
    return code


def _databases(tmp_path: Path) -> list[tuple[str, str]]:
    urls = [("sqlite", f"sqlite:///{tmp_path / 'built-before-the-move.sqlite3'}")]
    current = os.environ.get("DATABASE_URL", "")
    if current.startswith("postgres"):
        urls.append(("postgresql", current.rsplit("/", 1)[0] + f"/gatecheck_move_{uuid.uuid4().hex[:8]}"))
    return urls


def _create_postgres(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_postgres(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_built_before_the_move_keeps_every_row_export_and_score(before_move, tmp_path):
    for vendor, url in _databases(tmp_path):
        if vendor == "postgresql":
            _create_postgres(url)
        try:
            _run(before_move, url, "migrate", "-v0")
            _run(before_move, url, "seed_demo")
            # A drill run in the app (with its steps), started by that code's own service.
            start = (
                "from accounts.models import User\n"
                "from checklist.services import drill_start\n"
                "drill_start(request=None, owner=User.objects.get(username='hiro'), lost_device='Phone')\n"
            )
            _run(before_move, url, "shell", "--no-imports", "-c", start)
            before = _seen(before_move, url)
            assert all(before[table] for table in MOVED_TABLES), "the demo firm has rows in every moved table"
            assert json.loads(before["ava export_inventory"])["drills"], "and the exports show them"

            _run(ROOT, url, "migrate", "-v0")
            after = _seen(ROOT, url)
            for what in before:
                if what in MOVED_TABLES:
                    # Every row keeps every value it had; columns added by later migrations are new, not changes.
                    kept = [{column: row[column] for column in old} for row, old in zip(after[what], before[what], strict=True)]
                    assert kept == before[what], f"{vendor}: {what} changed by the move"
                else:
                    assert after[what] == before[what], f"{vendor}: {what} changed by the move"
            # The moved models' content types (a lead's view rights, the admin's history) moved with them.
            script = (
                "from django.contrib.contenttypes.models import ContentType as C\n"
                "print(sorted(C.objects.filter(model__in=['drill', 'acceptedrisk']).values_list('app_label', 'model')))"
            )
            assert _run(ROOT, url, "shell", "--no-imports", "-c", script).strip() == "[('devices', 'acceptedrisk'), ('devices', 'drill')]"
        finally:
            if vendor == "postgresql":
                _drop_postgres(url)
