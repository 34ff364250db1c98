"""config.rows: a new case's rows in one statement on PostgreSQL (README, "Benchmarks")."""

import pytest
from django.db import connection
from django.utils import timezone

from config import rows
from incidents import audit, services
from incidents.models import Case, CaseClock, Report, TimelineEvent


@pytest.fixture
def new_case(people):
    case = Case(kind="concern_colleague", reporter=people["worker"], owner=people["manager"])
    services._number(case, year=timezone.now().year)
    now = timezone.now()
    return [
        [case],
        [Report(case=case, narrative="Left notes on a bus.", details={"colleague": "B."})],
        services._new_case_clocks(case=case, now=now),
        audit.first_entries(
            case=case,
            events=[
                {"kind": "reported", "actor_id": case.reporter_id, "at": now, "data": {}},
                {"kind": "note_added", "actor_id": None, "at": now, "data": {"n": 1}},
            ],
        ),
    ]


def test_a_new_case_is_one_statement_psycopg_keeps_converted(new_case):
    """Empty columns are written as NULL, so the statement stays within the parameters
    psycopg keeps a statement's conversion for; past them it is parsed again every time."""
    from psycopg import _queries

    parts = [rows._insert(group) for group in new_case]
    assert sum(len(params) for _sql, params in parts) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert "NULL" in parts[0][0]
    assert all(param is not None for _sql, params in parts for param in params)
    assert sum(len(sql) for sql, _params in parts) <= _queries.MAX_CACHED_STATEMENT_LENGTH


def test_rows_are_stored_as_the_orm_stores_them(new_case):
    rows.insert_together(*new_case)
    [[case], [report], clocks, entries] = new_case
    assert not case._state.adding
    stored = Case.objects.get(pk=case.pk)
    assert (stored.reference, stored.status, stored.owner_id) == (
        case.reference,
        "reported",
        case.owner_id,
    )
    assert stored.created_at == case.created_at is not None
    assert stored.acknowledged_at is None and stored.outcome == ""
    assert stored.report.narrative == "Left notes on a bus."
    assert stored.report.details == {"colleague": "B."}
    with connection.cursor() as cursor:
        cursor.execute("SELECT narrative FROM incidents_report WHERE case_id = %s", [case.pk])
        raw = cursor.fetchone()[0]
    assert "Left notes" not in str(raw)  # encrypted, as the ORM would have
    assert sorted(CaseClock.objects.filter(case=case).values_list("kind", flat=True)) == sorted(
        clock.kind for clock in clocks
    )
    chain = list(TimelineEvent.objects.filter(case=case).order_by("id"))
    assert [e.hash for e in chain] == [e.hash for e in entries]
    assert [e.data for e in chain] == [{}, {"n": 1}]
    assert chain[1].prev_hash == chain[0].hash


def test_a_group_mixing_models_or_keys_is_refused(people, new_case):
    [[case], [report], clocks, _entries] = new_case
    with pytest.raises(ValueError):
        rows.insert_together([report, clocks[0]])
    with pytest.raises(ValueError):
        rows.insert_together([case, Case(kind="concern_colleague", reporter=people["worker"])])


def test_the_statement_is_sent_as_one(new_case, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows.insert_together(*new_case)
