"""Migrations that index the big tables of a live system (the audit chains, the clocks) build
their indexes concurrently on PostgreSQL, outside a transaction, and touch no foreign key: a
plain CREATE INDEX or a re-added constraint would stop reports and case views while it ran."""

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

ONLINE = [
    ("0010_chain_head_indexes", ["incidents_access_chain", "incidents_timeline_chain"]),
    (
        "0011_running_clock_indexes",
        ["incidents_clock_warn_running", "incidents_clock_due_running"],
    ),
]


@pytest.mark.parametrize(("migration", "indexes"), ONLINE)
def test_indexes_on_big_tables_are_built_without_blocking_writes(migration, indexes):
    out = StringIO()
    call_command("sqlmigrate", "incidents", migration, stdout=out)
    sql = out.getvalue()
    for name in indexes:
        # An index a broken run left behind (perhaps INVALID) is dropped, then built afresh.
        dropped = sql.find(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        built = sql.find(f'CREATE INDEX CONCURRENTLY "{name}"')
        assert 0 <= dropped < built, sql
    assert "BEGIN;" not in sql, sql
    assert "CONSTRAINT" not in sql, sql
