"""The report submission path makes a small, fixed number of database round trips, whatever
the kind: each one costs the phone waiting for its answer, and under load they are most of a
submission's time (README, "Benchmarks"). A change to these numbers says why in its commit."""

import uuid

import pytest

from incidents.models import Case, TimelineKind
from tests.conftest import api_client_for

REPORTS_URL = "/api/v1/reports/"

CONCERN = {"kind": "concern_colleague", "narrative": "Left notes on a bus.", "colleague": "B."}
URGENT = {"kind": "urgent_disclosure", "narrative": "Told me in confidence.", "grounds": ["crime"]}

# Both: the token (with its person), then the year's reference number with the case's id
# (both from sequences, in one query), then the case, its report, its clocks and its
# timeline's first entries in one statement (config.rows). A resubmission is found by the
# case's unique client_token refusing it, not by a query before every report.
COMMON = 3
# A concern pages nobody and goes to the manager on call now: one digest of the default rota's
# rows, while the rota's resolution for that digest is reused (tests/incidents/test_first_owner.py).
# Its one statement needs no transaction around it.
CONCERN_QUERIES = COMMON + 1
# An urgent report raises an alert, in a transaction with the case's rows: the default rota,
# the escalation policy, the digest of the rota's rows (its resolution, copied onto the alert,
# is reused as for a concern), the alert; in a test, whose own transaction holds the
# report's, a savepoint and its release too.
URGENT_QUERIES = COMMON + 4 + 2


def submit(client, body) -> dict:
    response = client.post(REPORTS_URL, {**body, "client_token": str(uuid.uuid4())}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize(
    ("body", "queries"),
    [
        # Committed as in production (no test transaction around it): a concern's statement
        # stands alone.
        pytest.param(CONCERN, CONCERN_QUERIES, marks=pytest.mark.django_db(transaction=True)),
        # In the test's transaction, so that its alert's step, run in-process on commit in
        # tests, is not counted with it.
        (URGENT, URGENT_QUERIES),
    ],
)
def test_a_report_over_the_api_takes_a_fixed_number_of_queries(
    people, rota, django_assert_num_queries, body, queries
):
    client = api_client_for(people["worker"])
    submit(client, body)  # the year's reference sequence exists from here on
    with django_assert_num_queries(queries):
        submit(client, body)
    with django_assert_num_queries(queries):
        reference = submit(client, body)["reference"]
    case = Case.objects.get(reference=reference)
    assert case.report.narrative == body["narrative"]
    assert case.clocks.count() == 2
    expected = [TimelineKind.REPORTED]
    if body is URGENT:
        expected.append(TimelineKind.ALERT_RAISED)
    else:
        assert case.owner == people["manager"]
    assert list(case.timeline.order_by("id").values_list("kind", flat=True)) == expected


@pytest.fixture
def redis_counters(settings):
    """Rate-limit counters in Redis, as in production, under a prefix of this test's own."""
    prefix = f"test-{uuid.uuid4()}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.CELERY_BROKER_URL,
            "KEY_PREFIX": prefix,
        }
    }
    from django.core.cache import caches

    client = caches["default"]._cache.get_client(write=True)
    yield client, prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_the_rate_limits_cost_one_redis_round_trip(people, rota, settings, redis_counters):
    """Every counter a submission passes (the report and API limits, per person and per
    address) is bumped in one pipeline: one request written to Redis, one answer read."""
    from redis.connection import Connection

    redis_client, prefix = redis_counters
    client = api_client_for(people["worker"])
    submit(client, CONCERN)  # the pool's connection is made (and greets Redis) here
    sent = []
    real_send = Connection.send_packed_command

    def send(self, command, *args, **kwargs):  # the real send, counted
        sent.append(command)
        return real_send(self, command, *args, **kwargs)

    Connection.send_packed_command = send
    try:
        submit(client, CONCERN)
    finally:
        Connection.send_packed_command = real_send
    assert len(sent) == 1
    keys = list(redis_client.scan_iter(f"{prefix}:*"))
    assert len(keys) == 4
    window = settings.RATE_LIMIT_WINDOW_SECONDS
    assert all(0 < redis_client.ttl(key) <= window + 5 for key in keys)


def test_a_person_past_the_limit_is_held_with_redis_counters(
    people, rota, settings, redis_counters
):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "report": {**settings.RATE_LIMITS["report"], "per_person": 2},
    }
    client = api_client_for(people["worker"])
    submit(client, CONCERN)
    submit(client, CONCERN)
    held = client.post(REPORTS_URL, CONCERN, format="json")
    assert held.status_code == 429
    assert held.json()["error"]["code"] == "rate_limited"
    assert 0 < int(held["Retry-After"]) <= settings.RATE_LIMIT_WINDOW_SECONDS
    assert Case.objects.count() == 2
    # Someone else is not held by the first person's count.
    submit(api_client_for(people["other_worker"]), CONCERN)


def test_the_rate_limits_reuse_one_redis_client(people, rota, redis_counters):
    """The counters' client is made once for the cache's connection pool, not per request."""
    from redis import Redis

    client = api_client_for(people["worker"])
    submit(client, CONCERN)
    made = []
    real_init = Redis.__init__

    def init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    Redis.__init__ = init
    try:
        submit(client, CONCERN)
        submit(client, CONCERN)
    finally:
        Redis.__init__ = real_init
    assert made == []
