"""The embedded default that `make run` uses (SQLite, the filesystem broker, no DATABASE_URL):
the urgent path and the audit chain work there too, not only on PostgreSQL. The rest of the
suite runs on PostgreSQL, so this runs manage.py in a process of its own."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_environment

ROOT = Path(__file__).resolve().parents[1]

URGENT_PATH = """
from django.db import transaction
from incidents import audit
from incidents.models import TimelineEvent
from incidents.services import record_event, submit_report
from notifications.models import NotificationAttempt
from oncall.models import Alert
from oncall.services import run_alert_step
from staff.models import User

worker = User.objects.filter(role="care_worker").first()
with transaction.atomic():
    case = submit_report(
        reporter=worker, kind="urgent_disclosure", narrative="words", grounds=["crime"]
    )
alert = Alert.objects.get(owner_id=case.id)
assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))
pages = NotificationAttempt.objects.filter(topic__startswith="oncall.page")
assert sorted(pages.values_list("channel", "status")) == [("call", "queued"), ("sms", "queued")]
kinds = list(TimelineEvent.objects.filter(case=case).order_by("id").values_list("kind", flat=True))
assert kinds == ["reported", "alert_raised", "step_started", "page_sent"], kinds
assert record_event(case_id=case.id, kind="page_sent", dedupe_key="told") is not None
assert record_event(case_id=case.id, kind="page_sent", dedupe_key="told") is None
assert record_event(case_id=case.id + 1000, kind="page_sent") is None
concern = submit_report(
    reporter=worker, kind="concern_colleague", narrative="words", details={"colleague": "B."}
)
concern = type(concern).objects.get(pk=concern.pk)
assert concern.report.narrative == "words" and concern.clocks.count() == 2
assert list(concern.timeline.values_list("kind", flat=True)) == ["reported"]
checked, broken = audit.verify_chains()
assert broken == [] and checked >= 6, (checked, broken)
print("embedded default: urgent path OK")

# API sign-in by token: the plain lookup converts SQLite's values as the ORM does.
from staff.models import ApiToken
from staff.selectors import token_by_key_hash
from staff.services import hash_api_key, issue_api_token, use_api_token

manager = User.objects.filter(role="manager").exclude(phone="").first()
token, key = issue_api_token(user=manager, name="phone")
found = token_by_key_hash(hash_api_key(key))
expected = ApiToken.objects.select_related("user").get(pk=token.pk)
for model, a, b in ((ApiToken, found, expected), (User, found.user, expected.user)):
    for field in model._meta.concrete_fields:
        assert getattr(a, field.attname) == getattr(b, field.attname), field
assert use_api_token(key).user == manager

# The lookup's converters are kept on each thread's connection and go with it: the embedded
# server starts a thread, and so a connection, for every request.
import gc
import threading

from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper


def lookup():
    assert token_by_key_hash(hash_api_key(key)) is not None
    connections.close_all()


for _ in range(5):
    thread = threading.Thread(target=lookup)
    thread.start()
    thread.join()
gc.collect()
live = [o for o in gc.get_objects() if isinstance(o, DatabaseWrapper)]
assert len(live) == 1, live  # this thread's own
print("embedded default: token lookup OK")
"""


def test_the_urgent_path_and_the_audit_chain_work_on_the_embedded_default(tmp_path):
    env = subprocess_environment(
        DEBUG="1", VAR_DIR=str(tmp_path), SMS_BACKEND="outbox", DEMO_PASSWORD="a-long-password!"
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return done.stdout

    manage("migrate", "--verbosity", "0")
    manage("seed_demo")
    out = manage("shell", "--command", URGENT_PATH)
    assert "urgent path OK" in out and "token lookup OK" in out
    assert (tmp_path / "concernline.sqlite3").exists()
