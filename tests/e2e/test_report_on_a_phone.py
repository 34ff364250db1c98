"""A care worker on a phone reports an urgent disclosure and sees the reference."""

import os
from pathlib import Path

import pytest

from incidents.models import Case, CaseStatus

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path):
    """Where screenshots go: docs/screenshots with UPDATE_SCREENSHOTS=1 (for the README),
    otherwise a temporary folder, so a test run leaves the tree as it found it."""
    return DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_urgent_disclosure_from_a_phone(live_server, phone, people, rota, outbox, screenshots):
    sign_in(phone, live_server.url, people["worker"].email)

    # The first thing on the report page is the emergency line.
    first_text = phone.locator("main").inner_text().strip().splitlines()[0]
    assert "phone 999 or 112" in first_text
    phone.screenshot(path=str(screenshots / "report-page.png"), full_page=True)

    phone.get_by_label("Urgent disclosure").check()
    phone.get_by_role("button", name="Continue").click()
    # Step two: the emergency line still comes first, then only this kind's questions.
    assert "phone 999 or 112" in phone.locator("main").inner_text().strip().splitlines()[0]
    assert phone.get_by_label("Which colleague?").count() == 0
    phone.get_by_label("Abuse or harm (safeguarding)").check()
    phone.get_by_label("What happened?").fill("Told me she is being hurt at home.")
    phone.get_by_label("Service user reference (not their name)").fill("SU-1001")
    phone.get_by_role("button", name="Send report").click()

    received = phone.get_by_role("status")
    assert "Your reference is C-" in received.inner_text()
    phone.screenshot(path=str(screenshots / "report-received.png"), full_page=True)
    case = Case.objects.get()
    assert case.reference in received.inner_text()
    assert case.status == CaseStatus.REPORTED and case.urgent
    # Said once, straight after sending (the page report.js fetched on the way did not use it
    # up); opened again, the page gives the report's status.
    phone.reload()
    assert "Your report's status: Reported." in phone.locator("main").inner_text()
    assert "Your reference is" not in phone.locator("main").inner_text()


def test_missing_grounds_are_explained_next_to_the_field(live_server, phone, people, rota):
    sign_in(phone, live_server.url, people["worker"].email)
    phone.get_by_label("Urgent disclosure").check()
    phone.get_by_role("button", name="Continue").click()
    phone.get_by_label("What happened?").fill("Something happened.")
    phone.get_by_role("button", name="Send report").click()

    error = phone.locator("#id_grounds_error")
    assert "Tick at least one reason" in error.inner_text()
    assert phone.locator("fieldset[aria-describedby='id_grounds_error']").count() == 1
    assert Case.objects.count() == 0


def test_works_with_javascript_off(live_server, browser, people, rota):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["worker"].email)
        page.get_by_label("Urgent disclosure").check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("A crime").check()
        page.get_by_label("What happened?").fill("Reported without any script.")
        page.get_by_role("button", name="Send report").click()
        assert "Your reference is C-" in page.get_by_role("status").inner_text()
        page.reload()
        assert "Your report's status: Reported." in page.locator("main").inner_text()
        assert "Your reference is" not in page.locator("main").inner_text()
    finally:
        context.close()
