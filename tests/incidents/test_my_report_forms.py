"""The reporter's "Add" on their own report's page, on a weak signal: the same addition sent
twice is added once; an addition that is refused comes back on the report's page with what was
typed and the reason next to the field."""

import re
import threading
import uuid

import pytest
from django.db import connection
from django.urls import reverse

from config.errors import ConcernlineError
from incidents import services
from incidents.models import AccessAction, AccessLogEntry, CaseNote, TimelineKind

MORE = "She rang me again tonight and said the same."


def page_of(client, case):
    return client.get(reverse("incidents:my-report", args=[case.reference]))


def add_url(case) -> str:
    return reverse("incidents:my-report-add", args=[case.reference])


def add_form_of(body: str) -> str:
    return re.search(r'action="/my-reports/[^"]+/add/">(.*?)</form>', body, re.S).group(1)


def add_token(body: str) -> str:
    """The client_token the page's "Add" form carries."""
    return re.search(r'name="client_token" value="([^"]+)"', add_form_of(body)).group(1)


def error_for(body: str, field: str) -> str:
    """The text of the error shown next to `field`, or "" if there is none."""
    match = re.search(rf'<p class="error" id="id_{field}_error">(.*?)</p>', body, re.S)
    return match.group(1).strip() if match else ""


def last_log_id() -> int:
    return AccessLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def new_log_rows(since: int) -> list[tuple[str, str, str]]:
    rows = AccessLogEntry.objects.filter(id__gt=since).order_by("id")
    return list(rows.values_list("action", "basis", "user__email"))


def added(case) -> int:
    return CaseNote.objects.filter(case=case, from_reporter=True).count()


@pytest.fixture
def reporter_client(client, people):
    client.force_login(people["worker"])
    return client


class TestAnAdditionSentTwice:
    def test_a_double_tap_adds_it_once_and_says_so_calmly(self, reporter_client, make_case):
        case = make_case()
        token = add_token(page_of(reporter_client, case).content.decode())

        first = reporter_client.post(add_url(case), {"text": MORE, "client_token": token})
        second = reporter_client.post(add_url(case), {"text": MORE, "client_token": token})

        assert first.status_code == second.status_code == 302
        assert second["Location"] == reverse("incidents:my-report", args=[case.reference])
        assert added(case) == 1
        assert case.timeline.filter(kind=TimelineKind.INFORMATION_ADDED).count() == 1
        page = reporter_client.get(second["Location"]).content.decode()
        assert page.count(MORE) == 1
        assert "What you added is on your report already. It is shown once." in page
        assert 'class="error"' not in page

    def test_each_page_carries_a_fresh_token_so_a_second_addition_is_kept(
        self, reporter_client, make_case
    ):
        """The same words sent again from a page loaded again are a second addition, on purpose."""
        case = make_case()
        first = add_token(page_of(reporter_client, case).content.decode())
        reporter_client.post(add_url(case), {"text": MORE, "client_token": first})
        second = add_token(page_of(reporter_client, case).content.decode())
        assert uuid.UUID(first) != uuid.UUID(second)
        reporter_client.post(add_url(case), {"text": MORE, "client_token": second})
        assert added(case) == 2

    def test_an_addition_without_a_token_is_still_taken(self, reporter_client, make_case):
        """A page served before the token existed still adds what was written."""
        case = make_case()
        response = reporter_client.post(add_url(case), {"text": MORE})
        assert response.status_code == 302
        assert CaseNote.objects.get(case=case).client_token is None

    def test_in_welsh(self, reporter_client, make_case, people):
        people["worker"].language = "cy"
        people["worker"].save(update_fields=["language"])
        case = make_case()
        token = str(uuid.uuid4())
        reporter_client.post(add_url(case), {"text": MORE, "client_token": token})
        second = reporter_client.post(add_url(case), {"text": MORE, "client_token": token})
        page = reporter_client.get(second["Location"]).content.decode().replace("&#x27;", "'")
        assert "Mae'r hyn a ychwanegoch ar eich adroddiad eisoes." in page


