"""Walks the whole URLconf, so no view can be added without being classified here: for every
URL, anonymous callers, the wrong roles and managers of another team are refused, and no
refusal ever carries case content."""

import secrets

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver

from incidents.models import Attachment, ReportKind
from incidents.retention import place_legal_hold
from incidents.retention_models import LegalHold
from incidents.services import acknowledge_case, add_attachment, submit_report
from staff.models import ApiToken, GuidanceDocument, GuidanceQuestion
from staff.services import issue_api_token

NARRATIVE = "Unique narrative words 7f3a9 that must never leak."

# name -> who may reach it. "public": anyone; "signed_in": any signed-in person; "case": only
# those with a basis for the case (never an uninvolved care worker or another team's manager);
# "reporter": the case's reporter; "manager": managers (and admins); "oversight": HR and
# managers; "dpo": the DPO; "retention": the DPO and administrators; "webhook": Twilio, signed;
# "feed": holders of a secret.
CLASSES = {
    "login": "public",
    "logout": "public",
    "password_reset": "public",
    "password_reset_done": "public",
    "password_reset_confirm": "public",
    "password_reset_complete": "public",
    "set_language": "public",
    "set-language": "public",
    "health": "public",
    "api-schema": "public",
    "api:token": "public",
    "two-factor-verify": "signed_in",
    "two-factor-setup": "signed_in",
    "paging-preferences": "signed_in",
    "staff:guidance": "signed_in",
    "staff:team": "manager",
    "staff:team-export": "manager",
    "staff:person-training": "manager",
    "staff:question-discussed": "manager",
    "api:token-list": "signed_in",
    "api:token-revoke": "signed_in",
    "api:report-create": "signed_in",
    "api:report-detail": "reporter",
    "api:report-information": "reporter",
    "api:oncall-now": "signed_in",
    "api:case-detail": "case",
    "notifications:sms-inbound": "webhook",
    "notifications:sms-status": "webhook",
    "notifications:voice-answer": "webhook",
    "notifications:voice-gather": "webhook",
    "notifications:voice-status": "webhook",
    "oncall:now": "signed_in",
    "oncall:rota": "manager",
    "oncall:rota-override": "manager",
    "oncall:rota-rotate-feed": "manager",
    "oncall:my-calendar": "signed_in",
    "oncall:my-calendar-rotate": "signed_in",
    "oncall:feed-rota": "feed",
    "oncall:feed-person": "feed",
    "incidents:home": "signed_in",
    "incidents:service-worker": "public",
    "incidents:report": "signed_in",
    "incidents:my-reports": "signed_in",
    "incidents:my-report": "reporter",
    "incidents:my-report-add": "reporter",
    "incidents:case-list": "signed_in",
    "incidents:case-detail": "case",
    "incidents:case-acknowledge": "case",
    "incidents:case-start-review": "case",
    "incidents:case-assign": "case",
    "incidents:case-outcome": "case",
    "incidents:case-close": "case",
    "incidents:case-hr-stage": "case",
    "incidents:case-note": "case",
    "incidents:case-attach": "case",
    "incidents:attachment-download": "case",
    "incidents:case-breach": "case",
    "incidents:case-safeguarding": "case",
    "incidents:case-access-log": "case",
    "incidents:case-break-glass": "signed_in",
    "incidents:case-escalate": "case",
    "incidents:case-reassign": "case",
    "incidents:breach-log": "dpo",
    "incidents:subject-access": "dpo",
    "incidents:outcomes": "oversight",
    "incidents:outcomes-export": "oversight",
    "incidents:retention": "retention",
    "incidents:legal-hold-lift": "retention",
}


def every_url():
    def walk(patterns, prefix="", namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith("admin/"):
                    continue  # Django's admin: its own login, tested in tests/staff
                inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), namespace + (pattern.name or "")

    return list(walk(get_resolver().url_patterns))


def concrete(route: str, case) -> str:
    """The route filled in: the case's reference, and ids of real things (the case's
    attachment and legal hold, its reporter, their question and API token, the rota), so a
    refusal is a refusal, not a 404 for something that does not exist."""
    path = "/" + route
    path = path.replace("<str:reference>", case.reference)
    path = path.replace("<str:secret>", secrets.token_urlsafe(16))
    path = path.replace("<uidb64>", "MQ").replace("<token>", "set-password")
    for name, value in case.url_ids.items():
        path = path.replace(f"<int:{name}>", str(value))
    assert "<" not in path, f"give {route} a real id in the case fixture"
    return path


def test_every_url_is_classified():
    names = {name for _route, name in every_url()}
    unclassified = sorted(names - set(CLASSES))
    assert unclassified == [], f"classify these new URLs in {__file__}: {unclassified}"
    assert sorted(set(CLASSES) - names) == [], "remove URLs that no longer exist"


