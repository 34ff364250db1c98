"""WCAG 2.2 AA on every staff page, checked by axe-core in Chromium at a phone's viewport.

axe-core is a test-only tool, pinned in package.json and installed by `make test` (`npm ci`);
it is injected into each page, so this one context bypasses the site's CSP (script-src 'self')."""

from pathlib import Path

import pytest

from incidents import retention, services
from incidents.models import ReportKind
from tests.staff.guidance_helpers import publish

from .conftest import PHONE
from .test_report_on_a_phone import screenshots, sign_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture
def axe_page(browser):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does).")
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True, service_workers="block"
    )
    page = context.new_page()
    yield page
    context.close()


def violations(page, url):
    """Open `url` and return axe's violations, one readable line each."""
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    return check(page, url)


def check(page, label):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        f"{label}: {v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:5])
        for v in result["violations"]
    ]


SMALL_TARGETS = """() => [...document.querySelectorAll(
    "main button, main select, main textarea, main label.choice, a.call, "
    + "main input:not([type=hidden]):not([type=radio]):not([type=checkbox])")]
  .filter(el => { const r = el.getBoundingClientRect(); return r.height > 0 && r.height < 44; })
  .map(el => el.outerHTML.slice(0, 80))"""


def test_report_pages_have_44px_targets(live_server, axe_page, people, rota):
    """Everything a thumb presses on the report pages is at least 44px tall (WCAG 2.5.5). A radio
    or tick box is pressed through its whole label (label.choice), which is what is measured."""
    sign_in(axe_page, live_server.url, people["worker"].email)
    axe_page.wait_for_url("**/report/")
    small = axe_page.evaluate(SMALL_TARGETS)
    for kind in ReportKind.values:
        axe_page.goto(f"{live_server.url}/report/?kind={kind}")
        small += axe_page.evaluate(SMALL_TARGETS)
    assert small == []


def test_every_staff_page_passes_axe(live_server, axe_page, people, rota, outbox):
    base = live_server.url
    publish(people["admin"])
    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        urgent=True,
        grounds=["crime"],
        narrative="Told me she is being hurt at home.",
    )
    found = []

    found += violations(axe_page, f"{base}/accounts/login/")
    sign_in(axe_page, base, people["worker"].email)
    axe_page.wait_for_url("**/report/")
    found += check(axe_page, "report (kind step)")
    found += violations(axe_page, f"{base}/report/?kind=nonsense")
    for kind in ReportKind.values:
        found += violations(axe_page, f"{base}/report/?kind={kind}")
        axe_page.get_by_role("button", name="Send report").click()  # empty: every error shown
        axe_page.locator(".error").first.wait_for()
        found += check(axe_page, f"report {kind} with errors")
    for path in (
        "/my-reports/",
        f"/my-reports/{case.reference}/",
        "/oncall/",
        "/staff/guidance/",
        "/me/paging/",
    ):
        found += violations(axe_page, base + path)
    # A refused addition comes back on the report's page with its reason next to the field.
    axe_page.goto(f"{base}/my-reports/{case.reference}/")
    axe_page.locator("#id_text").evaluate("box => box.removeAttribute('required')")
    axe_page.get_by_role("button", name="Add", exact=True).click()
    axe_page.locator("#id_text_error").wait_for()
    found += check(axe_page, "report page with a refused addition")
    axe_page.get_by_role("button", name="Sign out").click()

    sign_in(axe_page, base, people["manager"].email)  # the paged manager
    for path in (
        "/cases/",
        f"/cases/{case.reference}/",
        f"/oncall/rotas/{rota.id}/",
        "/staff/team/",
        "/outcomes/",
        "/accounts/two-factor/setup/",
    ):
        found += violations(axe_page, base + path)
    # A refused form comes back on the case page with its reason next to the field (the
    # browser's own check of the empty box is set aside, as an older browser would not make it).
    axe_page.goto(f"{base}/cases/{case.reference}/")
    axe_page.locator("#id_text").evaluate("box => box.removeAttribute('required')")
    axe_page.get_by_role("button", name="Add note").click()
    axe_page.locator("#id_text_error").wait_for()
    found += check(axe_page, "case page with a refused note")
    axe_page.get_by_role("button", name="Sign out").click()

    sign_in(axe_page, base, people["dpo"].email)
    found += violations(axe_page, f"{base}/breach-log/")
    found += violations(axe_page, f"{base}/subject-access/")
    axe_page.fill("#id_reason", "Request of 28 Nov, ref DPO-1")  # but no subject given
    axe_page.get_by_role("button", name="Download the export").click()
    axe_page.wait_for_selector(".error")
    found += check(axe_page, "/subject-access/ with errors")
    retention.place_legal_hold(case=case, actor=people["dpo"], reason="Claim ET/1")
    found += violations(axe_page, f"{base}/retention/")

    assert found == [], "\n".join(found)
