"""The JSON API: tokens, sending a report, reading its status, the schema. Every error is
structured ({"error": {"code", "message", "fields"}}), never a 500 or an HTML page."""

import threading
import uuid
from datetime import timedelta

import pytest
import yaml
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Case, CaseNote, ReportKind, TimelineKind
from incidents.services import submit_report
from oncall.models import Alert
from staff.models import ApiToken
from staff.services import hash_api_key, issue_api_token

TOKEN_URL = "/api/v1/auth/token/"
REPORTS_URL = "/api/v1/reports/"
PASSWORD = "a-long-test-password"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def worker_api(people, rota):
    client = APIClient()
    _token, key = issue_api_token(user=people["worker"], name="test")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def structured_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if code is not None:
        assert error["code"] == code
    return error


def urgent_report(**overrides):
    body = {
        "kind": ReportKind.URGENT_DISCLOSURE,
        "narrative": "He said he would hurt her tonight.",
        "grounds": ["imminent_danger"],
        "service_user_ref": "SU-1",
    }
    body.update(overrides)
    return body


class TestToken:
    def test_good_credentials_give_a_token(self, api, people):
        response = api.post(
            TOKEN_URL, {"email": "worker@example.org", "password": PASSWORD}, format="json"
        )
        assert response.status_code == 200
        key = response.json()["token"]
        stored = ApiToken.objects.get(user=people["worker"])
        assert stored.key_hash == hash_api_key(key) and key not in stored.key_hash
        assert stored.expires_at > timezone.now() + timedelta(days=29)
        # Each sign-in is its own token, listed and revocable on its own.
        again = api.post(
            TOKEN_URL, {"email": "Worker@Example.org", "password": PASSWORD}, format="json"
        )
        assert again.json()["token"] != key
        assert ApiToken.objects.filter(user=people["worker"]).count() == 2

    def test_the_token_opens_the_api(self, api, people, rota):
        key = api.post(
            TOKEN_URL, {"email": "worker@example.org", "password": PASSWORD}, format="json"
        ).json()["token"]
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.post(REPORTS_URL, urgent_report(), format="json").status_code == 201

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "worker@example.org", "password": "wrong"},
            {"email": "nobody@example.org", "password": PASSWORD},
        ],
    )
    def test_bad_credentials(self, api, people, body):
        response = api.post(TOKEN_URL, body, format="json")
        structured_error(response, 401, "invalid_credentials")
        assert ApiToken.objects.count() == 0

    def test_inactive_person_gets_no_token(self, api, people):
        people["worker"].is_active = False
        people["worker"].save(update_fields=["is_active"])
        response = api.post(
            TOKEN_URL, {"email": "worker@example.org", "password": PASSWORD}, format="json"
        )
        structured_error(response, 401, "invalid_credentials")

    @pytest.mark.parametrize(
        ("body", "missing"),
        [({}, {"email", "password"}), ({"email": "worker@example.org"}, {"password"})],
    )
    def test_missing_fields(self, api, people, body, missing):
        error = structured_error(api.post(TOKEN_URL, body, format="json"), 400, "invalid")
        assert set(error["fields"]) == missing

    def test_bad_json(self, api, db):
        response = api.post(TOKEN_URL, "{not json", content_type="application/json")
        structured_error(response, 400, "parse_error")


