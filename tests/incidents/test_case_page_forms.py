"""The case page's forms on a weak signal: a note sent twice is one note; a form that is refused
comes back on the case page with what was typed and the reason next to the field."""

import re
import threading
import uuid

import pytest
from django.db import connection
from django.urls import reverse

from incidents import services
from incidents.models import AccessAction, AccessLogEntry, CaseNote, HRStage, TimelineKind

from .conftest import NARRATIVE

NOTE = "Rang the reporter back; she is safe tonight."


def page_of(client, case):
    return client.get(reverse("incidents:case-detail", args=[case.reference]))


def error_for(body: str, field: str) -> str:
    """The text of the error shown next to `field`, or "" if there is none."""
    match = re.search(rf'<p class="error" id="id_{field}_error">(.*?)</p>', body, re.S)
    return match.group(1).strip() if match else ""


def new_log_rows(since: int) -> list[tuple[str, str, str]]:
    rows = AccessLogEntry.objects.filter(id__gt=since).order_by("id")
    return list(rows.values_list("action", "basis", "user__email"))


def last_log_id() -> int:
    return AccessLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def note_form_of(body: str) -> str:
    return re.search(r'action="/cases/[^"]+/notes/">(.*?)</form>', body, re.S).group(1)


def note_token(body: str) -> str:
    """The client_token the page's note form carries."""
    return re.search(r'name="client_token" value="([^"]+)"', note_form_of(body)).group(1)


class TestANoteSentTwice:
    def test_a_double_tap_adds_one_note_and_says_so_calmly(self, client, make_case, people):
        case = make_case()
        client.force_login(people["manager"])
        token = note_token(page_of(client, case).content.decode())
        url = reverse("incidents:case-note", args=[case.reference])

        first = client.post(url, {"text": NOTE, "client_token": token})
        second = client.post(url, {"text": NOTE, "client_token": token})

        assert first.status_code == second.status_code == 302
        assert second["Location"] == reverse("incidents:case-detail", args=[case.reference])
        assert CaseNote.objects.filter(case=case).count() == 1
        assert case.timeline.filter(kind=TimelineKind.NOTE_ADDED).count() == 1
        page = client.get(second["Location"]).content.decode()
        assert page.count(NOTE) == 1
        assert "Your note was added already. It is shown once." in page
        assert 'class="error"' not in page

    def test_each_page_carries_a_fresh_token_so_a_second_note_is_kept(
        self, client, make_case, people
    ):
        """The same words written again on a page loaded again are a second note, on purpose."""
        case = make_case()
        client.force_login(people["manager"])
        url = reverse("incidents:case-note", args=[case.reference])
        first = note_token(page_of(client, case).content.decode())
        client.post(url, {"text": NOTE, "client_token": first})
        second = note_token(page_of(client, case).content.decode())
        assert uuid.UUID(first) != uuid.UUID(second)
        client.post(url, {"text": NOTE, "client_token": second})
        assert CaseNote.objects.filter(case=case).count() == 2

    def test_a_note_without_a_token_is_still_taken(self, client, make_case, people):
        """A page served before the token existed still adds its note."""
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(
            reverse("incidents:case-note", args=[case.reference]), {"text": NOTE}
        )
        assert response.status_code == 302
        assert CaseNote.objects.get(case=case).client_token is None

    def test_a_token_that_is_not_one_is_refused_in_words_and_keeps_the_note(
        self, client, make_case, people
    ):
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(
            reverse("incidents:case-note", args=[case.reference]),
            {"text": NOTE, "client_token": "1"},
        )
        assert response.status_code == 400
        form = note_form_of(response.content.decode())
        assert "This page is out of date. Load it again, then add what you wrote." in form
        assert NOTE in form
        assert not CaseNote.objects.filter(case=case).exists()


class TestAddNoteWithAToken:
    def test_the_same_token_again_is_already_done(self, make_case, people):
        case = make_case()
        token = uuid.uuid4()
        services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        with pytest.raises(services.AlreadyDone):
            services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        assert CaseNote.objects.filter(case=case).count() == 1

    def test_the_token_is_checked_only_after_the_access_check(self, make_case, people):
        """Someone who may not write on the case learns nothing from a token."""
        case = make_case()
        token = uuid.uuid4()
        services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        with pytest.raises(services.NotAllowed):
            services.add_note(case=case, actor=people["hr"], text=NOTE, client_token=token)


@pytest.mark.django_db(transaction=True)
def test_two_taps_at_the_same_moment_add_one_note(make_case, people):
    """Each tap in its own connection, at once: the case's lock puts one after the other, so
    the second sees the first's note (no IntegrityError from the constraint behind it)."""
    case = make_case()
    token = uuid.uuid4()
    start = threading.Barrier(2)
    outcomes = []

    def tap():
        try:
            start.wait()
            services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
            outcomes.append("added")
        except services.AlreadyDone:
            outcomes.append("already")
        except Exception as exc:  # surfaced below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == ["added", "already"]
    assert CaseNote.objects.filter(case=case).count() == 1


