"""Rate limits per person and per address: 429 with Retry-After, in plain words."""

import pytest
from freezegun import freeze_time
from rest_framework.test import APIClient

from incidents.models import Case

REPORT = {"kind": "concern_colleague", "narrative": "Left notes on a bus.", "colleague": "B. Staff"}


@pytest.fixture
def tight(settings):
    settings.RATE_LIMITS = {
        "report": {
            "methods": ["POST"],
            "paths": ["/report/", "/api/v1/reports/"],
            "per_person": 2,
            "per_address": 3,
            "window_seconds": 600,
        },
        "api": {
            "methods": ["GET"],
            "paths": ["/api/v1/"],
            "per_person": 100,
            "per_address": 100,
            "window_seconds": 600,
        },
    }


def post_report(client, **extra):
    return client.post("/report/", REPORT, **extra)


class TestReportLimits:
    def test_a_person_is_held_after_their_limit_with_a_plain_answer(
        self, client, people, rota, tight
    ):
        client.force_login(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            assert post_report(client).status_code == 302
            assert post_report(client).status_code == 302
            held = post_report(client)
        assert held.status_code == 429
        assert "Try again in 10 minutes" in held.content.decode()
        assert held["Retry-After"] == "600"
        assert Case.objects.count() == 2

    def test_the_window_passes(self, client, people, rota, tight):
        client.force_login(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            post_report(client)
            post_report(client)
            assert post_report(client).status_code == 429
        with freeze_time("2026-11-30 10:10:01"):
            assert post_report(client).status_code == 302

    def test_one_address_is_held_across_people(self, client, people, rota, tight):
        with freeze_time("2026-11-30 10:00:00"):
            for name in ("worker", "other_worker", "manager"):
                client.force_login(people[name])
                assert post_report(client, REMOTE_ADDR="203.0.113.5").status_code == 302
            client.force_login(people["hr"])
            assert post_report(client, REMOTE_ADDR="203.0.113.5").status_code == 429
            assert post_report(client, REMOTE_ADDR="203.0.113.6").status_code == 302

    def test_reading_pages_is_not_limited_by_the_report_rule(self, client, people, tight):
        client.force_login(people["worker"])
        for _ in range(5):
            assert client.get("/report/").status_code == 200


class TestApiLimits:
    def test_the_api_answers_a_structured_429(self, people, rota, tight):
        from tests.conftest import api_client_for

        api: APIClient = api_client_for(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            assert api.post("/api/v1/reports/", REPORT, format="json").status_code == 201
            assert api.post("/api/v1/reports/", REPORT, format="json").status_code == 201
            held = api.post("/api/v1/reports/", REPORT, format="json")
        assert held.status_code == 429
        assert held.json()["error"]["code"] == "rate_limited"
        assert int(held["Retry-After"]) > 0
