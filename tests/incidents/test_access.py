"""Need-to-know, as a matrix: every role against every way into a case.

A refusal is a 404 that looks exactly like a reference that does not exist, and writes nothing;
every allowed look writes exactly one access-log row."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from incidents import services, views
from incidents.access import Basis
from incidents.models import AccessAction, AccessLogEntry, Case, ReportKind, TimelineKind
from incidents.services import submit_report
from oncall.models import Page
from staff.services import issue_api_token

NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her."
SERVICE_USER = "SU-40411"
WHO_WAS_TOLD = "Duty social worker"
MANAGER_NAME = "Morwenna Quill"  # the paged manager: must never reach the reporter

ROLES = [
    "anonymous",
    "worker",
    "other_worker",
    "manager",
    "manager2",
    "hr",
    "dpo",
    "safeguarding",
    "admin",
]

BREACH_DETAILS = {
    "how_known": "seen",
    "intent": "accidental",
    "information": "A care plan",
    "personal_data": "yes",
}

CASES = {
    "safeguarding": {"kind": ReportKind.URGENT_DISCLOSURE, "grounds": ["abuse_or_harm"]},
    "crime": {"kind": ReportKind.URGENT_DISCLOSURE, "grounds": ["crime"]},
    "breach": {
        "kind": ReportKind.INAPPROPRIATE_BREACH,
        "grounds": [],
        "urgent": True,
        "details": BREACH_DETAILS,
    },
    # Taken by the paged manager through review to a disciplinary referral: HR sees it now.
    "referred": {"kind": ReportKind.URGENT_DISCLOSURE, "grounds": ["crime"]},
}

# Who may open each case in full, and on what basis. The reporter is not here: they see only
# their own view (my-report, the API). Everyone else, HR and the superuser included, is refused.
FULL_ACCESS = {
    "safeguarding": {"manager": Basis.PAGED, "safeguarding": Basis.SAFEGUARDING},
    "crime": {"manager": Basis.PAGED},
    "breach": {"manager": Basis.PAGED, "dpo": Basis.DPO},
    "referred": {"manager": Basis.OWNER, "hr": Basis.HR},
}
# Their own view, status only: the reporter alone, whatever the case.
REPORTER_ACCESS = {"worker": Basis.REPORTER}
# Any case's access log: the DPO alone.
AUDIT_ACCESS = {"dpo": Basis.DPO_AUDIT}
SHAPELESS = (REPORTER_ACCESS, AUDIT_ACCESS)
ATTACHMENT = b"%PDF-1.4 statement of events"


@pytest.fixture
def open_case(people, rota, django_capture_on_commit_callbacks):
    """Submit a report of the given shape as `worker`; the on-call `manager` is paged."""
    people["manager"].full_name = MANAGER_NAME
    people["manager"].save(update_fields=["full_name"])

    def make(shape: str) -> Case:
        fields = {
            "reporter": people["worker"],
            "narrative": NARRATIVE,
            "service_user_ref": SERVICE_USER,
            "who_was_told": WHO_WAS_TOLD,
            **CASES[shape],
        }
        with django_capture_on_commit_callbacks(execute=True):
            case = submit_report(**fields)
        assert Page.objects.filter(alert__owner_id=case.id, recipient=people["manager"]).exists()
        if shape == "referred":
            services.start_review(case=case, actor=people["manager"])
            services.record_outcome(case=case, actor=people["manager"], outcome="disciplinary")
        attachment = services.add_attachment(
            case=case,
            actor=people["manager"],
            upload=SimpleUploadedFile("statement.pdf", ATTACHMENT),
        )
        case.refresh_from_db()
        case.attachment = attachment
        return case

    return make


def web_client(client, people, role):
    if role != "anonymous":
        client.force_login(people[role])
    return client


def api_client(people, role):
    api = APIClient()
    if role != "anonymous":
        _token, key = issue_api_token(user=people[role], name="test")
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


# name: (url name, method, client, action logged, status when allowed, who is allowed)
VIEWS = {
    "case-detail": ("incidents:case-detail", "get", "web", AccessAction.VIEW, 200, FULL_ACCESS),
    "my-report": (
        "incidents:my-report",
        "get",
        "web",
        AccessAction.VIEW_AS_REPORTER,
        200,
        REPORTER_ACCESS,
    ),
    "api-report-detail": (
        "api:report-detail",
        "get",
        "api",
        AccessAction.API_VIEW,
        200,
        REPORTER_ACCESS,
    ),
    "api-case-detail": ("api:case-detail", "get", "api", AccessAction.API_VIEW, 200, FULL_ACCESS),
    "attachment-download": (
        "incidents:attachment-download",
        "get",
        "web",
        AccessAction.DOWNLOAD,
        200,
        FULL_ACCESS,
    ),
    "case-access-log": (
        "incidents:case-access-log",
        "get",
        "web",
        AccessAction.ACCESS_LOG,
        200,
        AUDIT_ACCESS,
    ),
    "case-note": ("incidents:case-note", "post", "web", AccessAction.CHANGE, 302, FULL_ACCESS),
    "my-report-add": (
        "incidents:my-report-add",
        "post",
        "web",
        AccessAction.CHANGE,
        302,
        REPORTER_ACCESS,
    ),
    "api-report-information": (
        "api:report-information",
        "post",
        "api",
        AccessAction.CHANGE,
        201,
        REPORTER_ACCESS,
    ),
    # Last: acknowledging changes the case.
    "case-acknowledge": (
        "incidents:case-acknowledge",
        "post",
        "web",
        AccessAction.ACKNOWLEDGE,
        302,
        FULL_ACCESS,
    ),
}


def expected_basis(view: str, shape: str, role: str) -> Basis | None:
    allowed = VIEWS[view][5]
    table = allowed if any(allowed is t for t in SHAPELESS) else allowed[shape]
    return table.get(role)


# What each write sends (the access check comes before any of it is read).
BODIES = {
    "case-note": {"text": "Spoke to the reporter."},
    "my-report-add": {"text": "One more thing."},
    "api-report-information": {"text": "One more thing."},
}


def url_args(url_name, reference, case=None):
    if url_name == "incidents:attachment-download":
        return [reference, case.attachment.id if case is not None else 1]
    return [reference]


def fetch(client, method, url_name, reference, case=None):
    url = reverse(url_name, args=url_args(url_name, reference, case))
    view = next((v for v, spec in VIEWS.items() if spec[0] == url_name), None)
    data = BODIES.get(view)
    if data is None:
        return getattr(client, method)(url, REMOTE_ADDR="203.0.113.7")
    return getattr(client, method)(url, data, REMOTE_ADDR="203.0.113.7")


def check_cell(clients, people, case, role, shape, view, capture):
    """One cell of the matrix: the status it gives and the access-log rows it writes.
    Returns a list of what went wrong, empty when the cell is right."""
    url_name, method, client_kind, action, allowed_status, _who = VIEWS[view]
    client = clients[client_kind]
    seen = AccessLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with capture(execute=True):
        response = fetch(client, method, url_name, case.reference, case)
    logged = list(AccessLogEntry.objects.filter(id__gt=seen))  # append-only: only the new
    problems = []

    def expect(condition, what):
        if not condition:
            problems.append(f"{role} {view} on {shape} case: {what}")

    if role == "anonymous":
        if client_kind == "api":
            expect(response.status_code in (401, 403), f"status {response.status_code}")
            expect(
                set(response.json().get("error", {})) == {"code", "message", "fields"},
                f"unstructured error {response.content!r}",
            )
        else:
            expect(response.status_code == 302, f"status {response.status_code}, not 302")
            expect(response.get("Location", "").startswith(reverse("login")), "not sent to login")
        expect(not logged, f"{len(logged)} access-log rows for a refusal")
        return problems

    basis = expected_basis(view, shape, role)
    if basis is None:
        expect(response.status_code == 404, f"status {response.status_code}, not 404")
        # Indistinguishable from a reference that was never issued.
        missing = fetch(client, method, url_name, "C-2099-9999", case)
        expect(missing.status_code == 404, "unknown reference is not 404")
        expect(response.content == missing.content, "refusal differs from an unknown reference")
        if client_kind == "api":
            code = response.json().get("error", {}).get("code")
            expect(code == "not_found", f"API error code {code!r}")
        expect(not logged, f"{len(logged)} access-log rows for a refusal")
        return problems

    expect(response.status_code == allowed_status, f"status {response.status_code}")
    expect(len(logged) == 1, f"{len(logged)} access-log rows, not exactly 1")
    if logged:
        entry = logged[0]
        expect(entry.case_id == case.id, "logged against another case")
        expect(entry.user_id == people[role].id, "logged against another user")
        expect(entry.action == action, f"action {entry.action}")
        expect(entry.basis == basis, f"basis {entry.basis}, not {basis}")
        expected_path = reverse(url_name, args=url_args(url_name, case.reference, case))
        expect(entry.path == expected_path, f"path {entry.path}")
        expect(entry.ip_address == "203.0.113.7", f"ip {entry.ip_address}")
    if view == "case-detail":
        expect(NARRATIVE in response.content.decode(), "full view lacks the narrative")
    if view == "attachment-download":
        expect(b"".join(response.streaming_content) == ATTACHMENT, "another file")
        expect(response["Content-Disposition"].startswith("attachment"), "not a download")
    if client_kind == "api":
        expect(response.json().get("reference") == case.reference, "API gave another case")
    return problems


@pytest.mark.parametrize("shape", list(CASES))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(client, people, open_case, role, shape, django_capture_on_commit_callbacks):
    """Every view of one case for one role, each checked against the tables above."""
    case = open_case(shape)
    clients = {"web": web_client(client, people, role), "api": api_client(people, role)}
    problems = []
    for view in VIEWS:
        problems += check_cell(
            clients, people, case, role, shape, view, django_capture_on_commit_callbacks
        )
    assert problems == []

    case.refresh_from_db()
    if shape == "referred":
        assert case.status == "outcome_recorded" and case.owner == people["manager"]
    elif role == "manager":
        assert case.status == "acknowledged" and case.owner == people["manager"]
    else:
        # Nobody but a person paged may take the case, whatever else they may see.
        assert case.status == "reported" and case.owner is None


def test_api_session_login_follows_the_same_rules(people, open_case):
    case = open_case("safeguarding")
    url = reverse("api:report-detail", args=[case.reference])
    api = APIClient()
    api.force_login(people["manager"])
    assert api.get(url).status_code == 404
    api.force_login(people["worker"])
    assert api.get(url).status_code == 200
    assert AccessLogEntry.objects.filter(action=AccessAction.API_VIEW).count() == 1


LIST_EXPECTED = {
    "worker": set(),
    "other_worker": set(),
    "manager": {"safeguarding", "crime", "breach", "referred"},
    "manager2": set(),
    "hr": {"referred"},
    "dpo": {"breach"},
    "safeguarding": {"safeguarding"},
    "admin": set(),
}


def test_case_list_shows_only_cases_on_need_to_know(client, people, open_case):
    """One set of cases, looked at by every role in turn: which references each list shows."""
    cases = {shape: open_case(shape) for shape in CASES}
    shown_to = {}
    for role in ROLES:
        client.logout()
        response = web_client(client, people, role).get(reverse("incidents:case-list"))
        if role == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
            continue
        assert response.status_code == 200
        body = response.content.decode()
        shown_to[role] = {shape for shape, case in cases.items() if case.reference in body}
    assert shown_to == LIST_EXPECTED


def test_each_case_a_list_shows_is_access_logged(client, people, open_case):
    cases = {shape: open_case(shape) for shape in CASES}
    before = set(AccessLogEntry.objects.values_list("id", flat=True))

    web_client(client, people, "dpo").get(reverse("incidents:case-list"))

    rows = AccessLogEntry.objects.exclude(id__in=before)
    assert [(r.case_id, r.user_id, r.action, r.basis) for r in rows] == [
        (cases["breach"].id, people["dpo"].id, AccessAction.LIST, "case_list")
    ]
    assert rows[0].path == reverse("incidents:case-list")


def test_a_long_list_comes_a_page_at_a_time_and_logs_only_that_page(client, people, rota):
    cases = [
        submit_report(
            reporter=people["worker"],
            kind=ReportKind.CONCERN_COLLEAGUE,
            narrative=NARRATIVE,
            details={"colleague": "B. Staff"},
        )
        for _ in range(views.CASES_PER_PAGE + 2)
    ]
    newest_first = [c.reference for c in reversed(cases)]
    client.force_login(people["manager"])

    first = client.get(reverse("incidents:case-list")).content.decode()
    second = client.get(reverse("incidents:case-list") + "?list=all&page=2").content.decode()

    assert all(ref in first for ref in newest_first[: views.CASES_PER_PAGE])
    assert not any(ref in first for ref in newest_first[views.CASES_PER_PAGE :])
    assert all(ref in second for ref in newest_first[views.CASES_PER_PAGE :])
    assert "Page 1 of 2" in first and "?list=all&amp;page=2" in first
    listed = AccessLogEntry.objects.filter(action=AccessAction.LIST)
    assert listed.count() == len(cases)
    assert set(listed.values_list("case_id", flat=True)) == {c.id for c in cases}


def test_unknown_reference_is_404_even_for_the_paged_manager(client, people, open_case):
    open_case("crime")
    client.force_login(people["manager"])
    for name, method in [
        ("incidents:case-detail", "get"),
        ("incidents:case-acknowledge", "post"),
        ("incidents:my-report", "get"),
    ]:
        assert fetch(client, method, name, "C-2099-9999").status_code == 404
    assert AccessLogEntry.objects.count() == 0


def test_inactive_manager_loses_access(client, people, open_case):
    case = open_case("crime")
    client.force_login(people["manager"])
    assert fetch(client, "get", "incidents:case-detail", case.reference).status_code == 200
    people["manager"].is_active = False
    people["manager"].save(update_fields=["is_active"])
    response = fetch(client, "get", "incidents:case-detail", case.reference)
    assert response.status_code in (302, 404)
    assert AccessLogEntry.objects.count() == 1


def test_owner_keeps_access_after_acknowledging(
    client, people, open_case, django_capture_on_commit_callbacks
):
    case = open_case("crime")
    client.force_login(people["manager"])
    with django_capture_on_commit_callbacks(execute=True):
        fetch(client, "post", "incidents:case-acknowledge", case.reference)
    seen = AccessLogEntry.objects.latest("id").id  # the log is append-only: look past it
    assert fetch(client, "get", "incidents:case-detail", case.reference).status_code == 200
    assert AccessLogEntry.objects.get(id__gt=seen).basis == Basis.OWNER


def test_assigned_reviewer_may_open_the_case(client, people, open_case):
    case = open_case("crime")
    Case.objects.filter(pk=case.pk).update(reviewer=people["hr"])
    client.force_login(people["hr"])
    assert fetch(client, "get", "incidents:case-detail", case.reference).status_code == 200
    assert AccessLogEntry.objects.get().basis == Basis.REVIEWER


class TestReporterSeesOnlyTheirOwnEntries:
    """The reporter sees status, never the narrative, nor who was paged or took the case."""

    SECRETS = (
        NARRATIVE,
        "Secret Lane",
        SERVICE_USER,
        WHO_WAS_TOLD,
        MANAGER_NAME,
        "manager@example.org",
        "+447700900101",
    )

    @pytest.fixture
    def acknowledged_case(self, people, open_case, outbox, django_capture_on_commit_callbacks):
        case = open_case("safeguarding")
        client = APIClient()
        client.force_login(people["manager"])
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("incidents:case-acknowledge", args=[case.reference]))
        case.refresh_from_db()
        assert case.owner == people["manager"]
        # Page events carry the manager's staff id (never a name) and the SMS id.
        page = case.timeline.get(kind=TimelineKind.PAGE_SENT)
        assert page.data["recipient_id"] == people["manager"].id
        assert MANAGER_NAME not in str(page.data)
        return case, page.data["provider_sid"]

    def test_my_report_page(self, client, people, acknowledged_case):
        case, sid = acknowledged_case
        client.force_login(people["worker"])
        response = client.get(reverse("incidents:my-report", args=[case.reference]))
        assert response.status_code == 200
        body = response.content.decode()
        assert case.reference in body and "Acknowledged" in body
        for secret in (*self.SECRETS, sid):
            assert secret not in body

    def test_my_reports_list(self, client, people, acknowledged_case):
        case, sid = acknowledged_case
        client.force_login(people["worker"])
        body = client.get(reverse("incidents:my-reports")).content.decode()
        assert case.reference in body
        for secret in (*self.SECRETS, sid):
            assert secret not in body

    def test_api(self, people, acknowledged_case):
        case, sid = acknowledged_case
        response = api_client(people, "worker").get(
            reverse("api:report-detail", args=[case.reference])
        )
        assert response.status_code == 200
        data = response.json()
        assert set(data) == {
            "reference",
            "kind",
            "urgent",
            "status",
            "reported_at",
            "acknowledged_at",
        }
        assert data["status"] == "acknowledged"
        text = response.content.decode()
        for secret in (*self.SECRETS, sid):
            assert secret not in text

    def test_full_view_does_show_them(self, client, people, acknowledged_case):
        # The control: the same case, opened by its owner, does carry what the reporter
        # must not see, so the checks above are not passing on an empty page.
        case, sid = acknowledged_case
        client.force_login(people["manager"])
        body = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        body = body.decode()
        for secret in (
            NARRATIVE.replace("'", "&#x27;"),
            SERVICE_USER,
            WHO_WAS_TOLD,
            MANAGER_NAME,
            sid,
        ):
            assert secret in body