class TestCreateReport:
    def test_urgent_report_is_created_and_pages(
        self, worker_api, people, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = worker_api.post(REPORTS_URL, urgent_report(), format="json")
        assert response.status_code == 201
        data = response.json()
        case = Case.objects.get()
        assert data["reference"] == case.reference
        assert data["status"] == "reported"
        assert data["kind"] == "urgent_disclosure"
        assert data["urgent"] is True
        assert "narrative" not in data
        assert case.reporter == people["worker"]
        assert case.report.grounds == ["imminent_danger"]
        assert [m["to"] for m in outbox] == [str(people["manager"].phone)]

    def test_same_client_token_returns_the_same_case(self, worker_api):
        body = urgent_report(client_token=str(uuid.uuid4()))
        first = worker_api.post(REPORTS_URL, body, format="json")
        second = worker_api.post(REPORTS_URL, body, format="json")
        assert first.json()["reference"] == second.json()["reference"]
        assert Case.objects.count() == 1 and Alert.objects.count() == 1

    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            (urgent_report(kind="gossip"), "invalid", "kind"),
            (urgent_report(grounds=[]), "invalid_report", "grounds"),
            (urgent_report(grounds=["nonsense"]), "invalid", "grounds"),
            (urgent_report(narrative="   "), "invalid", "narrative"),
            (urgent_report(service_user_ref="Mrs Jones"), "invalid", "service_user_ref"),
            (urgent_report(client_token="not-a-uuid"), "invalid", "client_token"),
            ({"narrative": "x"}, "invalid", "kind"),
        ],
    )
    def test_invalid_reports_are_refused_with_reasons(self, worker_api, body, code, field):
        error = structured_error(worker_api.post(REPORTS_URL, body, format="json"), 400, code)
        assert field in error["fields"]
        assert Case.objects.count() == 0

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            ('{"kind": "urgent_disclosure", ', "application/json"),
            ("[1, 2, 3]", "application/json"),
            ('"just a string"', "application/json"),
        ],
    )
    def test_malformed_bodies_are_400_not_500(self, worker_api, body, content_type):
        response = worker_api.post(REPORTS_URL, body, content_type=content_type)
        structured_error(response, 400)
        assert Case.objects.count() == 0

    def test_only_json_is_accepted(self, worker_api):
        response = worker_api.post(REPORTS_URL, urgent_report(), format="multipart")
        structured_error(response, 415)
        assert Case.objects.count() == 0

    def test_unauthenticated(self, api, db):
        response = api.post(REPORTS_URL, urgent_report(), format="json")
        structured_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Token"
        assert Case.objects.count() == 0

    def test_bad_token(self, api, db):
        api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
        response = api.post(REPORTS_URL, urgent_report(), format="json")
        structured_error(response, 401, "authentication_failed")


class TestReportDetail:
    @pytest.fixture
    def reference(self, worker_api):
        return worker_api.post(REPORTS_URL, urgent_report(), format="json").json()["reference"]

    def test_reporter_sees_status(self, worker_api, reference):
        response = worker_api.get(f"{REPORTS_URL}{reference}/")
        assert response.status_code == 200
        data = response.json()
        assert data["reference"] == reference and data["status"] == "reported"
        assert data["acknowledged_at"] is None

    @pytest.mark.parametrize("role", ["other_worker", "manager", "safeguarding", "admin"])
    def test_others_get_404(self, api, people, reference, role):
        api.force_authenticate(user=people[role])
        error = structured_error(api.get(f"{REPORTS_URL}{reference}/"), 404, "not_found")
        unknown = api.get(f"{REPORTS_URL}C-2099-9999/")
        assert unknown.json() == {"error": error}

    def test_unauthenticated(self, api, reference):
        structured_error(api.get(f"{REPORTS_URL}{reference}/"), 401, "not_authenticated")