@pytest.fixture
def case(people, rota, django_capture_on_commit_callbacks):
    """An urgent case the on-call manager owns, with an attachment and a legal hold; the
    reporter has a question for their line manager and an API token."""
    worker, manager = people["worker"], people["manager"]
    worker.line_manager = manager
    worker.save()
    with django_capture_on_commit_callbacks(execute=True):
        case = submit_report(
            reporter=worker,
            kind=ReportKind.URGENT_DISCLOSURE,
            narrative=NARRATIVE,
            grounds=["crime"],
        )
    with django_capture_on_commit_callbacks(execute=True):
        acknowledge_case(case=case, actor=manager)
    attachment = add_attachment(
        case=case, actor=manager, upload=SimpleUploadedFile("note.txt", NARRATIVE.encode())
    )
    hold = place_legal_hold(case=case, actor=people["dpo"], reason="Tribunal claim ET/0001")
    token, _key = issue_api_token(user=worker, name="phone")
    document = GuidanceDocument.objects.create(
        audience="employee", version=1, title="Guidance", body="Read me."
    )
    question = GuidanceQuestion.objects.create(
        document=document, asked_by=worker, manager=manager, question="May I?"
    )
    case.url_ids = {
        "attachment_id": attachment.id,
        "hold_id": hold.id,
        "token_id": token.id,
        "user_id": worker.id,
        "question_id": question.id,
        "rota_id": rota.id,
    }
    return case


REFUSED_ANONYMOUS = {302, 401, 403, 404, 405}
REFUSED_SIGNED_IN = {302, 403, 404, 405}


def body_of(response) -> str:
    return (
        b"".join(response).decode(errors="replace")
        if response.streaming
        else (response.content.decode(errors="replace"))
    )


def test_anonymous_callers_are_refused_everywhere_but_public_pages(client, case):
    for route, name in every_url():
        kind = CLASSES[name]
        url = concrete(route, case)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if name != "health":  # 503 is how it reports a stopped sweeper (none runs here)
                assert response.status_code < 500, (method, url, response.status_code)
            assert NARRATIVE not in body_of(response), (method, url)
            if kind in ("public", "feed"):
                continue
            if kind == "webhook":
                assert response.status_code in {403, 405}, (method, url, response.status_code)
                continue
            assert response.status_code in REFUSED_ANONYMOUS, (method, url, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/accounts/login/"), (method, url)


@pytest.mark.parametrize("who", ["other_worker", "manager2", "hr", "admin"])
def test_uninvolved_people_never_reach_the_case(client, people, case, who):
    """A care worker who did not report it, a manager of another team never paged for it, HR
    before any referral, an administrator: every case URL answers as if there were no case."""
    person = people[who]
    client.force_login(person)
    for route, name in every_url():
        if CLASSES[name] not in ("case", "reporter"):
            continue
        url = concrete(route, case)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in REFUSED_SIGNED_IN, (
                who,
                method,
                url,
                response.status_code,
            )
            assert NARRATIVE not in body_of(response), (who, method, url)


@pytest.mark.parametrize("who", ["worker", "safeguarding", "dpo"])
def test_manager_pages_refuse_other_roles(client, people, case, who):
    client.force_login(people[who])
    for route, name in every_url():
        if CLASSES[name] != "manager":
            continue
        url = concrete(route, case)
        response = client.get(url)
        assert response.status_code in REFUSED_SIGNED_IN, (who, url, response.status_code)


@pytest.mark.parametrize("who", ["worker", "manager2", "hr", "safeguarding"])
def test_dpo_pages_refuse_other_roles(client, people, case, who):
    client.force_login(people[who])
    for route, name in every_url():
        if CLASSES[name] == "dpo":
            response = client.get(concrete(route, case))
            assert response.status_code in REFUSED_SIGNED_IN, (who, route)


@pytest.mark.parametrize("who", ["worker", "dpo", "safeguarding"])
def test_oversight_pages_refuse_other_roles(client, people, case, who):
    client.force_login(people[who])
    for route, name in every_url():
        if CLASSES[name] == "oversight":
            response = client.get(concrete(route, case))
            assert response.status_code in REFUSED_SIGNED_IN, (who, route)


@pytest.mark.parametrize("who", ["worker", "manager", "manager2", "hr", "safeguarding"])
def test_retention_pages_refuse_other_roles(client, people, case, who):
    client.force_login(people[who])
    for route, name in every_url():
        if CLASSES[name] == "retention":
            for method in ("get", "post"):
                response = getattr(client, method)(concrete(route, case))
                assert response.status_code in REFUSED_SIGNED_IN, (who, method, route)
    assert LegalHold.objects.get(pk=case.url_ids["hold_id"]).lifted_at is None


def test_a_person_s_pages_refuse_managers_of_another_team(client, people, case):
    """The reporter's training record and their question are for their own line manager (and
    HR, who look after everyone's), not for a manager of another team."""
    who = "manager2"
    client.force_login(people[who])
    for name in ("staff:person-training", "staff:question-discussed"):
        [route] = [route for route, n in every_url() if n == name]
        for method in ("get", "post"):
            response = getattr(client, method)(concrete(route, case))
            assert response.status_code in REFUSED_SIGNED_IN, (who, method, route)
    assert GuidanceQuestion.objects.get(pk=case.url_ids["question_id"]).discussed_at is None


def test_refusals_change_nothing(client, people, case):
    """Every URL posted to by everyone refused above: the reporter's token still works, the
    attachment and the hold are still there."""
    for who in ("other_worker", "manager2", "hr"):
        client.force_login(people[who])
        for route, name in every_url():
            if CLASSES[name] in ("case", "reporter", "retention", "dpo"):
                client.post(concrete(route, case))
    assert ApiToken.objects.get(pk=case.url_ids["token_id"]).revoked_at is None
    assert Attachment.objects.filter(pk=case.url_ids["attachment_id"]).exists()
    assert LegalHold.objects.get(pk=case.url_ids["hold_id"]).lifted_at is None
