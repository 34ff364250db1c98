"""Whole journeys on a phone, with the session ending part-way: a care worker whose session went
idle or ended while a report was typed, and an on-call manager signing in (with the second
factor) from a page to act on the case."""

import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from incidents.models import Case, CaseStatus, ReportKind
from staff.security import IDLE_KEY

from .conftest import PHONE
from .test_offline_report import DRAFTS, fill_report
from .test_report_on_a_phone import PASSWORD, sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]


def session_of(context) -> SessionStore:
    key = next(c["value"] for c in context.cookies() if c["name"] == "sessionid")
    return SessionStore(session_key=key)


def idle_for_an_hour(context) -> None:
    session = session_of(context)
    session[IDLE_KEY] = time.time() - 3600
    session.save()


@pytest.fixture
def worker_phone(browser, live_server, people, rota):
    context = browser.new_context(viewport=PHONE, service_workers="block")
    page = context.new_page()
    sign_in(page, live_server.url, people["worker"].email)
    yield context, page
    context.close()


def posts_to_report(page) -> list[str]:
    sent = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.url)
            if request.method == "POST" and request.url.endswith("/report/")
            else None
        ),
    )
    return sent


def test_a_report_from_an_idle_session_says_it_was_received(live_server, worker_phone):
    """The report is taken from a session idle past the limit, and the page showing it signs
    out. The phone must say the report arrived, not fall back to a bare sign-in page (where a
    worker at 3 a.m. would type it all again, and open a second case)."""
    context, page = worker_phone
    page.goto(f"{live_server.url}/report/?kind={ReportKind.CONCERN_COLLEAGUE}")
    fill_report(page, "Typed slowly, over an hour.")
    idle_for_an_hour(context)
    sent = posts_to_report(page)

    page.get_by_role("button", name="Send report").click()
    status = page.locator("#draft-status")
    expect(status).to_contain_text("Received, reference")
    case = Case.objects.get()
    assert case.reference in status.inner_text()
    assert case.report.narrative == "Typed slowly, over an hour."
    assert len(sent) == 1  # sent once, not again as a plain form
    assert page.locator("textarea").input_value() == ""  # nothing left to send twice


def test_a_draft_sent_after_the_session_went_idle_says_it_was_received(live_server, worker_phone):
    context, page = worker_phone
    page.goto(f"{live_server.url}/report/?kind={ReportKind.WORRYING_INFORMATION}")
    page.route(
        "**/report/",
        lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
    )
    fill_report(page, "Sent with no signal.")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#draft-status")).to_contain_text("Not sent yet")
    idle_for_an_hour(context)  # the signal comes back an hour later

    page.unroute("**/report/")
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    status = page.locator("#draft-status")
    expect(status).to_contain_text("Received, reference")
    case = Case.objects.get()
    assert case.reference in status.inner_text()
    assert "could not be sent" not in status.inner_text()
    assert page.evaluate(DRAFTS) == 0


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_report_sent_after_the_session_ended_says_it_was_not_sent(
    live_server, browser, people, rota, javascript
):
    context = browser.new_context(
        viewport=PHONE, service_workers="block", java_script_enabled=javascript
    )
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["worker"].email)
        page.goto(f"{live_server.url}/report/?kind={ReportKind.CONCERN_COLLEAGUE}")
        fill_report(page, "The session ended while I typed.")
        session_of(context).delete()  # ended on the server: the working day is over

        page.get_by_role("button", name="Send report").click()
        page.wait_for_url("**/accounts/login/?next=/report/")
        assert Case.objects.count() == 0
        expect(page.locator(".messages")).to_contain_text(
            "You were signed out, so your report was not sent."
        )
    finally:
        context.close()


def test_an_on_call_manager_signs_in_with_the_second_factor_and_takes_the_case(
    live_server, browser, people, rota, settings, outbox
):
    """From the page to the case: the case's address, the sign-in, the code, and back to the
    case (not the report page) to acknowledge and take it into review, at a phone's width."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from incidents import services
    from staff.services import confirm_totp_setup, start_totp_setup

    settings.SECOND_FACTOR_REQUIRED = True
    manager = people["manager"]
    start_totp_setup(user=manager)
    device = TOTPDevice.objects.get(user=manager)
    _device, recovery_codes = confirm_totp_setup(
        user=manager,
        token=f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}",
    )
    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Told me she is being hurt at home.",
        grounds=["abuse_or_harm"],
    )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/cases/{case.reference}/")
        page.get_by_label("Email address").fill(manager.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/accounts/two-factor/?next=*")
        page.get_by_label("Code from your authenticator app, or a recovery code").fill(
            recovery_codes[0]
        )
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"**/cases/{case.reference}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.get_by_role("button", name="Acknowledge: I am taking this").click()
        expect(page.locator(".messages")).to_contain_text("You now own this case.")
        page.get_by_role("button", name="Start the review").click()
        expect(page.locator("dd.status")).to_have_text("Under review")
    finally:
        context.close()
    case.refresh_from_db()
    assert case.status == CaseStatus.UNDER_REVIEW and case.owner == manager
