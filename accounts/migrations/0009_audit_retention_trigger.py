"""On PostgreSQL the audit table lets retention delete its old rows, and nobody else.

0003's trigger refuses every UPDATE and DELETE. Audit events are kept for
GATECHECK_AUDIT_RETENTION_DAYS (seven years) and then deleted by the hourly
prune (``accounts.services.audit_prune``), which marks its own transaction
with ``SET LOCAL gatecheck.audit_prune = 'on'``. Even so the database deletes
only rows older than the seven years themselves (2557 days, leap days
included): the flag is an ordinary setting any session can set, so the age
is the guard, and a client that sets it by hand can remove nothing the
retention keeps. UPDATE is still refused always.
"""

from django.db import migrations

ALLOW_RETENTION = """
CREATE OR REPLACE FUNCTION accounts_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('gatecheck.audit_prune', true) = 'on'
       AND OLD.at < now() - interval '2557 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'Audit events are append-only (% refused).', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

REFUSE_ALL = """
CREATE OR REPLACE FUNCTION accounts_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'Audit events are append-only (% refused).', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def allow_retention(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW_RETENTION, params=None)


def refuse_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REFUSE_ALL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_background"),
    ]

    operations = [migrations.RunPython(allow_retention, refuse_all, elidable=False)]
