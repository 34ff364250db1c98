"""Shared fixtures. The suite runs against real PostgreSQL and Redis and fails at once, loudly,
if either is missing: a green run on SQLite would prove nothing about production."""

import copy
import json
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import override_settings
from django.utils import translation

from config.celery import app as celery_app
from notifications.providers import outbox as sms_outbox
from staff.models import Role, User


def pytest_sessionstart(session):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(
            f"The suite needs PostgreSQL, but DATABASE_URL gives {engine}. Run `make test`, or "
            "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/concernline.",
            returncode=3,
        )
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.exit(f"The suite needs Redis, but CELERY_BROKER_URL is {broker!r}.", returncode=3)
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis at {broker} is not answering: {exc}", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _plain_http_for_tests():
    """The test client and the live server speak plain HTTP on loopback; passwords hash fast
    (the production hasher costs ~0.5 s a person by design)."""
    override = override_settings(
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        # With DEBUG=1 whitenoise would index every static file for each new test client.
        WHITENOISE_USE_FINDERS=False,
        # The live server serves /static/ itself, from the apps' folders, before any middleware
        # runs, so pages must name files as they are there, not by the hashed names of the
        # production manifest (`make test` still builds that manifest with collectstatic).
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        # The second factor is tested on its own (tests/staff/test_second_factor.py); elsewhere
        # a signed-in test user is taken as verified.
        SECOND_FACTOR_REQUIRED=False,
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture(autouse=True)
def _rate_limits_left_as_found():
    """A test may put other rate limits in place (settings.RATE_LIMITS = ...), which the settings
    fixture undoes; one that changed the rules in place would leave them changed for every test
    after it."""
    rules = settings.RATE_LIMITS
    before = copy.deepcopy(rules)
    yield
    assert rules == before, "RATE_LIMITS changed in place: assign new rules instead"


@pytest.fixture(autouse=True)
def _paging_in_process(request, settings):
    """Unit tests run Celery tasks in-process and send SMS to the in-memory outbox.
    Integration tests (marked) use a real worker, real Redis and the Twilio sandbox."""
    if request.node.get_closest_marker("integration"):
        celery_app.conf.task_always_eager = False
        yield
        return
    settings.SMS_BACKEND = "outbox"
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    sms_outbox.outbox.clear()
    sms_outbox.calls.clear()
    yield
    celery_app.conf.task_always_eager = False
    sms_outbox.outbox.clear()
    sms_outbox.calls.clear()


@pytest.fixture(autouse=True)
def _no_language_left_active():
    """A request leaves its language active on the thread (the locale middlewares activate and
    never deactivate); each test starts and ends in the default language."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Rate-limit counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def outbox():
    return sms_outbox.outbox


def make_person(email: str, role: str = Role.CARE_WORKER, phone: str = "", **fields) -> User:
    return User.objects.create_user(
        email=email,
        password="a-long-test-password",
        full_name=email.split("@")[0].title(),
        role=role,
        phone=phone,
        **fields,
    )


@pytest.fixture
def people(db):
    """One of each role, with phones."""
    return {
        "worker": make_person("worker@example.org", Role.CARE_WORKER, "+447700900201"),
        "other_worker": make_person("other@example.org", Role.CARE_WORKER, "+447700900202"),
        "manager": make_person("manager@example.org", Role.MANAGER, "+447700900101"),
        "manager2": make_person("manager2@example.org", Role.MANAGER, "+447700900102"),
        "hr": make_person("hr@example.org", Role.HR, "+447700900301"),
        "dpo": make_person("dpo@example.org", Role.DPO, "+447700900302"),
        "safeguarding": make_person(
            "safeguarding@example.org", Role.SAFEGUARDING_LEAD, "+447700900303"
        ),
        "admin": User.objects.create_superuser(
            email="admin@example.org", password="a-long-test-password", full_name="Admin"
        ),
    }


@pytest.fixture
def rota(people):
    """The default rota: one weekly layer, all hours, with `manager` on call this week (since
    Monday 09:00) and `manager2` next."""
    from datetime import time, timedelta

    from django.utils import timezone

    from oncall.models import LayerMember, Rota, RotaLayer

    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    if timezone.localtime().time() < time(9, 0) and today.weekday() == 0:
        monday -= timedelta(days=7)
    rota = Rota.objects.create(name="Default", is_default=True)
    layer = RotaLayer.objects.create(
        rota=rota, name="Weekly", start_date=monday, handoff_time=time(9, 0), handoff_every=7
    )
    LayerMember.objects.create(layer=layer, person=people["manager"], position=0)
    LayerMember.objects.create(layer=layer, person=people["manager2"], position=1)
    return rota


# Set by the test harness for itself; never passed on to the processes it starts.
HARNESS_ONLY_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def subprocess_environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HARNESS_ONLY_ENV}
    env.update(overrides)
    return env


def setting_in_subprocess(expression: str, **env: str):
    """A setting's value (`expression` over `settings`, as JSON) in a fresh interpreter with
    `env`: how config/settings.py reads the environment, unaffected by this test run's own."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({expression}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_environment(DJANGO_SETTINGS_MODULE="config.settings", **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def database_url_for_subprocess() -> str:
    """The URL of the database this test run is using (the test database), for a worker."""
    s = connection.settings_dict
    auth = s["USER"] or ""
    if s["PASSWORD"]:
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def api_client_for(user: User):
    """An API client signed in with a token of `user`'s, as a phone app would be."""
    from rest_framework.test import APIClient

    from staff.services import issue_api_token

    client = APIClient()
    _token, key = issue_api_token(user=user, name="test")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@contextmanager
def refused(table: str, when: str):
    """While open, PostgreSQL refuses to insert a row of `table` for which the SQL condition
    `when` holds (over NEW): a real database error in the middle of a transaction, as a value
    too long for its column or a full disk would give, with no mock of our own code."""
    name = f"test_refuse_{table}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN ({when}) EXECUTE FUNCTION {name}()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER {name} ON {table}")
            cursor.execute(f"DROP FUNCTION {name}()")