class TestOnlyTheReporterMayAdd:
    @pytest.mark.parametrize(
        "role", ["other_worker", "manager", "manager2", "hr", "dpo", "safeguarding", "admin"]
    )
    def test_anyone_else_gets_404_and_adds_nothing(self, client, make_case, people, role):
        """Through the page: the paged manager who may see the whole case, and everyone else,
        are told there is no such report, with or without a token the reporter used."""
        case = make_case()
        token = str(uuid.uuid4())
        services.add_report_information(
            case=case, actor=people["worker"], text=MORE, client_token=uuid.UUID(token)
        )
        client.force_login(people[role])
        for data in ({"text": "Not theirs to add."}, {"text": MORE, "client_token": token}):
            assert client.post(add_url(case), data).status_code == 404
        assert added(case) == 1


class TestARefusedAdditionComesBackAsTyped:
    """A refused addition is shown again on the report's page (400, as the case page does),
    holding what was sent and the reason next to the field; the rest of the page is all there,
    and the page is access-logged as any view of it is."""

    def test_nothing_written(self, reporter_client, make_case):
        case = make_case()
        token = str(uuid.uuid4())
        seen = last_log_id()

        response = reporter_client.post(add_url(case), {"text": "  ", "client_token": token})

        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "text") == "Say what you want to add."
        assert 'aria-describedby="id_text_error"' in body
        assert "Not saved. The form below says why." in body
        # The rest of the page: the report's status and what it is.
        assert f"<h1>{case.reference}</h1>" in body
        assert "Your report's status: Reported." in body
        # The same token, so the corrected form sent twice is still added once.
        assert add_token(body) == token
        assert new_log_rows(seen) == [
            (AccessAction.CHANGE, "reporter", "worker@example.org"),
            (AccessAction.VIEW_AS_REPORTER, "reporter", "worker@example.org"),
        ]
        assert added(case) == 0

    def test_too_long_keeps_what_was_typed(self, reporter_client, make_case):
        case = make_case()
        text = "She rang again and said more. " * 400  # over 10,000 characters
        response = reporter_client.post(
            add_url(case), {"text": text, "client_token": str(uuid.uuid4())}
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "text").startswith("Ensure this value has at most 10000 characters")
        assert text.strip() in add_form_of(body)
        assert added(case) == 0

    def test_the_corrected_form_sent_twice_is_added_once(self, reporter_client, make_case):
        case = make_case()
        token = str(uuid.uuid4())
        refused = reporter_client.post(add_url(case), {"text": "", "client_token": token})
        kept = add_token(refused.content.decode())
        for _tap in range(2):
            reporter_client.post(add_url(case), {"text": MORE, "client_token": kept})
        assert added(case) == 1

    def test_the_services_reason_is_shown_next_to_its_field(
        self, reporter_client, make_case, monkeypatch
    ):
        def refuse(**kwargs):
            raise ConcernlineError("Not added.", extra={"text": "Write it in words."})

        monkeypatch.setattr(services, "add_report_information", refuse)
        case = make_case()
        response = reporter_client.post(add_url(case), {"text": MORE})
        assert response.status_code == 400
        body = response.content.decode()
        assert error_for(body, "text") == "Write it in words."
        assert MORE in add_form_of(body)

    def test_a_token_that_is_not_one_is_refused_in_words_and_keeps_the_text(
        self, reporter_client, make_case
    ):
        case = make_case()
        response = reporter_client.post(add_url(case), {"text": MORE, "client_token": "1"})
        assert response.status_code == 400
        form = add_form_of(response.content.decode())
        reason = re.search(r'<div class="error" role="alert"><ul [^>]*><li>(.*?)</li>', form)
        assert reason
        assert (
            reason.group(1) == "This page is out of date. Load it again, then add what you wrote."
        )
        assert MORE in form
        assert added(case) == 0

    def test_a_case_closed_since_the_page_was_loaded_says_so_at_the_top(
        self, reporter_client, make_case, people
    ):
        """The page no longer offers the form, so its reason is a message, never a 500."""
        case = make_case(to="outcome")
        services.close_case(case=case, actor=people["manager"])
        response = reporter_client.post(add_url(case), {"text": MORE})
        assert response.status_code == 400
        body = response.content.decode()
        assert "The case is closed." in body
        assert 'name="text"' not in body
        assert f"<h1>{case.reference}</h1>" in body
        assert added(case) == 0

    def test_in_welsh(self, reporter_client, make_case, people):
        people["worker"].language = "cy"
        people["worker"].save(update_fields=["language"])
        case = make_case()
        response = reporter_client.post(add_url(case), {"text": ""})
        assert response.status_code == 400
        body = response.content.decode().replace("&#x27;", "'")
        assert error_for(body, "text") == "Dywedwch beth rydych am ei ychwanegu."
        assert "Heb ei gadw. Mae'r ffurflen isod yn dweud pam." in body

    def test_the_language_switcher_goes_back_to_the_report_page(self, reporter_client, make_case):
        """The refused page is shown at the address the form was sent to, which takes only a
        POST: switching language from it goes to the report's page, not to a 405."""
        case = make_case()
        refused = reporter_client.post(add_url(case), {"text": ""}).content.decode()
        back = re.search(r'name="next" value="([^"]+)"', refused).group(1)
        assert back == reverse("incidents:my-report", args=[case.reference])
        switched = reporter_client.post(reverse("set-language"), {"language": "cy", "next": back})
        assert reporter_client.get(switched["Location"]).status_code == 200

    @pytest.mark.parametrize("role", ["other_worker", "manager", "hr", "admin"])
    def test_someone_else_gets_404_not_the_page(self, client, make_case, people, role):
        """A refusal shows the reporter's page only to the reporter: anyone else is told there
        is no such report before anything they sent is looked at, and nothing is logged."""
        case = make_case()
        client.force_login(people[role])
        seen = last_log_id()
        response = client.post(add_url(case), {"text": ""})
        assert response.status_code == 404
        assert case.reference not in response.content.decode()
        assert new_log_rows(seen) == []


