"""Time a firm's adoption paths (issue 22): inviting 500 people to a desk,
and a SCIM sync of 5,000 people (each looked up by userName, then created,
as identity providers do), then the desk as a SCIM group of them all.
Prints the time and the queries per person of each.

    python bench/adoption.py [--people 5000] [--invites 500] [--database-url URL]

Without ``--database-url`` a throwaway SQLite file is used; a PostgreSQL
database named in the URL is created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--invites", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="gc-adoption-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{scratch}/adoption.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    os.environ["DJANGO_DEBUG"] = "false"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    created_db = _create_database(args.database_url) if args.database_url else None
    try:
        call_command("migrate", verbosity=0)
        from accounts import invitations
        from accounts.models import Desk, User

        lead = User.objects.create_user("lead", email="lead@example.com", password="x" * 20)
        desk = Desk.objects.create(name="Adoption desk")
        desk.leads.add(lead)

        addresses = [f"invitee{i}@example.com" for i in range(args.invites)]
        with Counted(connection) as queries:
            start = time.perf_counter()
            invitations.invite(desk=desk, addresses=addresses, by=lead)
            took = time.perf_counter() - start
        print(f"invite {args.invites}: {took:.2f} s, {len(queries) / args.invites:.1f} queries per person (e-mails queued for the worker)")

        out = io.StringIO()
        call_command("scim_token", "create", "bench", stdout=out, stderr=io.StringIO())
        scim = Client(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")
        schema = "urn:ietf:params:scim:schemas:core:2.0:User"
        ids = []
        with Counted(connection) as queries:
            start = time.perf_counter()
            for i in range(args.people):
                name = f"person{i}@example.com"
                found = scim.get("/scim/v2/Users", {"filter": f'userName eq "{name}"'}).json()
                assert found["totalResults"] == 0, found
                body = {"schemas": [schema], "userName": name, "name": {"givenName": "P", "familyName": str(i)},
                        "emails": [{"value": name}], "active": True}
                response = scim.post("/scim/v2/Users", json.dumps(body), content_type="application/scim+json")
                assert response.status_code == 201, response.content
                ids.append(response.json()["id"])
            took = time.perf_counter() - start
        print(f"SCIM sync of {args.people}: {took:.1f} s ({1000 * took / args.people:.1f} ms per person), {len(queries) / args.people:.1f} queries per person")
        with Counted(connection) as queries:
            start = time.perf_counter()
            operation = {"op": "add", "path": "members", "value": [{"value": i} for i in ids]}
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation]}
            response = scim.patch(f"/scim/v2/Groups/{desk.pk}", json.dumps(body), content_type="application/scim+json")
            took = time.perf_counter() - start
        assert response.status_code in (200, 204), response.content
        print(f"SCIM group of {args.people} members (one PATCH, scores the newcomers): {took:.1f} s, {len(queries)} queries")
    finally:
        connection.close()
        if created_db:
            _drop_database(args.database_url)


class Counted:
    """Counts the statements run inside it (Django's own query log keeps only the last 9,000)."""

    def __init__(self, connection):
        self.connection, self.n = connection, 0

    def __enter__(self):
        self._wrapper = self.connection.execute_wrapper(self._count)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def __len__(self) -> int:
        return self.n

    def _count(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def _create_database(url: str) -> str:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
