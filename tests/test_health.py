"""/health/: what an outside monitor polls. No login, no case data, 503 when paging is at risk."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oncall.models import Alert
from oncall.services import raise_alert, record_heartbeat

pytestmark = pytest.mark.django_db


def test_healthy_when_the_sweeper_is_fresh_and_nothing_is_overdue(client):
    record_heartbeat(name="sweeper")
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "sweeper", "overdue_alerts"}
    assert body["checks"]["overdue_alerts"] == {"ok": True, "oldest_seconds": 0}


def test_never_swept_is_unhealthy(client):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["sweeper"] == {"ok": False, "age_seconds": None}


def test_a_stale_heartbeat_is_unhealthy_and_asks_the_workers(client, settings):
    settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS = 30
    record_heartbeat(name="sweeper", at=timezone.now() - timedelta(minutes=5))
    response = client.get("/health/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["sweeper"]["ok"] is False and checks["sweeper"]["age_seconds"] >= 300
    assert checks["workers"]["ok"] is False  # no worker runs in a unit test
    assert checks["beat"]["ok"] is False


def test_an_overdue_alert_is_unhealthy_and_says_how_late_without_naming_it(
    client, people, django_capture_on_commit_callbacks
):
    record_heartbeat(name="sweeper")
    alert = raise_alert(
        title="urgent disclosure",
        reference="C-2026-0900",
        link="/x/",
        owner_type="tests.thing",
        owner_id=1,
        rota=None,
    )  # never committed in this test: its step never runs
    Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now() - timedelta(minutes=2))
    response = client.get("/health/")
    assert response.status_code == 503
    overdue = response.json()["checks"]["overdue_alerts"]
    assert overdue["ok"] is False and overdue["oldest_seconds"] >= 110
    assert b"C-2026-0900" not in response.content


def test_only_get(client):
    assert client.post("/health/").status_code == 405
