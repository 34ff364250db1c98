"""The hash chains that make the case timeline and the access log tamper-evident.

Each case has two chains: its timeline events and its access-log rows, each in id order. A row
stores the hash of the row before it (`prev_hash`, GENESIS for the first) and its own `hash`:
sha256 of the previous hash followed by the canonical JSON of the row's fields, timestamp
included (ISO 8601, UTC, microseconds). Changing, deleting or reordering a row breaks the
link at that row or the next; `manage.py verify_audit` walks the chains and names the break.

Rows are appended only here. The writer takes a transaction-scoped advisory lock on that
case's chain (PostgreSQL), reads the last hash and inserts in the same transaction, so two
writers on one case queue and the chain never forks; writers on different cases never wait
for each other. PostgreSQL itself refuses UPDATE and DELETE on both tables (migration
0005's trigger)."""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from .models import AccessLogEntry, Case, TimelineEvent

GENESIS = "0" * 64

# The first key of pg_advisory_xact_lock(int, int): which chain of the case is locked.
TIMELINE_CHAIN = 1
ACCESS_LOG_CHAIN = 2


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, payload: dict) -> str:
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def timeline_payload(
    *, case_id, kind, actor_id, at: datetime, data, dedupe_key, **_ignored
) -> dict:
    return {
        "case": case_id,
        "kind": kind,
        "actor": actor_id,
        "at": _iso(at),
        "data": data,
        "dedupe_key": dedupe_key,
    }


def access_payload(
    *, case_id, user_id, action, basis, path, ip_address, at: datetime, **_ignored
) -> dict:
    return {
        "case": case_id,
        "user": user_id,
        "action": action,
        "basis": basis,
        "path": path,
        "ip": ip_address,
        "at": _iso(at),
    }


# Above this many cases, a writer takes a whole kind of chain (every case's access log, say) in
# one lock instead of a lock a case: PostgreSQL's lock table holds a few thousand in all, and
# an export of every case would fill it ("out of shared memory").
WHOLE_KIND_ABOVE = 500


def _lock_chains(chain: int, case_ids: list[int]) -> None:
    """Hold the chains of these cases until the transaction ends, taken in id order so two
    writers of several chains cannot deadlock. Every writer first holds the kind's own lock
    (key 0: no case has that id) shared, so a writer of very many cases can take that one
    lock alone, exclusively, and have every chain of the kind to itself. SQLite has one
    writer at a time anyway."""
    if connection.vendor != "postgresql" or not case_ids:
        return
    ids = sorted(set(case_ids))
    with connection.cursor() as cursor:
        if len(ids) > WHOLE_KIND_ABOVE:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [chain])
            return
        cursor.execute(
            "SELECT CASE WHEN s.id = 0 THEN pg_advisory_xact_lock_shared(%s, 0) "
            "ELSE pg_advisory_xact_lock(%s, s.id::integer) END "
            "FROM (SELECT 0 AS id UNION SELECT unnest(%s::bigint[]) ORDER BY 1) AS s",
            [chain, chain, ids],
        )


# The last hash of a case's timeline, and whether the case exists at all (no row: it does not).
TIMELINE_HEAD = """
SELECT (
    SELECT hash FROM incidents_timelineevent WHERE case_id = c.id ORDER BY id DESC LIMIT 1
) FROM incidents_case AS c WHERE c.id = %s
"""
# A row whose dedupe_key is already on a timeline gives way: nothing is written, no error.
TIMELINE_INSERT = """
INSERT INTO incidents_timelineevent
    (case_id, kind, actor_id, at, data, dedupe_key, prev_hash, hash)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING id
"""


def lock_timeline(case_id: int) -> None:
    """Hold the case's timeline chain until the transaction ends (before a change that must
    not wait on a timeline writer: see retention.anonymise_case)."""
    _lock_chains(TIMELINE_CHAIN, [case_id])


def append_timeline_event(
    *, case_id: int, kind: str, actor_id: int | None, at: datetime, data: dict, dedupe_key
) -> TimelineEvent | None:
    """The one way a single timeline row is written, in three statements under the chain's
    lock: the lock, the last hash (which also tells that the case exists), the insert. News
    already recorded under `dedupe_key` is not recorded again: the insert gives way to the
    key's unique index, so two writers telling the same news at once (a worker and a status
    callback) record it once and neither fails. Returns the new row, or None when the case
    does not exist or the news was told already."""
    data = _as_stored(data)
    kind = str(kind)
    if dedupe_key and _told(dedupe_key):
        return None  # the usual repeat, found without a transaction or the lock
    with transaction.atomic():
        _lock_chains(TIMELINE_CHAIN, [case_id])
        with connection.cursor() as cursor:
            cursor.execute(TIMELINE_HEAD, [case_id])
            head = cursor.fetchone()
            if head is None:
                return None
            event = _linked(
                TimelineEvent(
                    case_id=case_id,
                    kind=kind,
                    actor_id=actor_id,
                    at=at,
                    data=data,
                    dedupe_key=dedupe_key,
                ),
                head[0] or GENESIS,
            )
            cursor.execute(
                TIMELINE_INSERT,
                [
                    case_id,
                    kind,
                    actor_id,
                    connection.ops.adapt_datetimefield_value(at),
                    _DATA_FIELD.get_db_prep_value(data, connection),
                    dedupe_key,
                    event.prev_hash,
                    event.hash,
                ],
            )
            inserted = cursor.fetchone()
    if inserted is None:
        return None
    event.id = inserted[0]
    event._state.adding, event._state.db = False, connection.alias
    return event


_DATA_FIELD = TimelineEvent._meta.get_field("data")


