"""A non-urgent report from a phone, and a reviewer taking a case to its outcome on a phone."""

import pytest

from incidents import services
from incidents.models import Case, CaseStatus, ReportKind

from .conftest import PHONE
from .test_report_on_a_phone import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_disclosure_request_from_a_phone(live_server, phone, people, rota, outbox):
    sign_in(phone, live_server.url, people["worker"].email)
    phone.get_by_label("Someone asked me to share information").check()
    phone.get_by_role("button", name="Continue").click()

    # Guidance 3.2 before the questions; no question from another kind.
    assert "you need permission from the person concerned" in phone.locator(".advice").inner_text()
    assert phone.get_by_label("Which colleague?").count() == 0
    assert phone.get_by_label("Abuse or harm (safeguarding)").count() == 0

    phone.get_by_label("Who asked for the information?").fill("A neighbour")
    phone.get_by_label("What did they want it for?").fill("To check she is well")
    phone.get_by_label("Asked and refused").check()
    phone.get_by_label("What happened?").fill("The neighbour asked about her medication.")
    phone.get_by_role("button", name="Send report").click()

    assert "Your reference is C-" in phone.get_by_role("status").inner_text()
    case = Case.objects.get()
    assert case.kind == ReportKind.DISCLOSURE_REQUEST and not case.urgent
    assert case.report.details == {
        "requester": "A neighbour",
        "purpose": "To check she is well",
        "consent": "refused",
    }
    assert outbox == []  # not urgent: nobody paged

    # The reporter adds something later, on the same page.
    phone.get_by_label("Add information to your report").fill("She asked again today.")
    phone.get_by_role("button", name="Add").click()
    assert "She asked again today." in phone.locator("main").inner_text()


def test_reviewer_records_an_outcome_on_a_phone(live_server, browser, people, rota, screenshots):
    people["worker"].line_manager = people["manager2"]
    people["worker"].save()
    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.CONCERN_COLLEAGUE,
        narrative="Read a care plan aloud in the canteen.",
        details={"colleague": "B. Colleague"},
    )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["manager2"].email)
        page.goto(f"{live_server.url}/cases/?list=review")
        page.get_by_role("link", name=case.reference).click()
        # Nothing wider than the phone: the case page reads without sideways scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        page.get_by_role("button", name="Start the review").click()
        assert page.locator("dd.status").inner_text() == "Under review"
        page.screenshot(path=str(screenshots / "case-review.png"), full_page=True)
        page.get_by_label("Learning or training need").check()
        page.get_by_role("button", name="Record outcome").click()
        assert page.locator("dd.outcome").inner_text() == "Learning or training need"
        page.get_by_role("button", name="Close the case").click()
        assert page.locator("dd.status").inner_text() == "Closed"
    finally:
        context.close()
    case.refresh_from_db()
    assert case.status == CaseStatus.CLOSED and case.outcome == "learning_need"
