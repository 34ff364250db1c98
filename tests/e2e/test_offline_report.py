"""The report page with no signal: a draft kept on the phone, sent when the signal returns, never
sent twice and never left behind for the next person on a shared phone. Also each kind reported
from a phone, and the weight of the report flow."""

import gzip
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from incidents.models import Case, ReportKind

from .conftest import PHONE
from .test_report_on_a_phone import screenshots, sign_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]

DRAFTS = """() => Object.keys(localStorage)
  .filter(k => k.startsWith("concernline-draft:")).length"""


def fill_report(page, narrative):
    """Answer every question of whichever kind's form is showing (the first answer offered)."""
    form = page.locator("form[data-report]")
    for box in form.locator("input[type=text]").all():
        box.fill("SU-1")
    form.locator("textarea").fill(narrative)
    for fieldset in form.locator("fieldset").all():
        fieldset.locator("input[type=radio], input[type=checkbox]").first.check()


def open_kind(page, label):
    page.get_by_label(label).check()
    page.get_by_role("button", name="Continue").click()


@pytest.mark.parametrize("kind", ReportKind.values)
def test_each_kind_from_a_phone(live_server, phone, people, rota, outbox, kind):
    sign_in(phone, live_server.url, people["worker"].email)
    assert phone.url.endswith("/report/")  # the first page after signing in
    # The on-call manager is one tap away.
    assert phone.locator("a[href='tel:+447700900101']").count() == 1
    open_kind(phone, str(ReportKind(kind).label))
    fill_report(phone, f"A {kind} reported from a phone.")
    phone.get_by_role("button", name="Send report").click()
    phone.wait_for_url("**/my-reports/C-*/")
    case = Case.objects.get()
    assert case.kind == kind
    assert f"Your reference is {case.reference}" in phone.get_by_role("status").inner_text()


def test_draft_with_no_signal_is_sent_when_the_signal_returns(
    live_server,
    browser,
    people,
    rota,
    outbox,
    screenshots,  # noqa: F811
):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["worker"].email)
        page.goto(f"{live_server.url}/report/?kind={ReportKind.URGENT_DISCLOSURE}")
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
        page.reload()  # now through the service worker, which keeps a copy

        context.set_offline(True)
        page.reload()  # no signal: the page still opens, from the phone
        assert "phone 999 or 112" in page.locator("main").inner_text()
        fill_report(page, "Told me she is being hurt at home.")
        page.get_by_role("button", name="Send report").click()
        status = page.locator("#draft-status")
        expect(status).to_contain_text("Not sent yet")
        assert page.evaluate(DRAFTS) == 1
        assert Case.objects.count() == 0
        page.screenshot(path=str(screenshots / "report-offline-draft.png"), full_page=True)

        context.set_offline(False)
        page.wait_for_function(
            "() => document.getElementById('draft-status').textContent.includes('Received')"
        )
        case = Case.objects.get()
        assert f"Received, reference {case.reference}" in status.inner_text()
        assert case.urgent and case.report.narrative == "Told me she is being hurt at home."
        assert page.evaluate(DRAFTS) == 0
        assert outbox, "the urgent draft paged the on-call manager once sent"
        # The report's own page, opened from there, says so too: the script's sending did not
        # use up its "Received".
        status.get_by_role("link", name=case.reference).click()
        page.wait_for_url(f"**/my-reports/{case.reference}/")
        assert f"Your reference is {case.reference}" in page.get_by_role("status").inner_text()
    finally:
        context.close()


def test_a_draft_sent_twice_is_one_case(live_server, browser, people, rota):
    """The signal drops after the server took the report but before the phone heard back: the
    draft keeps its client_token, so sending it again returns the same case."""
    context = browser.new_context(viewport=PHONE, service_workers="block")
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["worker"].email)
        page.goto(f"{live_server.url}/report/?kind={ReportKind.WORRYING_INFORMATION}")

        def lost_reply(route):
            if route.request.method == "POST":
                route.fetch()  # the server takes it...
                route.abort()  # ...and the reply is lost
            else:
                route.continue_()

        page.route("**/report/", lost_reply)
        fill_report(page, "Heard something worrying.")
        page.get_by_role("button", name="Send report").click()
        expect(page.locator("#draft-status")).to_contain_text("Not sent yet")
        assert Case.objects.count() == 1
        page.unroute("**/report/")
        page.evaluate("() => window.dispatchEvent(new Event('online'))")
        page.wait_for_function(
            "() => document.getElementById('draft-status').textContent.includes('Received')"
        )
        case = Case.objects.get()  # still one
        assert case.reference in page.locator("#draft-status").inner_text()
    finally:
        context.close()


def test_signing_out_wipes_drafts(live_server, browser, people, rota):
    context = browser.new_context(viewport=PHONE, service_workers="block")
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["worker"].email)
        page.goto(f"{live_server.url}/report/?kind={ReportKind.CONCERN_COLLEAGUE}")
        page.route(
            "**/report/",
            lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
        )
        fill_report(page, "Left on a shared phone.")
        page.get_by_role("button", name="Send report").click()
        expect(page.locator("#draft-status")).to_contain_text("Not sent yet")
        assert page.evaluate(DRAFTS) == 1

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_load_state()
        assert page.evaluate(DRAFTS) == 0

        sign_in(page, live_server.url, people["other_worker"].email)
        assert page.locator("#draft-status").is_hidden()
        assert Case.objects.count() == 0
    finally:
        context.close()


def test_a_new_session_never_sees_an_old_draft(live_server, browser, people, rota):
    """Even a draft left behind without signing out (a session that simply ended) is wiped by
    the next person's first page."""
    context = browser.new_context(viewport=PHONE, service_workers="block")
    page = context.new_page()
    try:
        sign_in(page, live_server.url, people["other_worker"].email)
        page.evaluate(
            """() => localStorage.setItem("concernline-draft:someone-else",
                 JSON.stringify([{id: "x", action: "/report/", fields: [["kind", "x"]]}]))"""
        )
        page.reload()
        assert page.evaluate(DRAFTS) == 0
        assert page.locator("#draft-status").is_hidden()
    finally:
        context.close()


def test_report_flow_weighs_under_30_kb_and_stays_on_this_site(live_server, browser, people, rota):
    """HTML, CSS and JS of the whole report flow (kind step, form, received page), each counted
    once and gzip-compressed as whitenoise and the front end serve them."""
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    seen = {}
    page.on("request", lambda request: seen.setdefault(request.url, request.method))
    try:
        sign_in(page, live_server.url, people["worker"].email)
        seen.clear()  # the sign-in page is not part of the report flow
        page.goto(f"{live_server.url}/report/")
        open_kind(page, str(ReportKind.URGENT_DISCLOSURE.label))
        fill_report(page, "Weighing the page.")
        page.get_by_role("button", name="Send report").click()
        page.wait_for_url("**/my-reports/C-*/")
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")

        origin = urlsplit(live_server.url).netloc
        assert {urlsplit(url).netloc for url in seen} == {origin}
        total = 0
        for url, method in seen.items():
            if method == "GET":  # the form's POST is answered by a bodiless redirect
                total += len(gzip.compress(page.request.get(url).body()))
        assert {urlsplit(u).path.rsplit(".", 1)[-1] for u in seen} >= {"js", "css"}
        print(f"report flow: {total} bytes compressed")
        assert total <= 30 * 1024, f"report flow is {total} bytes compressed"
    finally:
        context.close()
