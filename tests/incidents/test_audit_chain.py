"""The timeline and the access log cannot be quietly changed: PostgreSQL refuses UPDATE and
DELETE, and `manage.py verify_audit` finds any row changed, removed or moved behind its back."""

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from config.rows import insert_together
from incidents import access, audit, services
from incidents.models import AccessLogEntry, AppendOnlyError, TimelineEvent, TimelineKind

TABLES = ("incidents_timelineevent", "incidents_accesslogentry")


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    return err.getvalue()


def tamper(sql: str, params=()) -> None:
    """Change rows as someone with the table owner's rights would: trigger off, then SQL.
    ALTER TABLE is transactional, so the trigger is back when the test's transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending on the rows
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cursor.execute(sql, params)


@pytest.fixture
def busy_case(make_case, people):
    """A case with a few timeline events and access-log rows."""
    case = make_case("crime", to="under_review")
    for _ in range(3):
        access.log_access(
            user=people["manager"], case=case, action="view", basis="owner", request=None
        )
    return case


def test_an_untouched_chain_passes(busy_case, make_case):
    make_case("breach")
    assert TimelineEvent.objects.filter(case=busy_case).count() >= 3
    assert verify().startswith("OK:")


def test_each_row_links_to_the_one_before(busy_case):
    for model in (TimelineEvent, AccessLogEntry):
        rows = list(model.objects.filter(case=busy_case).order_by("id"))
        assert rows[0].prev_hash == audit.GENESIS
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.prev_hash == before.hash


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("sql", ["UPDATE {t} SET case_id = case_id", "DELETE FROM {t}"])
def test_postgresql_refuses_updates_and_deletes(busy_case, table, sql):
    with (
        pytest.raises(DatabaseError, match="never changed or deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql.format(t=table))


def test_the_orm_refuses_too(busy_case):
    entry = AccessLogEntry.objects.filter(case=busy_case).first()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_a_changed_timeline_row_is_named(busy_case):
    event = TimelineEvent.objects.filter(case=busy_case).order_by("id")[1]
    tamper(
        'UPDATE incidents_timelineevent SET data = \'{"note": "nothing happened"}\' WHERE id = %s',
        [event.id],
    )
    message = verify_fails()
    assert "incidents_timelineevent" in message
    assert busy_case.reference in message and f"row {event.id} " in message
    assert f"expected {event.hash}" not in message  # the recomputed hash, not the stored one
    assert f"found {event.hash}" in message


def test_a_changed_timestamp_is_caught(busy_case):
    event = TimelineEvent.objects.filter(case=busy_case).order_by("id").last()
    tamper(
        "UPDATE incidents_timelineevent SET at = at - interval '1 second' WHERE id = %s",
        [event.id],
    )
    assert f"row {event.id} was changed" in verify_fails()


def test_a_deleted_row_breaks_the_next_link(busy_case):
    first, second = TimelineEvent.objects.filter(case=busy_case).order_by("id")[:2]
    tamper("DELETE FROM incidents_timelineevent WHERE id = %s", [first.id])
    message = verify_fails()
    assert f"row {second.id} does not follow" in message
    assert f"expected {audit.GENESIS}, found {first.hash}" in message


def test_a_moved_row_is_caught(busy_case):
    first = TimelineEvent.objects.filter(case=busy_case).order_by("id").first()
    tamper(
        "UPDATE incidents_timelineevent SET id = id + 1000000 WHERE id = %s",
        [first.id],
    )
    assert "does not follow" in verify_fails()


def test_a_changed_access_log_row_is_named(busy_case, people):
    entry = AccessLogEntry.objects.filter(case=busy_case).order_by("id")[2]
    tamper(
        "UPDATE incidents_accesslogentry SET user_id = %s WHERE id = %s",
        [people["dpo"].id, entry.id],
    )
    message = verify_fails()
    assert "incidents_accesslogentry" in message and f"row {entry.id} was changed" in message


def test_a_forged_row_with_a_made_up_hash_is_caught(busy_case, people):
    last = AccessLogEntry.objects.filter(case=busy_case).order_by("id").last()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_accesslogentry "
            "(case_id, user_id, action, basis, path, at, prev_hash, hash) "
            "VALUES (%s, %s, 'view', 'owner', '', now(), %s, %s)",
            [busy_case.id, people["hr"].id, last.hash, "f" * 64],
        )
    assert "was changed" in verify_fails()


def test_register_logging_chains_every_case(make_case, people):
    cases = [make_case("crime"), make_case("breach"), make_case("safeguarding")]
    access.log_many(user=people["dpo"], cases=cases, action="view", basis="dpo", request=None)
    access.log_many(user=people["dpo"], cases=cases, action="view", basis="dpo", request=None)
    assert verify().startswith("OK:")


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_chain(people, rota):
    from tests.incidents.conftest import NARRATIVE

    case = services.submit_report(
        reporter=people["worker"],
        narrative=NARRATIVE,
        kind="worrying_information",
        details={"occurred": "today"},
    )
    barrier = threading.Barrier(4)
    errors = []

    def writer(n):
        try:
            barrier.wait()
            for i in range(10):
                services.add_event(
                    case=case, kind=TimelineKind.NOTE_ADDED, actor=None, data={"n": n, "i": i}
                )
                access.log_access(
                    user=people["manager"], case=case, action="view", basis="dpo", request=None
                )
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for model in (TimelineEvent, AccessLogEntry):
        rows = list(model.objects.filter(case=case).order_by("id"))
        assert len({row.prev_hash for row in rows}) == len(rows)  # no fork
    assert verify().startswith("OK:")


def test_several_entries_appended_at_once_continue_the_chain(busy_case):
    """A batch goes on the end of the chain in the order given, each row linked to the one
    before it, and verify_audit accepts it."""
    from django.utils import timezone

    before = list(busy_case.timeline.order_by("id"))
    now = timezone.now()
    rows = audit.append_timeline_events(
        case=busy_case,
        events=[
            {"kind": TimelineKind.NOTE_ADDED, "actor_id": None, "at": now, "data": {"n": n}}
            for n in range(3)
        ],
    )
    chain = list(busy_case.timeline.order_by("id"))
    assert chain[: len(before)] == before
    assert [row.id for row in chain[len(before) :]] == [row.id for row in rows]
    assert [row.data for row in chain[len(before) :]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    for earlier, later in zip(chain, chain[1:], strict=False):
        assert later.prev_hash == earlier.hash
    assert verify().startswith("OK:")


@pytest.mark.django_db(transaction=True)
def test_reports_at_once_each_start_a_sound_chain(people, rota):
    """New cases' first entries are written in one insert each; reports submitted together
    (urgent ones with two entries) still leave every chain sound."""
    from tests.incidents.conftest import NARRATIVE

    barrier = threading.Barrier(4)
    errors = []

    def reporter(n):
        try:
            barrier.wait()
            for i in range(5):
                if (n + i) % 2:
                    shape = {"kind": "urgent_disclosure", "grounds": ["crime"]}
                else:
                    shape = {"kind": "worrying_information", "details": {"occurred": "today"}}
                services.submit_report(reporter=people["worker"], narrative=NARRATIVE, **shape)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reporter, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kinds = TimelineEvent.objects.order_by("case_id", "id").values_list("case_id", "kind")
    by_case: dict[int, list[str]] = {}
    for case_id, kind in kinds:
        by_case.setdefault(case_id, []).append(kind)
    assert len(by_case) == 20
    starts = [
        tuple(kinds[:2]) if "alert_raised" in kinds else tuple(kinds) for kinds in by_case.values()
    ]
    assert sorted(starts) == sorted(
        [(TimelineKind.REPORTED, TimelineKind.ALERT_RAISED)] * 10 + [(TimelineKind.REPORTED,)] * 10
    )
    assert verify().startswith("OK:")


def test_news_told_twice_is_recorded_once_and_the_chain_still_verifies(busy_case):
    first = services.record_event(
        case_id=busy_case.id, kind=TimelineKind.PAGE_SENT, data={"n": 1}, dedupe_key="page:9:x"
    )
    again = services.record_event(
        case_id=busy_case.id, kind=TimelineKind.PAGE_SENT, data={"n": 2}, dedupe_key="page:9:x"
    )
    assert first is not None and again is None
    stored = TimelineEvent.objects.get(dedupe_key="page:9:x")
    assert (stored.id, stored.data, stored.hash) == (first.id, {"n": 1}, first.hash)
    assert verify().startswith("OK:")


def test_news_about_a_case_that_does_not_exist_records_nothing(busy_case):
    rows = TimelineEvent.objects.count()
    assert services.record_event(case_id=busy_case.id + 1000, kind=TimelineKind.PAGE_SENT) is None
    assert TimelineEvent.objects.count() == rows


def test_a_row_returned_is_the_row_stored(busy_case, people):
    """What append_timeline_event hands back (built, not read back) matches the database."""
    event = services.add_event(
        case=busy_case,
        kind=TimelineKind.NOTE_ADDED,
        actor=people["manager"],
        data={"recipient_ids": (1, 2)},
    )
    stored = TimelineEvent.objects.get(pk=event.pk)
    fields = ("case_id", "kind", "actor_id", "at", "data", "dedupe_key", "prev_hash", "hash")
    assert [getattr(event, f) for f in fields] == [getattr(stored, f) for f in fields]


@pytest.mark.django_db(transaction=True)
def test_one_event_is_six_statements_and_a_repeat_one(make_case, django_assert_num_queries):
    """Whether it was told (read without the lock), then in one transaction: the chain's lock,
    its last hash, the insert. A repeat stops at the first read."""
    case = make_case("crime")
    with django_assert_num_queries(6):
        services.record_event(case_id=case.id, kind=TimelineKind.PAGE_SENT, dedupe_key="k")
    with django_assert_num_queries(1):
        services.record_event(case_id=case.id, kind=TimelineKind.PAGE_SENT, dedupe_key="k")


def test_an_export_of_very_many_cases_is_logged_in_rounds_under_one_lock(
    people, monkeypatch, django_assert_max_num_queries
):
    """An export of every case of a large organisation: PostgreSQL takes at most 65,535
    parameters in a statement and holds a few thousand locks in all, so the cases' last hashes
    are looked up ACCESS_BATCH at a time and, above WHOLE_KIND_ABOVE cases, the whole access
    log is locked at once instead of each case's chain (here at a small scale: at full scale,
    65,600 cases, this takes minutes)."""
    from incidents.models import Case

    monkeypatch.setattr(audit, "ACCESS_BATCH", 4)
    monkeypatch.setattr(audit, "WHOLE_KIND_ABOVE", 6)
    Case.objects.bulk_create(
        [
            Case(reference=f"C-2019-{n:05d}", kind="breach", reporter=people["worker"])
            for n in range(10)
        ]
    )
    cases = list(Case.objects.order_by("id"))
    with django_assert_max_num_queries(2 + 1 + 3 * 2):  # savepoint, the lock, 3 rounds of 2
        access.log_many(user=people["dpo"], cases=cases, action="export", basis="dpo", request=None)
    with connection.cursor() as cursor:  # still in the test's transaction: its locks are held
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 1  # the whole kind, not a lock a case
    access.log_many(user=people["dpo"], cases=cases[:2], action="view", basis="dpo", request=None)
    access.log_many(user=people["dpo"], cases=cases, action="export", basis="dpo", request=None)
    assert AccessLogEntry.objects.count() == 10 + 2 + 10
    assert verify().startswith("OK:")


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_chains_last_row_is_one_index_probe(busy_case, make_case, people):
    """A writer finds its chain's last row through the (case, id) index, not by walking the
    primary key backwards past every other case's rows, which is what PostgreSQL chose with
    a case index alone: for a case with no rows yet, the whole table, under the chain lock."""
    new_case, other = make_case("crime"), make_case("crime")
    with connection.cursor() as cursor:
        # Other cases' rows, as after a few months' work (the test's transaction drops them).
        cursor.execute(
            "INSERT INTO incidents_timelineevent (case_id, kind, at, data, prev_hash, hash) "
            "SELECT %s, 'note', now(), '{}', 'x', 'x' FROM generate_series(1, 5000)",
            [other.id],
        )
        cursor.execute(
            "INSERT INTO incidents_accesslogentry "
            "(case_id, user_id, action, basis, path, at, prev_hash, hash) "
            "SELECT %s, %s, 'view', 'owner', '', now(), 'x', 'x' FROM generate_series(1, 5000)",
            [other.id, people["manager"].id],
        )
        cursor.execute("ANALYZE incidents_timelineevent")
        cursor.execute("ANALYZE incidents_accesslogentry")
    for case in (busy_case, new_case):
        many = (
            TimelineEvent.objects.filter(case_id=case.id)
            .order_by("-id")
            .values_list("hash", flat=True)[:1]
            .explain()
        )
        one = _plan(audit.TIMELINE_HEAD, [case.id])
        access_log = (
            AccessLogEntry.objects.filter(case_id=case.id)
            .order_by("-id")
            .values_list("hash", flat=True)[:1]
            .explain()
        )
        assert "incidents_timeline_chain" in many, many
        assert "incidents_timeline_chain" in one, one
        assert "incidents_access_chain" in access_log, access_log


@pytest.mark.django_db(transaction=True)
def test_a_new_cases_first_entries_go_in_with_it_or_not_at_all(people, rota):
    """A concern's case, report, clocks and first timeline entries are one statement with no
    transaction around it: a failure in any row leaves none of them, not a case without its
    chain's start (or a chain starting at GENESIS twice)."""
    from django.db import IntegrityError
    from django.utils import timezone

    from incidents.models import Case, CaseClock, Report

    token = "c0ffee00-0000-4000-8000-000000000001"
    first = services.submit_report(
        reporter=people["worker"],
        kind="concern_colleague",
        narrative="Left notes on a bus.",
        details={"colleague": "B."},
        client_token=token,
    )
    entry = first.timeline.get()
    assert entry.prev_hash == audit.GENESIS
    assert services.record_event(case_id=first.id, kind="note_added", dedupe_key="told once")
    # Another case's rows, the last of them refused (its entry's key is taken): none of the
    # statement's rows are left.
    again = Case(kind=first.kind, reporter=people["worker"])
    services._number(again, year=timezone.now().year)
    rows = audit.first_entries(
        case=again,
        events=[
            {
                "kind": "reported",
                "actor_id": None,
                "at": timezone.now(),
                "data": {},
                "dedupe_key": "told once",
            }
        ],
    )
    with pytest.raises(IntegrityError):
        insert_together(
            [again],
            [Report(case=again, narrative="x")],
            services._new_case_clocks(case=again, now=timezone.now()),
            rows,
        )
    assert not Case.objects.filter(pk=again.pk).exists()
    assert not Report.objects.filter(case_id=again.pk).exists()
    assert not CaseClock.objects.filter(case_id=again.pk).exists()
    assert not TimelineEvent.objects.filter(case_id=again.pk).exists()
    # A resubmission of the first is refused by its client_token, and submit_report gives the
    # first case back.
    assert (
        services.submit_report(
            reporter=people["worker"],
            kind="concern_colleague",
            narrative="Left notes on a bus.",
            details={"colleague": "B."},
            client_token=token,
        )
        == first
    )
    assert verify().startswith("OK:")
