"""On PostgreSQL, statements a connection runs again and again are prepared: parsed and
planned once (README, "Benchmarks"). That needs parameters bound by the server, not quoted
into the SQL by psycopg."""

import pytest
from django.conf import settings
from django.db import connection

from incidents.models import Case
from tests.conftest import setting_in_subprocess

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def test_parameters_are_bound_by_the_server_and_repeated_statements_prepared(db):
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5
    for n in range(6):
        list(Case.objects.filter(reference=f"C-1999-{n:04d}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "incidents_case"' in sql and "$1" in sql for sql in prepared), prepared


def database_options(**env: str) -> dict:
    return setting_in_subprocess("settings.DATABASES['default']['OPTIONS']", **env)


def test_preparing_can_be_turned_off_for_a_pooler_in_transaction_mode():
    url = settings.DATABASES["default"]
    database_url = f"postgres://{url['USER']}@{url['HOST']}:{url['PORT']}/{url['NAME']}"
    assert database_options(DATABASE_URL=database_url)["prepare_threshold"] == 5
    off = database_options(DATABASE_URL=database_url, DATABASE_PREPARE_THRESHOLD="0")
    assert off["prepare_threshold"] is None
    assert off["server_side_binding"] is True