def _as_stored(data: dict) -> dict:
    """What the database will give back: JSON round-trips tuples to lists and so on."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _linked(event: TimelineEvent, prev: str) -> TimelineEvent:
    """`event` put on the end of a chain whose last hash is `prev`."""
    event.prev_hash = prev
    event.hash = chain_hash(prev, timeline_payload(**_fields(event)))
    return event


def _told(dedupe_key: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM incidents_timelineevent WHERE dedupe_key = %s", [dedupe_key])
        return cursor.fetchone() is not None


def first_entries(*, case: Case, events: list[dict]) -> list[TimelineEvent]:
    """A new case's first timeline rows, linked from GENESIS, for the caller to insert with
    the case itself (incidents.services._open_case: one statement, or one transaction). Until
    that commits no other writer can see the case, so its chain is empty and nobody else's to
    take: no lock, no read of the head. Each of `events` is as for append_timeline_events."""
    rows, prev = [], GENESIS
    for spec in events:
        event = _linked(_event(case, spec), prev)
        prev = event.hash
        rows.append(event)
    return rows


def append_timeline_events(*, case: Case, events: list[dict]) -> list[TimelineEvent]:
    """Several rows on the end of one case's chain, in the order given, in one insert: the
    chain is locked and its last hash read once, whatever the number of rows. Each of
    `events` holds kind, actor_id, at, data and optionally dedupe_key."""
    if not events:
        return []
    with transaction.atomic():
        _lock_chains(TIMELINE_CHAIN, [case.id])
        prev = (
            TimelineEvent.objects.filter(case_id=case.id)
            .order_by("-id")
            .values_list("hash", flat=True)
            .first()
        ) or GENESIS
        rows = []
        for spec in events:
            event = _linked(_event(case, spec), prev)
            prev = event.hash
            rows.append(event)
        # Ids are given in list order, and id order is chain order.
        TimelineEvent.objects.bulk_create(rows)
    return rows


def _event(case: Case, spec: dict) -> TimelineEvent:
    return TimelineEvent(
        case=case,
        kind=str(spec["kind"]),
        actor_id=spec["actor_id"],
        at=spec["at"],
        data=_as_stored(spec["data"]),
        dedupe_key=spec.get("dedupe_key"),
    )


# Cases one round of access-log rows covers at most: their last hashes are looked up by id, and
# PostgreSQL takes at most 65,535 parameters in a statement (bound by the server, settings.py).
ACCESS_BATCH = 5000


def append_access_entries(
    *, cases: list[Case], user_id: int, action: str, basis: str, path: str, ip_address
) -> list[AccessLogEntry]:
    """The one way access-log rows are written: one row per case, each on the end of its
    case's chain, in one insert per ACCESS_BATCH cases (an export of every case is one call),
    the chains locked together first."""
    if not cases:
        return []
    ids = [case.id for case in cases]
    # As the database will give it back (IPv6 in short form, blank as NULL).
    ip_address = AccessLogEntry._meta.get_field("ip_address").get_prep_value(ip_address) or None
    entries = []
    with transaction.atomic():
        _lock_chains(ACCESS_LOG_CHAIN, ids)
        now = timezone.now()
        for start in range(0, len(ids), ACCESS_BATCH):
            batch = ids[start : start + ACCESS_BATCH]
            last = dict(
                Case.objects.filter(id__in=batch)
                .annotate(
                    last_hash=Subquery(
                        AccessLogEntry.objects.filter(case_id=OuterRef("pk"))
                        .order_by("-id")
                        .values("hash")[:1]
                    )
                )
                .values_list("id", "last_hash")
            )
            made = []
            for case_id in batch:
                prev = last.get(case_id) or GENESIS
                entry = AccessLogEntry(
                    case_id=case_id,
                    user_id=user_id,
                    action=str(action),
                    basis=str(basis),
                    path=path,
                    ip_address=ip_address,
                    at=now,
                    prev_hash=prev,
                )
                entry.hash = chain_hash(prev, access_payload(**_fields(entry)))
                last[case_id] = entry.hash
                made.append(entry)
            AccessLogEntry.objects.bulk_create(made)
            entries += made
    return entries


def _fields(row) -> dict:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


@dataclass(frozen=True)
class BrokenLink:
    table: str
    case_id: int
    row_id: int
    what: str
    expected: str
    found: str


CHAINS = (
    (TimelineEvent, timeline_payload),
    (AccessLogEntry, access_payload),
)


def _walk(model, payload) -> Iterator[BrokenLink | int]:
    """Yields each row's id as it checks out, or the first broken link of the table."""
    table = model._meta.db_table
    rows = (
        model.objects.order_by("case_id", "id")
        .values(*[f.attname for f in model._meta.concrete_fields])
        .iterator(chunk_size=2000)
    )
    case_id, prev = None, GENESIS
    for row in rows:
        if row["case_id"] != case_id:
            case_id, prev = row["case_id"], GENESIS
        if row["prev_hash"] != prev:
            what = "does not follow the row before it (a row was removed, added or moved)"
            yield BrokenLink(table, case_id, row["id"], what, prev, row["prev_hash"])
            return
        expected = chain_hash(prev, payload(**row))
        if row["hash"] != expected:
            what = "was changed after it was written"
            yield BrokenLink(table, case_id, row["id"], what, expected, row["hash"])
            return
        prev = row["hash"]
        yield row["id"]


def verify_chains() -> tuple[int, list[BrokenLink]]:
    """How many rows check out, and the first broken link of each table (empty: all sound)."""
    checked, broken = 0, []
    for model, payload in CHAINS:
        for result in _walk(model, payload):
            if isinstance(result, BrokenLink):
                broken.append(result)
            else:
                checked += 1
    return checked, broken
