"""The web pages: sending a report, acknowledging a case, signing in."""

import re
import uuid
from urllib.parse import quote

import pytest
from django.urls import reverse

from incidents.models import Case, CaseStatus, ReportKind, TimelineKind
from incidents.services import submit_report
from notifications.services import handle_inbound_sms
from oncall.models import Alert, AlertState, EscalationPolicy, EscalationStep, StepKind
from staff.models import Role
from tests.conftest import make_person

REPORT_URL = "/report/"
NARRATIVE = "She told me her carer takes her bank card."


@pytest.fixture
def worker_client(client, people, rota):
    client.force_login(people["worker"])
    return client


def urgent_form(**overrides):
    data = {
        "kind": ReportKind.URGENT_DISCLOSURE,
        "grounds": ["abuse_or_harm"],
        "narrative": NARRATIVE,
        "service_user_ref": "su-40411",
        "who_was_told": "Duty social worker",
        "representative_consulted": "no",
        "emergency_services_called": "yes",
        "client_token": str(uuid.uuid4()),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def error_for(body: str, field: str) -> str:
    """The text of the error shown next to `field`, or "" if there is none."""
    match = re.search(rf'<p class="error" id="id_{field}_error">(.*?)</p>', body, re.S)
    return match.group(1).strip() if match else ""


class TestReportPage:
    def test_says_phone_999_first_and_carries_a_client_token(self, worker_client):
        assert reverse("incidents:report") == REPORT_URL
        response = worker_client.get(REPORT_URL)
        assert response.status_code == 200
        body = response.content.decode()
        emergency = body.index("phone 999 or 112")
        form = body.index(f'action="{REPORT_URL}"')
        assert emergency < form
        assert 'href="tel:999"' in body[:form]
        # Step two, the kind's own questions: the emergency line still comes first.
        step_two = f"{REPORT_URL}?kind=urgent_disclosure"
        body = worker_client.get(step_two).content.decode()
        assert body.index("phone 999 or 112") < body.index(f'action="{REPORT_URL}"')
        token = re.search(r'<input type="hidden" name="client_token" value="([^"]+)"', body)
        assert token is not None
        uuid.UUID(token.group(1))  # a real UUID
        # A new one for each page, so two reports are never taken for one.
        again = worker_client.get(step_two).content.decode()
        assert token.group(1) not in again

    def test_anonymous_is_sent_to_sign_in(self, client, db):
        response = client.get(REPORT_URL)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    def test_a_report_sent_after_the_session_ended_says_it_was_not_sent(
        self, client, people, rota, outbox
    ):
        """The session ended while the report was typed (the browser closed, or the working day
        was over): nothing is saved, and the sign-in page says so instead of nothing at all.
        Back to the report page afterwards, whatever page was open: a draft sent from one's own
        report's page must not land on a sign-in page whose `next` is that report (report.js
        would take it for a report received, and drop the draft)."""
        mine = "/my-reports/C-2026-0001/"
        response = client.post(REPORT_URL, urgent_form(), HTTP_REFERER=f"http://testserver{mine}")
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={quote(REPORT_URL)}"
        assert Case.objects.count() == 0 and outbox == []
        sign_in_page = client.get(response["Location"]).content.decode()
        assert "You were signed out, so your report was not sent." in sign_in_page

    def test_urgent_disclosure_opens_a_case_and_pages_on_call(
        self, worker_client, people, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = worker_client.post(REPORT_URL, urgent_form())

        case = Case.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("incidents:my-report", args=[case.reference])
        assert case.reporter == people["worker"]
        assert case.kind == ReportKind.URGENT_DISCLOSURE and case.urgent and case.safeguarding
        assert case.report.narrative == NARRATIVE
        assert case.report.grounds == ["abuse_or_harm"]
        assert case.report.service_user_ref == "SU-40411"
        assert [m["to"] for m in outbox] == [str(people["manager"].phone)]
        assert case.reference in outbox[0]["body"]

        page = worker_client.get(response["Location"])
        assert page.status_code == 200
        assert f"Your reference is {case.reference}" in page.content.decode()

    def test_missing_grounds_is_explained_next_to_the_field(self, worker_client, outbox):
        response = worker_client.post(REPORT_URL, urgent_form(grounds=None))
        assert response.status_code == 200
        body = response.content.decode()
        assert error_for(body, "grounds") == (
            "Tick at least one reason the disclosure could not wait."
        )
        # Inside the grounds fieldset, which points at it for screen readers.
        fieldset = re.search(
            r'<fieldset aria-describedby="id_grounds_error">(.*?)</fieldset>', body, re.S
        )
        assert fieldset is not None and 'id="id_grounds_error"' in fieldset.group(1)
        # What was typed is kept.
        assert NARRATIVE in body
        assert Case.objects.count() == 0 and outbox == []

    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"kind": None}, "kind", "Choose what you are reporting."),
            ({"kind": "gossip"}, "kind", "Select a valid choice."),
            ({"narrative": ""}, "narrative", "Say briefly what happened."),
            ({"narrative": "   "}, "narrative", "Say briefly what happened."),
            ({"grounds": ["nonsense"]}, "grounds", "Select a valid choice."),
        ],
    )
    def test_incomplete_report_is_refused_with_reasons(
        self, worker_client, overrides, field, message
    ):
        response = worker_client.post(REPORT_URL, urgent_form(**overrides))
        assert response.status_code == 200
        assert error_for(response.content.decode(), field).startswith(message)
        assert Case.objects.count() == 0

    @pytest.mark.parametrize("ref", ["Mrs Jones", "SU 40411", "Jones, M."])
    def test_service_user_reference_must_not_be_a_name(self, worker_client, ref):
        response = worker_client.post(REPORT_URL, urgent_form(service_user_ref=ref))
        assert response.status_code == 200
        assert "never a name" in error_for(response.content.decode(), "service_user_ref")
        assert Case.objects.count() == 0

    def test_non_urgent_concern_needs_no_grounds_and_pages_nobody(
        self, worker_client, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = worker_client.post(
                REPORT_URL,
                urgent_form(
                    kind=ReportKind.CONCERN_COLLEAGUE,
                    grounds=None,
                    urgent="on",
                    colleague="A. Colleague",
                ),
            )
        assert response.status_code == 302
        case = Case.objects.get()
        assert not case.urgent and outbox == [] and Alert.objects.count() == 0

    def test_a_refusal_without_field_reasons_is_still_shown(self, worker_client, monkeypatch):
        from config.errors import ConcernlineError
        from incidents import services

        def refuse(**kwargs):
            raise ConcernlineError("Reports are paused for maintenance.")

        monkeypatch.setattr(services, "submit_report", refuse)
        response = worker_client.post(REPORT_URL, urgent_form())
        assert response.status_code == 200
        assert "Reports are paused for maintenance." in response.content.decode()

    def test_same_client_token_twice_opens_one_case(
        self, worker_client, outbox, django_capture_on_commit_callbacks
    ):
        form = urgent_form()
        with django_capture_on_commit_callbacks(execute=True):
            first = worker_client.post(REPORT_URL, form)
        with django_capture_on_commit_callbacks(execute=True):
            second = worker_client.post(REPORT_URL, form)
        assert first.status_code == second.status_code == 302
        assert first["Location"] == second["Location"]
        assert Case.objects.count() == 1 and Alert.objects.count() == 1
        assert len(outbox) == 1

    def test_an_emailed_page_links_to_the_case_not_the_report_page(
        self, worker_client, people, settings, django_capture_on_commit_callbacks
    ):
        """A manager paged by email (their rule, or no phone) follows its link, signs in and
        lands on the case: not on "Report a concern", hunting for it at 3 a.m."""
        from django.core import mail

        from notifications.models import ContactPreferences

        settings.PUBLIC_BASE_URL = "https://concernline.example"
        ContactPreferences.objects.create(
            user=people["manager"], important_rule="email", normal_rule="email"
        )
        with django_capture_on_commit_callbacks(execute=True):
            worker_client.post(REPORT_URL, urgent_form())
        case = Case.objects.get()
        [email] = mail.outbox
        link = f"https://concernline.example/cases/{case.reference}/"
        assert link in email.body
        worker_client.logout()
        response = worker_client.get(link.removeprefix(settings.PUBLIC_BASE_URL))
        assert response["Location"] == f"{reverse('login')}?next=/cases/{case.reference}/"


class TestMyReportPage:
    """The reporter's own page says "Received" straight after sending, and the report's status
    on every later visit."""

    @pytest.fixture
    def sent(self, worker_client, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = worker_client.post(REPORT_URL, urgent_form())
        assert response.status_code == 302
        return response["Location"]

    RECEIVED = "Received. Your reference is"

    def test_received_once_then_the_status(self, worker_client, sent):
        case = Case.objects.get()
        first = worker_client.get(sent).content.decode()
        assert f"{self.RECEIVED} {case.reference}." in first
        assert "Your report's status" not in first
        later = worker_client.get(sent).content.decode()
        assert self.RECEIVED not in later
        assert "Your report's status: Reported." in later

    @pytest.mark.parametrize(
        "script",
        [{"HTTP_SEC_FETCH_DEST": "empty"}, {"HTTP_X_REQUESTED_WITH": "fetch"}],
        ids=["sec-fetch-dest", "older-browser"],
    )
    def test_the_page_report_js_fetches_on_the_way_leaves_it_for_the_page_opened(
        self, worker_client, sent, script
    ):
        """report.js sends the report with fetch(), which follows the redirect to this page,
        and then opens the page itself: that second one is the one the person sees."""
        assert self.RECEIVED in worker_client.get(sent, **script).content.decode()
        opened = worker_client.get(sent, HTTP_SEC_FETCH_DEST="document").content.decode()
        assert self.RECEIVED in opened
        assert self.RECEIVED not in worker_client.get(sent).content.decode()

    def test_sending_the_same_form_again_says_received_again(self, worker_client, sent):
        """A double tap on Send: one case, and the page after the second says it arrived."""
        worker_client.get(sent)
        case = Case.objects.get()
        again = worker_client.post(REPORT_URL, urgent_form(client_token=str(case.client_token)))
        assert again["Location"] == sent
        assert self.RECEIVED in worker_client.get(sent).content.decode()

    def test_another_report_page_does_not_use_it_up(self, worker_client, people, sent):
        earlier = submit_report(
            reporter=people["worker"],
            kind=ReportKind.CONCERN_COLLEAGUE,
            narrative="Read a care plan aloud.",
            details={"colleague": "B. Colleague"},
        )
        other = worker_client.get(reverse("incidents:my-report", args=[earlier.reference]))
        body = other.content.decode()
        assert self.RECEIVED not in body and "Your report's status:" in body
        assert self.RECEIVED in worker_client.get(sent).content.decode()

    def test_in_welsh(self, worker_client, people, sent):
        people["worker"].language = "cy"
        people["worker"].save(update_fields=["language"])
        worker_client.get(sent)
        body = worker_client.get(sent).content.decode().replace("&#x27;", "'")
        assert "Statws eich adroddiad: Wedi'i adrodd." in body


def urgent_report(people, capture):
    """The worker's urgent disclosure, paged as its transaction commits."""
    with capture(execute=True):
        return submit_report(
            reporter=people["worker"],
            kind=ReportKind.URGENT_DISCLOSURE,
            narrative=NARRATIVE,
            grounds=["crime"],
        )


class TestAcknowledge:
    @pytest.fixture
    def case(self, people, rota, django_capture_on_commit_callbacks):
        return urgent_report(people, django_capture_on_commit_callbacks)

    def acknowledge(self, client, case, capture):
        with capture(execute=True):
            return client.post(reverse("incidents:case-acknowledge", args=[case.reference]))

    def test_paged_manager_takes_the_case(
        self, client, people, case, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        detail = client.get(reverse("incidents:case-detail", args=[case.reference]))
        assert "Acknowledge: I am taking this" in detail.content.decode()

        response = self.acknowledge(client, case, django_capture_on_commit_callbacks)

        assert response.status_code == 302
        assert response["Location"] == reverse("incidents:case-detail", args=[case.reference])
        case.refresh_from_db()
        assert case.status == CaseStatus.ACKNOWLEDGED
        assert case.owner == people["manager"] and case.acknowledged_at is not None
        event = case.timeline.get(kind=TimelineKind.ACKNOWLEDGED)
        assert event.actor == people["manager"] and event.data == {"via": "web"}
        alert = Alert.objects.get(owner_id=case.id)
        assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_via == "web"

        page = client.get(response["Location"]).content.decode()
        assert "Acknowledged. You now own this case." in page
        assert "Acknowledge: I am taking this" not in page
        assert "<small>on the web</small>" in page  # how it was acknowledged, in words

    def test_acknowledging_twice_is_harmless(
        self, client, people, case, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        self.acknowledge(client, case, django_capture_on_commit_callbacks)
        case.refresh_from_db()
        first_at = case.acknowledged_at

        response = self.acknowledge(client, case, django_capture_on_commit_callbacks)

        assert response.status_code == 302
        case.refresh_from_db()
        assert case.status == CaseStatus.ACKNOWLEDGED and case.owner == people["manager"]
        assert case.acknowledged_at == first_at
        assert case.timeline.filter(kind=TimelineKind.ACKNOWLEDGED).count() == 1
        # No alarming "no open page" error for a double tap: it is already theirs.
        page = client.get(response["Location"]).content.decode()
        assert "You have already acknowledged this case." in page
        assert 'class="error"' not in page

    def test_starting_the_review_twice_is_harmless(
        self, client, people, case, django_capture_on_commit_callbacks
    ):
        """A double tap on "Start the review" over a weak signal: the second answer is the
        page the manager sees, and must not say the first, which worked, was impossible."""
        client.force_login(people["manager"])
        url = reverse("incidents:case-start-review", args=[case.reference])
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url)
            response = client.post(url)
        case.refresh_from_db()
        assert case.status == CaseStatus.UNDER_REVIEW and case.owner == people["manager"]
        assert case.timeline.filter(kind=TimelineKind.REVIEW_STARTED).count() == 1
        page = client.get(response["Location"]).content.decode()
        assert "You have already started the review." in page
        assert 'class="error"' not in page

    @pytest.fixture
    def paged_to_both(self, people, rota, django_capture_on_commit_callbacks):
        """An urgent case whose first step pages both managers."""
        policy = EscalationPolicy.objects.create(name="Both managers")
        for position, step in enumerate(
            [
                {"kind": StepKind.NOTIFY_ROLE, "role": Role.MANAGER},
                {"kind": StepKind.WAIT, "minutes": 5},
                {"kind": StepKind.FALLBACK, "role": Role.DPO},
            ],
            start=1,
        ):
            EscalationStep.objects.create(policy=policy, position=position, **step)
        return urgent_report(people, django_capture_on_commit_callbacks)

    def test_after_someone_else_acknowledged_it_says_who_owns_it(
        self, client, people, paged_to_both, django_capture_on_commit_callbacks
    ):
        case = paged_to_both
        with django_capture_on_commit_callbacks(execute=True):
            handle_inbound_sms(
                provider_sid=f"SM{uuid.uuid4().hex}",
                from_number=str(people["manager"].phone),
                to_number="",
                body=f"ACK {case.reference}",
            )
        client.force_login(people["manager2"])

        response = self.acknowledge(client, case, django_capture_on_commit_callbacks)

        case.refresh_from_db()
        assert case.owner == people["manager"]
        assert Alert.objects.get(owner_id=case.id).acknowledged_by == people["manager"]
        page = client.get(response["Location"]).content.decode()
        assert "Manager already acknowledged this case and owns it." in page
        assert "You now own this case" not in page and 'class="error"' not in page

    def test_after_someone_else_acknowledged_the_answer_is_structured(
        self, people, paged_to_both, django_capture_on_commit_callbacks
    ):
        from incidents.api import exception_handler
        from incidents.services import AlreadyAcknowledged, acknowledge_case

        case = paged_to_both
        with django_capture_on_commit_callbacks(execute=True):
            acknowledge_case(case=case, actor=people["manager"])
        with pytest.raises(AlreadyAcknowledged) as refused:
            acknowledge_case(case=case, actor=people["manager2"])
        response = exception_handler(refused.value, {})
        assert response.status_code == 409
        assert response.data["error"] == {
            "code": "already_acknowledged",
            "message": "Manager already acknowledged this case and owns it.",
            "fields": {},
        }
        with pytest.raises(AlreadyAcknowledged, match="You have already acknowledged"):
            acknowledge_case(case=case, actor=people["manager"])

    def test_acknowledging_a_case_reassigned_to_someone_else_says_they_own_it(
        self, client, people, paged_to_both, django_capture_on_commit_callbacks
    ):
        from incidents.services import reassign_case

        case = paged_to_both
        third = make_person("third@example.org", Role.MANAGER, "+447700900109")
        with django_capture_on_commit_callbacks(execute=True):
            reassign_case(case=case, actor=people["manager2"], to=third)
        client.force_login(people["manager"])

        response = self.acknowledge(client, case, django_capture_on_commit_callbacks)

        case.refresh_from_db()
        assert case.owner == third
        page = client.get(response["Location"]).content.decode()
        assert "Acknowledged. Third owns this case." in page
        assert "You now own this case" not in page

    def test_only_the_paged_manager_is_offered_the_button(
        self, client, people, case, django_capture_on_commit_callbacks
    ):
        # The safeguarding lead may read a safeguarding case but was not paged for it.
        with django_capture_on_commit_callbacks(execute=True):
            case = submit_report(
                reporter=people["worker"],
                kind=ReportKind.URGENT_DISCLOSURE,
                narrative=NARRATIVE,
                grounds=["abuse_or_harm"],
            )
        url = reverse("incidents:case-detail", args=[case.reference])
        client.force_login(people["safeguarding"])
        page = client.get(url)
        assert page.status_code == 200
        assert "Acknowledge: I am taking this" not in page.content.decode()
        # And if they post anyway, the case is not theirs.
        response = self.acknowledge(client, case, django_capture_on_commit_callbacks)
        assert response.status_code == 302
        case.refresh_from_db()
        assert case.status == CaseStatus.REPORTED and case.owner is None
        client.force_login(people["manager"])
        assert "Acknowledge: I am taking this" in client.get(url).content.decode()

    def test_get_is_not_allowed(self, client, people, case):
        client.force_login(people["manager"])
        response = client.get(reverse("incidents:case-acknowledge", args=[case.reference]))
        assert response.status_code == 405
        case.refresh_from_db()
        assert case.status == CaseStatus.REPORTED


class TestSignIn:
    def test_login_page_with_email_and_password(self, client, people):
        page = client.get(reverse("login"))
        assert page.status_code == 200
        assert "phone 999 or 112" in page.content.decode()

        response = client.post(
            reverse("login"),
            {"username": "worker@example.org", "password": "a-long-test-password"},
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("incidents:home")
        assert client.session["_auth_user_id"] == str(people["worker"].pk)

    def test_wrong_password_is_refused(self, client, people):
        response = client.post(
            reverse("login"), {"username": "worker@example.org", "password": "wrong"}
        )
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
        assert 'class="error"' in response.content.decode()

    def test_login_returns_to_the_page_asked_for(self, client, people):
        response = client.get(REPORT_URL)
        response = client.post(
            response["Location"],
            {
                "username": "worker@example.org",
                "password": "a-long-test-password",
                "next": REPORT_URL,
            },
        )
        assert response.status_code == 302 and response["Location"] == REPORT_URL

    def test_home_goes_to_the_report_page(self, client, people):
        client.force_login(people["worker"])
        response = client.get(reverse("incidents:home"))
        assert response.status_code == 302
        assert response["Location"] == reverse("incidents:report")