class TestAddInformation:
    """The reporter adds to their report from a phone; a retry on a weak signal, with the same
    client_token, is answered as the first was and adds nothing."""

    MORE = "She rang me again tonight."

    @pytest.fixture
    def case(self, worker_api):
        reference = worker_api.post(REPORTS_URL, urgent_report(), format="json").json()["reference"]
        return Case.objects.get(reference=reference)

    def url(self, reference: str) -> str:
        return f"{REPORTS_URL}{reference}/information/"

    def added(self, case) -> int:
        return CaseNote.objects.filter(case=case, from_reporter=True).count()

    def test_the_same_token_again_is_answered_as_the_first_and_adds_nothing(self, worker_api, case):
        body = {"text": self.MORE, "client_token": str(uuid.uuid4())}
        first = worker_api.post(self.url(case.reference), body, format="json")
        second = worker_api.post(self.url(case.reference), body, format="json")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert first.json()["reference"] == case.reference
        assert self.added(case) == 1
        assert case.timeline.filter(kind=TimelineKind.INFORMATION_ADDED).count() == 1
        assert CaseNote.objects.get(case=case).client_token == uuid.UUID(body["client_token"])

    def test_another_token_is_another_addition(self, worker_api, case):
        for _each in range(2):
            body = {"text": self.MORE, "client_token": str(uuid.uuid4())}
            assert worker_api.post(self.url(case.reference), body, format="json").status_code == 201
        assert self.added(case) == 2

    @pytest.mark.parametrize("token", [{}, {"client_token": None}], ids=["left out", "null"])
    def test_without_a_token_it_is_still_taken(self, worker_api, case, token):
        body = {"text": self.MORE, **token}
        assert worker_api.post(self.url(case.reference), body, format="json").status_code == 201
        assert CaseNote.objects.get(case=case).client_token is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"text": MORE, "client_token": "not-a-uuid"}, "client_token"),
            ({"text": MORE, "client_token": 12345}, "client_token"),
            ({"text": "   "}, "text"),
            ({"text": "x" * 10001}, "text"),
            ({}, "text"),
        ],
        ids=["not a uuid", "a number", "blank", "too long", "no text"],
    )
    def test_bad_input_is_a_structured_400(self, worker_api, case, body, field):
        response = worker_api.post(self.url(case.reference), body, format="json")
        error = structured_error(response, 400, "invalid")
        assert field in error["fields"]
        assert self.added(case) == 0

    def test_a_closed_report_takes_nothing_more_but_a_retry_is_still_answered(
        self, worker_api, make_case, people
    ):
        case = make_case(to="outcome")
        token = str(uuid.uuid4())
        body = {"text": self.MORE, "client_token": token}
        first = worker_api.post(self.url(case.reference), body, format="json")
        services.close_case(case=case, actor=people["manager"])
        retry = worker_api.post(self.url(case.reference), body, format="json")
        assert first.status_code == retry.status_code == 201
        assert retry.json()["reference"] == case.reference
        fresh = {"text": self.MORE, "client_token": str(uuid.uuid4())}
        structured_error(
            worker_api.post(self.url(case.reference), fresh, format="json"),
            409,
            "illegal_transition",
        )
        assert self.added(case) == 1

    @pytest.mark.parametrize(
        "role", ["other_worker", "manager", "manager2", "hr", "dpo", "safeguarding", "admin"]
    )
    def test_nobody_else_may_add(self, api, people, worker_api, case, role):
        """The paged manager who may read the whole case, and everyone else, are told there is
        no such report, whatever they send: the reporter's own token included."""
        token = str(uuid.uuid4())
        worker_api.post(
            self.url(case.reference), {"text": self.MORE, "client_token": token}, format="json"
        )
        api.force_authenticate(user=people[role])
        for body in ({"text": "Not theirs."}, {"text": self.MORE, "client_token": token}, {}):
            error = structured_error(
                api.post(self.url(case.reference), body, format="json"), 404, "not_found"
            )
            unknown = api.post(self.url("C-2099-9999"), body, format="json")
            assert unknown.json() == {"error": error}
        assert self.added(case) == 1

    def test_unauthenticated(self, api, case):
        response = api.post(self.url(case.reference), {"text": self.MORE}, format="json")
        structured_error(response, 401, "not_authenticated")
        assert self.added(case) == 0

    def test_the_schema_says_so(self, api):
        schema = yaml.safe_load(api.get("/api/schema/").content)
        operation = schema["paths"]["/api/v1/reports/{reference}/information/"]["post"]
        token = schema["components"]["schemas"]["AddInformation"]["properties"]["client_token"]
        assert token["type"] == "string" and token["format"] == "uuid"
        assert "client_token" not in schema["components"]["schemas"]["AddInformation"]["required"]
        assert {"201", "400", "404", "409"} <= set(operation["responses"])


@pytest.mark.django_db(transaction=True)
def test_two_retries_at_the_same_moment_add_it_once(people, rota):
    """A phone's retry arriving while the first is still being saved: each in its own
    connection, at once. Both are answered 201 alike, and it is added once."""
    case = submit_report(
        reporter=people["worker"],
        kind=ReportKind.CONCERN_COLLEAGUE,
        narrative="Read a care plan aloud.",
        details={"colleague": "B. Colleague"},
    )
    _token, key = issue_api_token(user=people["worker"], name="test")
    body = {"text": "She rang me again tonight.", "client_token": str(uuid.uuid4())}
    start = threading.Barrier(2)
    answers = []

    def send():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            start.wait()
            response = client.post(
                f"{REPORTS_URL}{case.reference}/information/", body, format="json"
            )
            answers.append((response.status_code, response.json()))
        except Exception as exc:  # surfaced below
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer[0] for answer in answers] == [201, 201], answers
    assert answers[0][1] == answers[1][1]
    assert CaseNote.objects.filter(case=case, from_reporter=True).count() == 1


def test_schema_lists_the_three_paths(api, db):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/api/v1/auth/token/", "/api/v1/reports/", "/api/v1/reports/{reference}/"} <= set(paths)
    assert "post" in paths["/api/v1/auth/token/"]
    assert "post" in paths["/api/v1/reports/"]
    assert "get" in paths["/api/v1/reports/{reference}/"]


def test_an_unknown_api_address_answers_in_json(api, db):
    response = api.get("/api/v1/auth/tokens/-1/")
    structured_error(response, 404, "not_found")
    page = api.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
