"""Chain the timeline and the access log by hash, and make PostgreSQL refuse UPDATE and DELETE
on both tables.

Existing rows are chained in id order per case, as incidents.audit does for new rows. The
trigger leaves TRUNCATE alone (test databases are flushed with it); in production the
application's role should not own the tables, so it cannot TRUNCATE or drop the trigger."""

import hashlib
import json
from datetime import UTC

import django.utils.timezone
from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models

GENESIS = "0" * 64


def _hash(prev, payload):
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    )
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _iso(at):
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# A frozen copy of incidents.audit's payloads: a later change there must come with its own
# migration re-chaining the rows, never silently change what this one wrote.
def _timeline(row):
    return {
        "case": row.case_id,
        "kind": row.kind,
        "actor": row.actor_id,
        "at": _iso(row.at),
        "data": row.data,
        "dedupe_key": row.dedupe_key,
    }


def _access(row):
    return {
        "case": row.case_id,
        "user": row.user_id,
        "action": row.action,
        "basis": row.basis,
        "path": row.path,
        "ip": row.ip_address,
        "at": _iso(row.at),
    }


def chain_existing_rows(apps, schema_editor):
    for name, payload in (("TimelineEvent", _timeline), ("AccessLogEntry", _access)):
        model = apps.get_model("incidents", name)
        case_id, prev = None, GENESIS
        for row in model.objects.order_by("case_id", "id").iterator(chunk_size=2000):
            if row.case_id != case_id:
                case_id, prev = row.case_id, GENESIS
            digest = _hash(prev, payload(row))
            model.objects.filter(pk=row.pk).update(prev_hash=prev, hash=digest)
            prev = digest


APPEND_ONLY_TABLES = ("incidents_timelineevent", "incidents_accesslogentry")


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # the embedded SQLite database for development relies on the ORM's refusal
    schema_editor.execute(
        """
        CREATE OR REPLACE FUNCTION concernline_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'rows of % are never changed or deleted', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """,
        params=None,  # the % above is PL/pgSQL's, not a query parameter
    )
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION concernline_append_only()"
        )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS concernline_append_only()")


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0004_timeline_and_access_kinds_together"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesslogentry",
            name="at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="accesslogentry",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="accesslogentry",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="timelineevent",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