class TestARefusedFormComesBackAsTyped:
    """A refused form is shown again on the case page (400, as the rota page does), holding what
    was sent and the reason next to its field; the rest of the page is all there, and the page
    is access-logged as any view of it is."""

    @pytest.fixture
    def investigated(self, make_case, people):
        case = make_case(to="referred")
        services.advance_referral(case=case, actor=people["hr"], stage=HRStage.INVESTIGATION)
        case.refresh_from_db()
        return case

    def hr_post(self, client, case, data):
        return client.post(reverse("incidents:case-hr-stage", args=[case.reference]), data)

    def test_a_hearing_with_no_date(self, client, investigated, people):
        case = investigated
        client.force_login(people["hr"])
        seen = last_log_id()

        response = self.hr_post(client, case, {"stage": "hearing", "hearing_at": ""})

        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "hearing_at") == "Give a date."
        assert 'aria-describedby="id_hearing_at_error"' in body
        # What was chosen is still chosen.
        assert '<option value="hearing" selected>' in body
        assert "Not saved. The form below says why." in body
        # Every other part of the page is there.
        assert NARRATIVE in body
        assert '<ol class="timeline">' in body and "Add note" in body
        assert 'name="client_token"' in note_form_of(body)
        # The action and the page it shows, logged as for any view of the page.
        assert new_log_rows(seen) == [
            (AccessAction.CHANGE, "hr", "hr@example.org"),
            (AccessAction.VIEW, "hr", "hr@example.org"),
        ]
        case.refresh_from_db()
        assert case.hr_stage == HRStage.INVESTIGATION and case.hearing_at is None

    def test_a_date_that_is_not_a_date_is_kept_to_correct(self, client, investigated, people):
        client.force_login(people["hr"])
        response = self.hr_post(
            client, investigated, {"stage": "hearing", "hearing_at": "next Tuesday"}
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "hearing_at") == "Enter a valid date/time."
        assert 'value="next Tuesday"' in body

    def test_a_decision_the_procedure_does_not_allow_yet(self, client, investigated, people):
        """A refusal that names no field is said at the top of the form, the choices kept."""
        client.force_login(people["hr"])
        response = self.hr_post(
            client, investigated, {"stage": "decision", "decision": "written_warning"}
        )
        assert response.status_code == 400
        body = response.content.decode()
        hr_form = re.search(r"<h3>Disciplinary procedure</h3>(.*?)</form>", body, re.S).group(1)
        assert "may be decided without a hearing" in hr_form
        assert '<option value="decision" selected>' in hr_form
        assert '<option value="written_warning" selected>' in hr_form

    def test_a_note_too_long_keeps_its_text(self, client, make_case, people):
        case = make_case()
        client.force_login(people["manager"])
        text = "Spoke to the reporter. " * 500  # over 10,000 characters
        response = client.post(
            reverse("incidents:case-note", args=[case.reference]),
            {"text": text, "client_token": str(uuid.uuid4())},
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "text").startswith("Ensure this value has at most 10000 characters")
        assert text.strip() in note_form_of(body)
        assert CaseNote.objects.filter(case=case).count() == 0

    def test_a_breach_decision_with_no_reason_keeps_the_ticks(self, client, make_case, people):
        case = make_case("breach")
        client.force_login(people["dpo"])
        response = client.post(
            reverse("incidents:case-breach", args=[case.reference]), {"ico_notified": "on"}
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "reason") == "Say why the ICO or the people were not told."
        assert re.search(r'<input type="checkbox" name="ico_notified"[^>]* checked', body)
        assert not re.search(r'<input type="checkbox" name="subjects_told"[^>]* checked', body)
        case.refresh_from_db()
        assert case.breach_decided_at is None

    def test_the_language_switcher_goes_back_to_the_case_page(self, client, make_case, people):
        """The refused page is shown at the address the form was sent to, which takes only a
        POST: switching language from it goes to the case page, not to a 405."""
        case = make_case()
        client.force_login(people["manager"])
        refused = client.post(reverse("incidents:case-note", args=[case.reference]), {"text": ""})
        back = re.search(r'name="next" value="([^"]+)"', refused.content.decode()).group(1)
        assert back == reverse("incidents:case-detail", args=[case.reference])
        switched = client.post(reverse("set-language"), {"language": "cy", "next": back})
        assert client.get(switched["Location"]).status_code == 200

    def test_in_welsh(self, client, investigated, people):
        people["hr"].language = "cy"
        people["hr"].save(update_fields=["language"])
        client.force_login(people["hr"])
        response = self.hr_post(client, investigated, {"stage": "hearing", "hearing_at": ""})
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "hearing_at") == "Rhowch ddyddiad."
        assert "Heb ei gadw. Mae'r ffurflen isod yn dweud pam." in body.replace("&#x27;", "'")

    def test_a_form_the_case_no_longer_offers_says_why_at_the_top(
        self, client, investigated, people
    ):
        """Sent from a page loaded before the procedure closed: the form is not on the page
        now, so its reason is a message at the top, never a 500."""
        case = investigated
        hr = people["hr"]
        services.advance_referral(case=case, actor=hr, stage="decision", decision="no_case")
        services.advance_referral(case=case, actor=hr, stage="closed")
        client.force_login(hr)
        response = self.hr_post(client, case, {"stage": "appeal"})
        assert response.status_code == 400
        body = response.content.decode()
        assert "Move to: Select a valid choice." in body
        assert "<h3>Disciplinary procedure</h3>" not in body
        assert NARRATIVE in body

    def test_a_button_with_nothing_typed_still_goes_back_with_a_message(
        self, client, make_case, people
    ):
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(reverse("incidents:case-close", args=[case.reference]))
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert "Not possible while the case is reported." in page

    def test_someone_who_may_not_see_the_case_still_gets_404(self, client, investigated, people):
        client.force_login(people["manager2"])
        response = self.hr_post(client, investigated, {"stage": "hearing", "hearing_at": ""})
        assert response.status_code == 404
