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


# Columns that differ between any two cases by nature: keys, the reference, times of saving,
# the chain's hashes (they carry the case's id) and ciphertext (Fernet's random IV).
DIFFER = {"id", "case_id", "reference", "created_at", "prev_hash", "hash", "narrative", "details"}


def _stored(model, case_id) -> list[dict]:
    with connection.cursor() as cursor:
        key = "id" if model is Case else "case_id"
        cursor.execute(
            f"SELECT * FROM {model._meta.db_table} WHERE {key} = %s ORDER BY id",  # noqa: S608
            [case_id],
        )
        names = [column.name for column in cursor.description]
        return [
            {n: v for n, v in zip(names, row, strict=True) if n not in DIFFER}
            for row in cursor.fetchall()
        ]


def test_rows_are_stored_as_the_orm_stores_them(people, new_case):
    """Column for column, the same as the ORM's own inserts of the same objects."""
    [[case], [report], clocks, entries] = new_case
    rows.insert_together(*new_case)
    assert not case._state.adding
    # The same case again through the ORM, one save at a time.
    twin = Case.objects.create(
        reference="C-TWIN", kind=case.kind, reporter=case.reporter, owner=case.owner
    )
    Report.objects.create(case=twin, narrative=report.narrative, details=report.details)
    for clock in clocks:
        CaseClock.objects.create(
            case=twin,
            kind=clock.kind,
            started_at=clock.started_at,
            due_at=clock.due_at,
            warn_at=clock.warn_at,
        )
    for entry in entries:
        TimelineEvent.objects.create(
            case=twin,
            kind=entry.kind,
            actor_id=entry.actor_id,
            at=entry.at,
            data=entry.data,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )
    for model in (Case, Report, CaseClock, TimelineEvent):
        assert _stored(model, case.pk) == _stored(model, twin.pk), model
    stored = Case.objects.get(pk=case.pk)
    assert stored.created_at == case.created_at is not None
    assert stored.report.narrative == "Left notes on a bus."
    assert stored.report.details == {"colleague": "B."}
    with connection.cursor() as cursor:
        cursor.execute("SELECT narrative FROM incidents_report WHERE case_id = %s", [case.pk])
        raw = cursor.fetchone()[0]
    assert "Left notes" not in str(raw)  # encrypted, as the ORM would have
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
