"""Each kind of report asks only its own questions, on the page and in the API."""

import re
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from incidents.models import Case, ReportKind
from incidents.services import ReportInvalid, submit_report
from staff.services import issue_api_token

# Each kind's own answers, and a question from another kind it must not show.
KINDS = {
    ReportKind.CONCERN_COLLEAGUE: (
        {"colleague": "B. Colleague", "occurred": "Monday lunch"},
        ["requester", "grounds", "how_known", "service_user_ref"],
    ),
    ReportKind.WORRYING_INFORMATION: ({"occurred": "Yesterday"}, ["colleague", "grounds"]),
    ReportKind.DISCLOSURE_REQUEST: (
        {"requester": "A neighbour", "purpose": "To check on her", "consent": "refused"},
        ["colleague", "grounds", "information"],
    ),
    ReportKind.URGENT_DISCLOSURE: ({}, ["colleague", "consent", "how_known"]),
    ReportKind.INAPPROPRIATE_BREACH: (
        {
            "how_known": "self",
            "intent": "accidental",
            "information": "A care plan",
            "personal_data": "yes",
        },
        ["colleague", "grounds", "consent", "representative_consulted"],
    ),
}


def field_names(body):
    form = body[body.index("<form", body.index("<main>")) :]
    return set(re.findall(r'name="([a-z_]+)"', form)) - {"csrfmiddlewaretoken"}


class TestPage:
    def test_step_one_chooses_the_kind_by_get(self, client, people):
        client.force_login(people["worker"])
        body = client.get("/report/").content.decode()
        assert 'method="get"' in body and field_names(body) == {"kind"}
        assert body.index("999 or 112") < body.index('name="kind"')

    @pytest.mark.parametrize("kind", list(KINDS))
    def test_step_two_shows_only_the_kinds_questions(self, client, people, kind):
        client.force_login(people["worker"])
        body = client.get(f"/report/?kind={kind}").content.decode()
        names = field_names(body)
        own, foreign = KINDS[kind]
        assert set(own) <= names and "narrative" in names
        assert not set(foreign) & names
        assert f'name="kind" value="{kind}"' in body
        assert body.index("999 or 112") < body.index('name="narrative"')

    def test_disclosure_request_shows_the_advice_and_offers_to_page(self, client, people):
        client.force_login(people["worker"])
        body = client.get("/report/?kind=disclosure_request").content.decode()
        assert "you need permission from the person concerned" in body
        assert 'name="urgent"' in body

    @pytest.mark.parametrize("kind", list(KINDS))
    def test_each_kind_is_reported_from_the_page(
        self, client, people, rota, kind, django_capture_on_commit_callbacks
    ):
        client.force_login(people["worker"])
        own, _foreign = KINDS[kind]
        data = {
            "kind": kind,
            "narrative": "What happened, briefly.",
            "client_token": str(uuid.uuid4()),
            **own,
        }
        if kind == ReportKind.URGENT_DISCLOSURE:
            data["grounds"] = ["crime"]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/report/", data)
        assert response.status_code == 302, response.content.decode()[:2000]
        case = Case.objects.get()
        assert case.report.details == own
        assert case.personal_data_breach == (kind == ReportKind.INAPPROPRIATE_BREACH)

    def test_missing_answer_is_shown_by_its_question(self, client, people):
        client.force_login(people["worker"])
        response = client.post(
            "/report/",
            {"kind": "disclosure_request", "narrative": "x", "requester": "A neighbour"},
        )
        body = response.content.decode()
        assert response.status_code == 200
        assert re.search(r'id="id_purpose_error">Answer this question', body)
        assert re.search(r'id="id_consent_error">Answer this question', body)
        assert Case.objects.count() == 0


class TestService:
    def test_answers_for_another_kind_are_refused(self, people):
        with pytest.raises(ReportInvalid) as caught:
            submit_report(
                reporter=people["worker"],
                kind=ReportKind.CONCERN_COLLEAGUE,
                narrative="x",
                details={"colleague": "B", "consent": "given"},
            )
        assert set(caught.value.extra) == {"consent"}

    def test_choices_are_checked(self, people):
        with pytest.raises(ReportInvalid) as caught:
            submit_report(
                reporter=people["worker"],
                kind=ReportKind.INAPPROPRIATE_BREACH,
                narrative="x",
                details={
                    "how_known": "rumour",
                    "intent": "accidental",
                    "information": "x",
                    "personal_data": "no",
                },
            )
        assert set(caught.value.extra) == {"how_known"}


class TestAPI:
    @pytest.fixture
    def api(self, people):
        api = APIClient()
        _token, key = issue_api_token(user=people["worker"], name="test")
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return api

    @pytest.mark.parametrize("kind", list(KINDS))
    def test_each_kind(self, api, rota, kind):
        own, _foreign = KINDS[kind]
        body = {"kind": kind, "narrative": "What happened.", **own}
        if kind == ReportKind.URGENT_DISCLOSURE:
            body["grounds"] = ["crime"]
        response = api.post("/api/v1/reports/", body, format="json")
        assert response.status_code == 201, response.json()
        assert Case.objects.get(reference=response.json()["reference"]).report.details == own

    def test_missing_answers_are_structured_errors(self, api, rota):
        response = api.post(
            "/api/v1/reports/",
            {"kind": "inappropriate_breach", "narrative": "x", "how_known": "seen"},
            format="json",
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_report"
        assert {"intent", "information", "personal_data"} <= set(error["fields"])

    def test_reporter_adds_information_and_sees_only_their_own(
        self, api, people, rota, client, django_capture_on_commit_callbacks
    ):
        from incidents import services

        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/v1/reports/",
                {"kind": "urgent_disclosure", "narrative": "x", "grounds": ["crime"]},
                format="json",
            )
        reference = response.json()["reference"]
        case = Case.objects.get(reference=reference)
        services.add_note(case=case, actor=people["manager"], text="Reviewer's private note")
        url = reverse("api:report-information", args=[reference])
        assert api.post(url, {"text": "She rang me again."}, format="json").status_code == 201
        client.force_login(people["worker"])
        body = client.get(reverse("incidents:my-report", args=[reference])).content.decode()
        assert "She rang me again." in body
        assert "private note" not in body
