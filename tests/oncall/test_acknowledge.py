"""Acknowledging an alert, on the web or by SMS reply: it stops the escalation, once."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import AttemptStatus, InboundMessage, NotificationAttempt, PageRequest
from notifications.services import (
    handle_inbound_sms,
    send_notification_attempt,
    sweep_notification_attempts,
)
from oncall.models import Alert, AlertState
from oncall.services import (
    AlertError,
    acknowledge_alert,
    raise_alert,
    reassign_alert,
    run_alert_step,
    sweep_alerts,
)
from oncall.signals import alert_acknowledged

OWNER_TYPE = "tests.thing"  # not a case, so incidents' receivers stay out of the way
REF = "C-2026-0042"
MANAGER_PHONE = "+447700900101"
MANAGER2_PHONE = "+447700900102"


def paged_alert(rota, capture, *, reference=REF, owner_id=7) -> Alert:
    """An alert whose step 0 has paged, as after its transaction committed."""
    with capture(execute=True):
        alert = raise_alert(
            title="urgent disclosure",
            reference=reference,
            link=f"/cases/{reference}/",
            owner_type=OWNER_TYPE,
            owner_id=owner_id,
            rota=rota,
        )
    alert.refresh_from_db()
    return alert


def sms(body: str, *, phone: str = MANAGER_PHONE) -> str:
    return handle_inbound_sms(
        provider_sid=f"SM{uuid.uuid4().hex}", from_number=phone, to_number="", body=body
    )


@pytest.fixture
def acknowledged():
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    alert_acknowledged.connect(listener, weak=False, dispatch_uid="test_ack_listener")
    yield received
    alert_acknowledged.disconnect(dispatch_uid="test_ack_listener")


class TestAcknowledgeAlert:
    def test_a_paged_person_acknowledges_and_the_escalation_stops(
        self, people, rota, outbox, acknowledged, settings, django_capture_on_commit_callbacks
    ):
        settings.ESCALATION_REVIEW_MINUTES = 0  # no review reminder: nothing more is due
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        # Make the next step overdue, so that only the token (not the clock) can stop it.
        Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now() - timedelta(minutes=1))
        old_token = str(alert.active_token)
        before = timezone.now()

        with django_capture_on_commit_callbacks(execute=True):
            result = acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            assert acknowledged == []  # not before the transaction commits

        alert.refresh_from_db()
        assert result.state == alert.state == AlertState.ACKNOWLEDGED
        assert alert.acknowledged_by == people["manager"]
        assert before <= alert.acknowledged_at <= timezone.now()
        assert alert.acknowledged_via == "web"
        assert alert.next_step_at is None
        assert str(alert.active_token) != old_token

        with django_capture_on_commit_callbacks(execute=True):
            assert run_alert_step(alert_id=alert.id, token=old_token) is False
            assert sweep_alerts(now=timezone.now() + timedelta(days=1)) == 0
        assert len(outbox) == 1

        assert len(acknowledged) == 1
        news = acknowledged[0]
        assert news["alert_id"] == alert.id
        assert (news["owner_type"], news["owner_id"]) == (OWNER_TYPE, 7)
        assert (news["user_id"], news["via"]) == (people["manager"].id, "web")
        assert news["at"] == alert.acknowledged_at

    def test_a_second_acknowledgement_changes_nothing(
        self, people, outbox, acknowledged, django_capture_on_commit_callbacks
    ):
        # No rota: both managers are paged, so either may acknowledge.
        alert = paged_alert(None, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
        alert.refresh_from_db()
        first = (alert.acknowledged_by, alert.acknowledged_at, alert.acknowledged_via)
        token = alert.active_token

        with django_capture_on_commit_callbacks(execute=True):
            again = acknowledge_alert(alert=alert, actor=people["manager2"], via="sms")
            acknowledge_alert(alert=alert, actor=people["manager"], via="sms")

        alert.refresh_from_db()
        assert again.acknowledged_by == people["manager"]
        assert (alert.acknowledged_by, alert.acknowledged_at, alert.acknowledged_via) == first
        assert alert.active_token == token
        assert [a["user_id"] for a in acknowledged] == [people["manager"].id]

    def test_a_person_not_paged_is_refused_in_plain_words(
        self, people, rota, acknowledged, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        token, due = alert.active_token, alert.next_step_at

        with django_capture_on_commit_callbacks(execute=True):
            for outsider in (people["manager2"], people["worker"], people["admin"]):
                with pytest.raises(AlertError) as caught:
                    acknowledge_alert(alert=alert, actor=outsider, via="web")
                assert str(caught.value) == (
                    "Only a person paged for this alert can acknowledge it."
                )

        alert.refresh_from_db()
        assert alert.state == AlertState.TRIGGERED and alert.acknowledged_by is None
        assert (alert.active_token, alert.next_step_at) == (token, due)
        assert acknowledged == []

    def test_a_retry_of_the_first_text_is_not_sent_after_the_acknowledgement(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        """The first text failed for a moment and waits to be tried again (as a transient
        provider error leaves it) when the manager acknowledges: neither its retry task nor the
        sweeper sends it, and nothing pages them again."""
        capture = django_capture_on_commit_callbacks
        alert = paged_alert(rota, capture)
        (page,) = alert.pages.all()
        text = NotificationAttempt.objects.get(topic=page.topic, step=0, channel="sms")
        NotificationAttempt.objects.filter(pk=text.pk).update(
            status=AttemptStatus.PENDING, next_try_at=timezone.now()
        )
        sent = len(outbox)

        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
            send_notification_attempt(attempt_id=text.pk)  # the retry task
            sweep_notification_attempts(now=timezone.now() + timedelta(hours=1))

        text.refresh_from_db()
        assert (text.status, text.error_message) == (
            AttemptStatus.FAILED,
            "Not sent: the page was closed",
        )
        assert len(outbox) == sent

    def test_the_pages_close_with_the_acknowledgement_not_after_it(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        (page,) = alert.pages.all()

        with django_capture_on_commit_callbacks(execute=False):
            acknowledge_alert(alert=alert, actor=people["manager"], via="sms")
            # Before any on-commit work: the page is closed by the acknowledgement's own write.
            request = PageRequest.objects.get(topic=page.topic)
            assert request.closed_at is not None and request.acknowledged_via == "sms"

    def test_a_page_sent_after_the_acknowledgement_stays_open(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        """Reassigned after an acknowledgement, in another transaction: the new page is not
        closed by the earlier acknowledgement, whenever its news arrives."""
        capture = django_capture_on_commit_callbacks
        alert = paged_alert(rota, capture)
        with capture(execute=True):
            acknowledge_alert(alert=alert, actor=people["manager"], via="web")
        with capture(execute=True):
            reassign_alert(alert=alert, actor=people["manager"], to=people["manager2"])

        new = alert.pages.get(recipient=people["manager2"])
        assert PageRequest.objects.get(topic=new.topic).closed_at is None
        assert [m["to"] for m in outbox][-1] == str(people["manager2"].phone)

    def test_being_paged_for_another_alert_is_not_enough(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        paged_alert(rota, django_capture_on_commit_callbacks, reference="C-2026-0001", owner_id=1)
        other = paged_alert(None, django_capture_on_commit_callbacks, reference="C-2026-0002")
        other.pages.filter(recipient=people["manager"]).delete()
        with pytest.raises(AlertError):
            acknowledge_alert(alert=other, actor=people["manager"], via="web")


class TestAcknowledgeBySms:
    def test_ack_and_the_reference_acknowledges(
        self, people, rota, acknowledged, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            reply = sms(f"ACK {REF}")

        assert f"you have acknowledged {REF}" in reply
        alert.refresh_from_db()
        assert alert.state == AlertState.ACKNOWLEDGED
        assert (alert.acknowledged_by, alert.acknowledged_via) == (people["manager"], "sms")
        assert [(a["user_id"], a["via"]) for a in acknowledged] == [(people["manager"].id, "sms")]
        assert InboundMessage.objects.get().reply == reply

    def test_lowercase_works(self, people, rota, django_capture_on_commit_callbacks):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        reply = sms(f"  ack {REF.lower()} ")
        assert f"you have acknowledged {REF}" in reply
        alert.refresh_from_db()
        assert alert.acknowledged_by == people["manager"]

    def test_plain_ack_acknowledges_the_only_open_page(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        done = paged_alert(rota, django_capture_on_commit_callbacks, reference="C-2026-0001")
        acknowledge_alert(alert=done, actor=people["manager"], via="web")
        alert = paged_alert(rota, django_capture_on_commit_callbacks)

        reply = sms("ACK")

        assert f"you have acknowledged {REF}" in reply
        alert.refresh_from_db()
        assert alert.state == AlertState.ACKNOWLEDGED
        assert alert.acknowledged_by == people["manager"]

    def test_plain_ack_with_two_open_pages_asks_for_the_reference(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        first = paged_alert(rota, django_capture_on_commit_callbacks, reference="C-2026-0001")
        second = paged_alert(rota, django_capture_on_commit_callbacks, reference="C-2026-0002")

        reply = sms("ACK")

        assert "C-2026-0001" in reply and "C-2026-0002" in reply
        assert "Reply ACK and the case reference" in reply
        assert "acknowledged" not in reply
        for alert in (first, second):
            alert.refresh_from_db()
            assert alert.state == AlertState.TRIGGERED and alert.acknowledged_by is None

    def test_a_reference_never_paged_to_this_person(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)  # paged to manager only

        reply = sms(f"ACK {REF}", phone=MANAGER2_PHONE)

        assert f"no page for {REF} was sent to you" in reply
        assert "no page for C-2026-9999 was sent to you" in sms("ACK C-2026-9999")
        alert.refresh_from_db()
        assert alert.state == AlertState.TRIGGERED

    def test_an_alert_already_acknowledged(self, people, django_capture_on_commit_callbacks):
        alert = paged_alert(None, django_capture_on_commit_callbacks)  # both managers paged
        acknowledge_alert(alert=alert, actor=people["manager2"], via="web")

        reply = sms(f"ACK {REF}")

        assert f"{REF} is already acknowledged" in reply
        alert.refresh_from_db()
        assert alert.acknowledged_by == people["manager2"]

    def test_the_same_sms_delivered_twice_answers_the_same(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        paged_alert(rota, django_capture_on_commit_callbacks)
        args = {"provider_sid": "SM-once", "from_number": MANAGER_PHONE, "to_number": ""}
        first = handle_inbound_sms(body=f"ACK {REF}", **args)
        again = handle_inbound_sms(body=f"ACK {REF}", **args)
        assert again == first and "you have acknowledged" in first


class TestEscalateNow:
    def test_runs_the_next_step_at_once_and_voids_the_queued_one(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        from oncall.services import escalate_now

        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_alert(
                title="urgent disclosure",
                reference="C-2026-0077",
                link="/x/",
                owner_type="tests.thing",
                owner_id=1,
                rota=rota,
            )
        alert.refresh_from_db()
        queued_token = alert.active_token
        with django_capture_on_commit_callbacks(execute=True):
            escalate_now(alert=alert, actor=people["manager"], via="sms")
        alert.refresh_from_db()
        # Built-in policy: passing on the on-call manager's page goes to the fallback.
        assert alert.current_step == 2 and len(outbox) == 3
        assert {m["to"] for m in outbox[1:]} == {MANAGER_PHONE, MANAGER2_PHONE}
        assert not run_alert_step(alert_id=alert.id, token=str(queued_token))

    def test_someone_not_paged_cannot_pass_it_on(
        self, people, rota, django_capture_on_commit_callbacks
    ):
        from oncall.services import escalate_now

        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_alert(
                title="urgent disclosure",
                reference="C-2026-0078",
                link="/x/",
                owner_type="tests.thing",
                owner_id=1,
                rota=rota,
            )
        for outsider in (people["hr"], people["worker"], people["admin"]):
            with pytest.raises(AlertError):
                escalate_now(alert=alert, actor=outsider, via="web")
        alert.refresh_from_db()
        assert (alert.current_step, alert.step_tries) == (0, 1)


class TestEscalateBySms:
    def test_escalate_with_the_reference_passes_the_page_on(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        step = alert.current_step
        with django_capture_on_commit_callbacks(execute=True):
            reply = sms(f"escalate {REF}")
        alert.refresh_from_db()
        assert alert.current_step > step and alert.state == AlertState.TRIGGERED
        assert REF in reply and "passed on" in reply

    def test_the_welsh_word_works_when_one_page_is_open(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        step = alert.current_step
        with django_capture_on_commit_callbacks(execute=True):
            sms("Uwchgyfeirio")
        alert.refresh_from_db()
        assert alert.current_step > step

    def test_someone_never_paged_cannot_escalate(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        alert = paged_alert(rota, django_capture_on_commit_callbacks)
        step = alert.current_step
        reply = sms(f"ESCALATE {REF}", phone=str(people["hr"].phone))
        alert.refresh_from_db()
        assert alert.current_step == step and "ESCALATE" in reply
