"""The report page's phone parts on the server: the service worker at the site root, the
on-call manager one tap away, the first page after signing in, and the per-session draft key."""

import pytest
from django.test import Client

from incidents.models import ReportKind

ROLES = ["worker", "manager", "hr", "dpo", "safeguarding", "admin"]


@pytest.mark.parametrize("role", [*ROLES, None])
def test_service_worker_is_served_from_the_root_to_everyone(db, people, role):
    """The same public script for everyone (it holds no data): the sign-in page needs it too,
    to wipe what a previous session left."""
    client = Client()
    if role:
        client.force_login(people[role])
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"
    assert b'addEventListener("fetch"' in response.content


def test_service_worker_caches_only_report_pages_and_static_files(db):
    body = Client().get("/sw.js").content.decode()
    assert 'url.pathname === "/report/"' in body and '"/static/"' in body
    assert "/cases/" not in body


@pytest.mark.parametrize("query", ["", f"?kind={ReportKind.URGENT_DISCLOSURE}"])
def test_on_call_manager_is_one_tap_away(client, people, rota, query):
    client.force_login(people["worker"])
    body = client.get("/report/" + query).content.decode()
    assert 'href="tel:+447700900101"' in body  # manager is on call this week
    assert "Who is on call now" in body


def test_no_call_link_when_nobody_is_on_call(client, people):
    client.force_login(people["worker"])
    body = client.get("/report/").content.decode()
    assert "tel:+44" not in body
    assert "Who is on call now" in body


def test_report_page_query_count(client, people, rota, django_assert_max_num_queries):
    client.force_login(people["worker"])
    with django_assert_max_num_queries(12):
        assert client.get(f"/report/?kind={ReportKind.CONCERN_COLLEAGUE}").status_code == 200


def test_report_is_the_first_page_after_signing_in(client, people, rota):
    response = client.post(
        "/accounts/login/",
        {"username": people["worker"].email, "password": "a-long-test-password"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/report/"


def test_draft_key_is_per_session_and_absent_when_signed_out(people, rota):
    first, second = Client(), Client()
    first.force_login(people["worker"])
    second.force_login(people["worker"])
    key_one = first.get("/report/").context["request"].session["report_draft_key"]
    assert f'data-draft-key="{key_one}"' in first.get("/report/").content.decode()
    key_two = second.get("/report/").context["request"].session["report_draft_key"]
    assert key_one and key_two and key_one != key_two
    assert 'data-draft-key=""' in Client().get("/accounts/login/").content.decode()


def test_report_form_is_marked_for_offline_drafts_and_sign_out_for_wiping(client, people, rota):
    client.force_login(people["worker"])
    body = client.get(f"/report/?kind={ReportKind.CONCERN_COLLEAGUE}").content.decode()
    assert "data-report" in body and "data-sign-out" in body
    assert "concernline/report.js" in body
    assert 'name="client_token"' in body