class TestAddReportInformationWithAToken:
    def test_the_same_token_again_is_already_done(self, make_case, people):
        case = make_case()
        token = uuid.uuid4()
        services.add_report_information(
            case=case, actor=people["worker"], text=MORE, client_token=token
        )
        with pytest.raises(services.AlreadyDone):
            services.add_report_information(
                case=case, actor=people["worker"], text=MORE, client_token=token
            )
        assert added(case) == 1

    @pytest.mark.parametrize("role", ["other_worker", "manager"])
    def test_the_token_is_checked_only_after_the_reporter_check(self, make_case, people, role):
        """Someone else learns nothing from a token: they are refused as for any token."""
        case = make_case()
        token = uuid.uuid4()
        services.add_report_information(
            case=case, actor=people["worker"], text=MORE, client_token=token
        )
        with pytest.raises(services.NotAllowed):
            services.add_report_information(
                case=case, actor=people[role], text=MORE, client_token=token
            )
        assert added(case) == 1

    def test_a_resend_after_the_case_closed_is_still_already_done(self, make_case, people):
        """It was added before the case closed: the resend says so, not that the case is shut."""
        case = make_case(to="outcome")
        token = uuid.uuid4()
        services.add_report_information(
            case=case, actor=people["worker"], text=MORE, client_token=token
        )
        services.close_case(case=case, actor=people["manager"])
        with pytest.raises(services.AlreadyDone):
            services.add_report_information(
                case=case, actor=people["worker"], text=MORE, client_token=token
            )
        with pytest.raises(services.IllegalTransition):
            services.add_report_information(
                case=case, actor=people["worker"], text=MORE, client_token=uuid.uuid4()
            )


@pytest.mark.django_db(transaction=True)
def test_two_taps_at_the_same_moment_add_it_once(make_case, people):
    """Each tap in its own connection, at once: the case's lock puts one after the other, so
    the second sees the first's addition (no IntegrityError from the constraint behind it)."""
    case = make_case()
    token = uuid.uuid4()
    start = threading.Barrier(2)
    outcomes = []

    def tap():
        try:
            start.wait()
            services.add_report_information(
                case=case, actor=people["worker"], text=MORE, client_token=token
            )
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
    assert added(case) == 1
