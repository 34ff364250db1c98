"""The urgent path end to end: a care worker's report over HTTP, a real worker paging through
the real Twilio SDK to the sandbox, the manager's signed ACK reply, the case acknowledged."""

import re

import pytest
import requests

from incidents.models import Case, CaseStatus, TimelineKind
from notifications.models import InboundMessage
from oncall.models import Alert, AlertState

from .conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NARRATIVE = "Mr Sample at 9 Hidden Road said his carer locks him in."
SERVICE_USER = "SU-77812"
PASSWORD = "a-long-test-password"


def csrf_from(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def sign_in(base_url: str, email: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base_url}/accounts/login/", timeout=10)
    response = session.post(
        f"{base_url}/accounts/login/",
        data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf_from(page.text)},
        timeout=10,
    )
    assert response.status_code == 200 and "Report a concern" in response.text
    return session


def report_urgent_disclosure(base_url: str, session: requests.Session) -> str:
    page = session.get(f"{base_url}/report/?kind=urgent_disclosure", timeout=10)
    assert "phone 999 or 112" in page.text
    client_token = re.search(r'name="client_token" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base_url}/report/",
        data={
            "csrfmiddlewaretoken": csrf_from(page.text),
            "client_token": client_token,
            "kind": "urgent_disclosure",
            "grounds": ["abuse_or_harm", "imminent_danger"],
            "narrative": NARRATIVE,
            "service_user_ref": SERVICE_USER,
            "who_was_told": "Police non-emergency line",
            "representative_consulted": "no",
            "emergency_services_called": "yes",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text[:500]
    return re.search(r"Your reference is (C-\d{4}-\d{4})", response.text).group(1)


def test_urgent_report_is_paged_and_acknowledged_by_sms(
    live_server, people, rota, twilio_settings, sandbox, start_worker
):
    start_worker()
    manager_phone = str(people["manager"].phone)
    session = sign_in(live_server.url, people["worker"].email)

    reference = report_urgent_disclosure(live_server.url, session)

    messages = wait_for(
        lambda: sandbox.sandbox.list_messages(to=manager_phone), what="the page at the sandbox"
    )
    assert len(messages) == 1
    body = messages[0]["body"]
    assert reference in body and "URGENT" in body and "A to acknowledge" in body
    for secret in ("Sample", "Hidden Road", "carer", SERVICE_USER, "Police"):
        assert secret not in body
    assert sandbox.sandbox.list_messages(to=str(people["manager2"].phone)) == []

    exchange = sandbox.sandbox.send_inbound(from_=manager_phone, body=f"ack {reference}")
    assert exchange.app_status == 200
    assert f"acknowledged {reference}" in exchange.app_body

    case = Case.objects.get(reference=reference)
    assert case.status == CaseStatus.ACKNOWLEDGED
    assert case.owner == people["manager"]
    alert = Alert.objects.get(owner_id=case.id)
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_via == "sms"

    def timeline_complete():
        kinds = set(case.timeline.values_list("kind", flat=True))
        return {TimelineKind.PAGE_DELIVERED, TimelineKind.ACKNOWLEDGED} <= kinds

    wait_for(timeline_complete, what="the delivery callback on the timeline")
    sent = case.timeline.get(kind=TimelineKind.PAGE_SENT)
    assert sent.data["recipient_id"] == people["manager"].id
    assert sent.data["provider_sid"] == messages[0]["sid"]
    acknowledged = case.timeline.get(kind=TimelineKind.ACKNOWLEDGED)
    assert acknowledged.actor == people["manager"] and acknowledged.data["via"] == "sms"
    assert [e.kind for e in case.timeline.all()][:4] == [
        TimelineKind.REPORTED,
        TimelineKind.ALERT_RAISED,
        TimelineKind.STEP_STARTED,
        TimelineKind.PAGE_SENT,
    ]

    # The reporter sees the acknowledgement, and still nothing of anyone's notes.
    mine = session.get(f"{live_server.url}/my-reports/{reference}/", timeout=10)
    assert "Acknowledged" in mine.text and people["manager"].full_name not in mine.text
    # Exactly one page went out: the acknowledgement stopped the escalation.
    assert len(sandbox.sandbox.list_messages(to=manager_phone)) == 1


def test_forged_acknowledgement_is_refused_and_changes_nothing(
    live_server, people, rota, twilio_settings, sandbox, start_worker
):
    start_worker()
    manager_phone = str(people["manager"].phone)
    session = sign_in(live_server.url, people["worker"].email)
    reference = report_urgent_disclosure(live_server.url, session)
    wait_for(lambda: sandbox.sandbox.list_messages(to=manager_phone), what="the page")

    forged = sandbox.sandbox.send_inbound(
        from_=manager_phone, body=f"ACK {reference}", signature="bad"
    )
    unsigned = sandbox.sandbox.send_inbound(
        from_=manager_phone, body=f"ACK {reference}", signature="missing"
    )

    assert forged.app_status == 403 and unsigned.app_status == 403
    case = Case.objects.get(reference=reference)
    assert case.status == CaseStatus.REPORTED and case.owner is None
    assert Alert.objects.get(owner_id=case.id).state == AlertState.TRIGGERED
    assert InboundMessage.objects.count() == 0
    assert not case.timeline.filter(kind=TimelineKind.ACKNOWLEDGED).exists()
