"""The case page's "escalate now" and "reassign to ..." buttons: who may use them (every role,
allowed and refused), what they do, and that every use is in the access log and timeline."""

import pytest
from django.urls import reverse

from incidents.models import AccessLogEntry, Case, ReportKind, TimelineKind
from incidents.services import submit_report
from oncall.models import Alert, AlertState, EscalationPolicy, EscalationStep, StepKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(people, rota, settings, django_capture_on_commit_callbacks) -> Case:
    settings.ESCALATION_MINUTE_SECONDS = 60
    policy = EscalationPolicy.objects.create(name="Urgent")
    for position, step in enumerate(
        [
            {"kind": StepKind.NOTIFY_ON_CALL},
            {"kind": StepKind.WAIT, "minutes": 10},
            {"kind": StepKind.NOTIFY_ROLE, "role": "hr"},
            {"kind": StepKind.WAIT, "minutes": 10},
            {"kind": StepKind.FALLBACK, "person": people["safeguarding"]},
        ],
        start=1,
    ):
        EscalationStep.objects.create(policy=policy, position=position, **step)
    with django_capture_on_commit_callbacks(execute=True):
        return submit_report(
            reporter=people["worker"],
            kind=ReportKind.URGENT_DISCLOSURE,
            narrative="Confidential words.",
            grounds=["abuse_or_harm"],  # safeguarding: the lead may read it
        )


def post(client, name, case, capture, data=None):
    with capture(execute=True):
        return client.post(reverse(f"incidents:{name}", args=[case.reference]), data or {})


REFUSED = ["worker", "other_worker", "manager2", "hr", "dpo", "safeguarding", "admin"]


class TestWhoMay:
    @pytest.mark.parametrize("who", REFUSED)
    @pytest.mark.parametrize("name", ["case-escalate", "case-reassign"])
    def test_everyone_but_a_paged_or_owning_manager_gets_404_and_nothing_happens(
        self, client, people, case, outbox, who, name, django_capture_on_commit_callbacks
    ):
        client.force_login(people[who])
        sent = len(outbox)
        response = post(
            client, name, case, django_capture_on_commit_callbacks, {"to": people["manager2"].pk}
        )
        assert response.status_code == 404
        assert len(outbox) == sent
        assert not case.timeline.filter(
            kind__in=[TimelineKind.ESCALATED_NOW, TimelineKind.REASSIGNED]
        ).exists()

    @pytest.mark.parametrize("name", ["case-escalate", "case-reassign"])
    def test_anonymous_is_sent_to_sign_in(self, client, case, name):
        response = client.post(reverse(f"incidents:{name}", args=[case.reference]))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    @pytest.mark.parametrize("name", ["case-escalate", "case-reassign"])
    def test_get_is_not_allowed(self, client, people, case, name):
        client.force_login(people["manager"])
        response = client.get(reverse(f"incidents:{name}", args=[case.reference]))
        assert response.status_code == 405

    def test_only_a_paged_manager_is_offered_the_buttons(self, client, people, case):
        url = reverse("incidents:case-detail", args=[case.reference])
        client.force_login(people["manager"])
        assert "Escalate now" in client.get(url).content.decode()
        client.force_login(people["safeguarding"])  # may read it, may not steer it
        page = client.get(url)
        assert page.status_code == 200 and "Escalate now" not in page.content.decode()


class TestWhatTheyDo:
    def test_escalate_now_pages_the_next_step_at_once(
        self, client, people, case, outbox, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        response = post(client, "case-escalate", case, django_capture_on_commit_callbacks)
        assert response.status_code == 302
        assert [m["to"] for m in outbox] == [str(people["manager"].phone), str(people["hr"].phone)]
        event = case.timeline.get(kind=TimelineKind.ESCALATED_NOW)
        assert event.actor == people["manager"]
        assert AccessLogEntry.objects.filter(
            case=case, user=people["manager"], action="escalate", basis="paged"
        ).exists()
        page = client.get(response["Location"]).content.decode()
        assert "Passed on" in page

    def test_reassign_pages_the_new_manager_who_owns_it(
        self, client, people, case, outbox, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        response = post(
            client,
            "case-reassign",
            case,
            django_capture_on_commit_callbacks,
            {"to": people["manager2"].pk},
        )
        assert response.status_code == 302
        case.refresh_from_db()
        assert case.owner == people["manager2"]
        assert outbox[-1]["to"] == str(people["manager2"].phone)
        assert case.timeline.get(kind=TimelineKind.REASSIGNED).actor == people["manager"]
        alert = Alert.objects.get(owner_id=case.id)
        assert alert.state == AlertState.TRIGGERED
        # The new owner may now see and steer the case.
        client.force_login(people["manager2"])
        detail = client.get(reverse("incidents:case-detail", args=[case.reference]))
        assert detail.status_code == 200 and "Escalate now" in detail.content.decode()

    def test_reassign_to_someone_not_a_manager_is_refused_in_plain_words(
        self, client, people, case, outbox, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        response = post(
            client,
            "case-reassign",
            case,
            django_capture_on_commit_callbacks,
            {"to": people["worker"].pk},
        )
        # The case page again, the reason next to the choice.
        assert response.status_code == 400
        page = response.content.decode()
        assert '<p class="error" id="id_to_error">Choose a manager who can be paged.</p>' in page
        case.refresh_from_db()
        assert case.owner is None and len(outbox) == 1

    def test_escalating_an_acknowledged_case_says_why_not(
        self, client, people, case, outbox, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        post(client, "case-acknowledge", case, django_capture_on_commit_callbacks)
        response = post(client, "case-escalate", case, django_capture_on_commit_callbacks)
        page = client.get(response["Location"]).content.decode()
        assert "nothing to pass on" in page and len(outbox) == 1

    def test_once_acknowledged_the_page_offers_reassign_not_escalate(
        self, client, people, case, outbox, django_capture_on_commit_callbacks
    ):
        """A button that can only answer "nothing to pass on" is not offered; handing the case
        to someone else still is."""
        client.force_login(people["manager"])
        post(client, "case-acknowledge", case, django_capture_on_commit_callbacks)
        page = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        assert "Escalate now" not in page.decode() and "Reassign" in page.decode()
