"""The guidance and team pages: who may open each, and what they show. Every view is tried by
every role, allowed and refused."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from staff import services
from staff.models import (
    Engagement,
    GuidanceAcknowledgement,
    GuidanceDocument,
    GuidanceQuestion,
    TeamExport,
    TrainingAssignment,
)

from ..conftest import make_person
from .guidance_helpers import in_days, levels, organise, publish

pytestmark = pytest.mark.django_db

ROLES = ["worker", "manager", "manager2", "hr", "dpo", "safeguarding", "admin", "anonymous"]
TEAM_VIEWERS = {"manager", "manager2", "hr", "admin"}


@pytest.fixture
def org(people):
    organise(people)
    document = publish(people["admin"])
    people["document"] = document
    people["levels"] = levels()
    return people


def client_as(client, org, role):
    if role != "anonymous":
        client.force_login(org[role])
    return client


def is_sign_in_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


class TestGuidancePage:
    @pytest.mark.parametrize("role", ROLES)
    def test_everyone_signed_in_reads_and_signs_their_guidance(self, client, org, role):
        client = client_as(client, org, role)
        url = reverse("staff:guidance")
        response = client.get(url)
        if role == "anonymous":
            assert is_sign_in_redirect(response)
        else:
            assert response.status_code == 200
            body = response.content.decode()
            assert "6.1 Sign to say you have read it." in body
            assert "I have received, read and understood it" in body
        response = client.post(url, {"action": "confirm", "document": org["document"].pk})
        signed = GuidanceAcknowledgement.objects.filter(document=org["document"])
        if role == "anonymous":
            assert is_sign_in_redirect(response) and not signed.exists()
        else:
            assert response.status_code == 302 and response["Location"] == url
            assert list(signed.values_list("user", flat=True)) == [org[role].pk]
            page = client.get(url).content.decode()
            assert "You confirmed version 1" in page
            assert "I have received, read and understood it" not in page

    def test_volunteer_sees_the_volunteers_guidance(self, client, org):
        publish(org["admin"], Engagement.VOLUNTEER, title="For volunteers", body="Volunteer text")
        volunteer = make_person("vol@example.org", engagement=Engagement.VOLUNTEER)
        client.force_login(volunteer)
        body = client.get(reverse("staff:guidance")).content.decode()
        assert "Volunteer text" in body and "6.1 Sign" not in body

    def test_shows_the_persons_own_training_due(self, client, org):
        services.set_training(
            actor=org["manager"],
            user_id=org["worker"].pk,
            level_id=org["levels"][1].pk,
            due_on=in_days(7),
        )
        client.force_login(org["worker"])
        body = client.get(reverse("staff:guidance")).content.decode()
        assert "Your confidentiality training: Care practice, due by" in body
        client.force_login(org["other_worker"])
        assert "Your confidentiality training" not in (
            client.get(reverse("staff:guidance")).content.decode()
        )

    def test_signing_an_old_version_is_refused_plainly(self, client, org):
        client.force_login(org["worker"])
        publish(org["admin"])
        response = client.post(
            reverse("staff:guidance"),
            {"action": "confirm", "document": org["document"].pk},
            follow=True,
        )
        assert "not the current version" in response.content.decode()
        assert not GuidanceAcknowledgement.objects.exists()

    def test_question_goes_to_the_line_manager(self, client, org):
        client.force_login(org["worker"])
        url = reverse("staff:guidance")
        empty = client.post(url, {"action": "question", "document": org["document"].pk})
        assert empty.status_code == 200
        assert 'id="id_question_error">Say what you would like to ask.' in empty.content.decode()
        response = client.post(
            url,
            {"action": "question", "document": org["document"].pk, "question": "What is 2.3?"},
            follow=True,
        )
        assert "has gone to your line manager" in response.content.decode()
        question = GuidanceQuestion.objects.get()
        assert question.manager == org["manager"] and question.question == "What is 2.3?"
        assert not GuidanceAcknowledgement.objects.exists()

    def test_banner_on_every_page_until_signed_and_report_always_works(self, client, org, rota):
        client.force_login(org["worker"])
        for url in (reverse("incidents:report"), reverse("incidents:my-reports")):
            response = client.get(url)
            assert response.status_code == 200
            assert "Please read and confirm the confidentiality guidance." in (
                response.content.decode()
            )
        services.confirm_guidance(actor=org["worker"], document_id=org["document"].pk)
        body = client.get(reverse("incidents:report")).content.decode()
        assert "Please read and confirm" not in body
        publish(org["admin"])  # a new version: asked again
        body = client.get(reverse("incidents:report")).content.decode()
        assert "Please read and confirm" in body

    def test_report_page_works_if_the_guidance_check_fails(self, client, org, rota, monkeypatch):
        from django.db import DatabaseError

        from staff import selectors

        def broken(user):
            raise DatabaseError("connection lost")

        monkeypatch.setattr(selectors, "guidance_to_confirm", broken)
        client.force_login(org["worker"])
        response = client.get(reverse("incidents:report"))
        assert response.status_code == 200
        assert "phone 999 or 112" in response.content.decode()

    def test_report_page_works_with_no_guidance_at_all(self, client, people, rota):
        client.force_login(people["worker"])
        response = client.get(reverse("incidents:report"))
        assert response.status_code == 200
        assert "Please read and confirm" not in response.content.decode()


class TestTeamPage:
    @pytest.mark.parametrize("role", ROLES)
    def test_team_page_by_role(self, client, org, role):
        response = client_as(client, org, role).get(reverse("staff:team"))
        if role == "anonymous":
            assert is_sign_in_redirect(response)
        elif role in TEAM_VIEWERS:
            assert response.status_code == 200
        else:
            assert response.status_code == 403

    def test_signs_out_when_idle_like_case_pages(self, client, org, settings):
        import time

        from staff.security import IDLE_KEY

        settings.SESSION_IDLE_SECONDS = 60
        client.force_login(org["manager"])
        session = client.session
        session[IDLE_KEY] = time.time() - 61
        session.save()
        assert is_sign_in_redirect(client.get(reverse("staff:team")))
        assert "_auth_user_id" not in client.session

    def test_manager_sees_own_team_not_others(self, client, org):
        services.ask_guidance_question(
            actor=org["worker"], document_id=org["document"].pk, question="Own team question"
        )
        services.ask_guidance_question(
            actor=org["other_worker"], document_id=org["document"].pk, question="South question"
        )
        client.force_login(org["manager"])
        body = client.get(reverse("staff:team")).content.decode()
        assert org["worker"].full_name in body and "Own team question" in body
        assert org["other_worker"].full_name not in body and "South question" not in body
        assert "Not yet signed the current guidance" in body

    def test_hr_sees_every_team_and_can_filter(self, client, org):
        client.force_login(org["hr"])
        body = client.get(reverse("staff:team")).content.decode()
        assert org["worker"].full_name in body and org["other_worker"].full_name in body
        south = org["other_worker"].team
        body = client.get(reverse("staff:team"), {"team": south.pk}).content.decode()
        assert org["other_worker"].full_name in body and org["worker"].full_name not in body

    def test_a_manager_cannot_widen_their_view_with_the_team_filter(self, client, org):
        client.force_login(org["manager"])
        south = org["other_worker"].team
        body = client.get(reverse("staff:team"), {"team": south.pk}).content.decode()
        assert org["other_worker"].full_name not in body

    def test_overdue_is_listed(self, client, org):
        assignment = services.set_training(
            actor=org["manager"],
            user_id=org["worker"].pk,
            level_id=org["levels"][1].pk,
            due_on=in_days(0),
        )
        TrainingAssignment.objects.filter(pk=assignment.pk).update(due_on=in_days(-3))
        client.force_login(org["manager"])
        response = client.get(reverse("staff:team"))
        overdue = response.context["overdue"]
        assert [r.person for r in overdue] == [org["worker"]]


class TestExport:
    def test_every_page_carries_the_security_headers(self, client, org):
        client.force_login(org["manager"])
        for url in (reverse("staff:guidance"), reverse("staff:team")):
            response = client.get(url)
            assert "script-src 'self'" in response["Content-Security-Policy"], url

    @pytest.mark.parametrize("role", ROLES)
    def test_export_by_role(self, client, org, role):
        response = client_as(client, org, role).get(reverse("staff:team-export"))
        if role == "anonymous":
            assert is_sign_in_redirect(response)
        elif role in TEAM_VIEWERS:
            assert response.status_code == 200
            assert response["Content-Type"].startswith("text/csv")
            assert TeamExport.objects.filter(actor=org[role]).count() == 1
        else:
            assert response.status_code == 403
            assert not TeamExport.objects.exists()

    def test_columns_rows_and_nothing_else(self, client, org):
        services.confirm_guidance(actor=org["worker"], document_id=org["document"].pk)
        services.set_training(
            actor=org["manager"],
            user_id=org["worker"].pk,
            level_id=org["levels"][1].pk,
            due_on=in_days(7),
        )
        services.ask_guidance_question(
            actor=org["worker"], document_id=org["document"].pk, question="Private question"
        )
        formula = make_person("formula@example.org", team=org["worker"].team)
        formula.full_name = "=HYPERLINK(1)"
        formula.save()
        client.force_login(org["manager"])
        response = client.get(reverse("staff:team-export"))
        text = response.content.decode()
        assert "Private question" not in text
        rows = list(csv.DictReader(io.StringIO(text)))
        by_name = {row["name"]: row for row in rows}
        assert set(by_name) == {org["worker"].full_name, "'=HYPERLINK(1)"}
        row = by_name[org["worker"].full_name]
        assert row["guidance_signed"] == "yes" and row["guidance_version"] == "1"
        assert row["training_level"] == "Care practice"
        assert row["training_due"] == in_days(7).isoformat()
        assert row["training_overdue"] == "no"
        assert by_name["'=HYPERLINK(1)"]["guidance_signed"] == "no"
        export = TeamExport.objects.get()
        assert export.actor == org["manager"] and export.rows == 2


class TestPersonTraining:
    @pytest.mark.parametrize("role", ROLES)
    def test_training_page_by_role(self, client, org, role):
        url = reverse("staff:person-training", args=[org["worker"].pk])
        client = client_as(client, org, role)
        response = client.get(url)
        post = client.post(
            url, {"action": "set", "level": org["levels"][1].pk, "due_on": in_days(20)}
        )
        assigned = TrainingAssignment.objects.filter(user=org["worker"])
        if role == "anonymous":
            assert is_sign_in_redirect(response) and is_sign_in_redirect(post)
            assert not assigned.exists()
        elif role in {"manager", "hr", "admin"}:
            assert response.status_code == 200
            assert post.status_code == 302 and assigned.get().assigned_by == org[role]
        elif role == "manager2":  # a manager of another team
            assert response.status_code == 404 and post.status_code == 404
            assert not assigned.exists()
        else:
            assert response.status_code == 403 and post.status_code == 403
            assert not assigned.exists()

    def test_usual_level_for_the_role_is_offered_first(self, client, org):
        client.force_login(org["manager"])
        response = client.get(reverse("staff:person-training", args=[org["worker"].pk]))
        assert response.context["training_form"].initial["level"] == org["levels"][1]
        assert "The usual level for this role is Care practice." in response.content.decode()

    def test_errors_are_shown_by_the_field(self, client, org):
        client.force_login(org["manager"])
        url = reverse("staff:person-training", args=[org["worker"].pk])
        response = client.post(url, {"action": "set", "level": org["levels"][1].pk})
        assert 'id="id_due_on_error">Give the date the training is due by.' in (
            response.content.decode()
        )
        response = client.post(
            url, {"action": "set", "level": org["levels"][1].pk, "due_on": in_days(-2)}
        )
        assert 'id="id_due_on_error">The due date has passed.' in response.content.decode()
        assert not TrainingAssignment.objects.exists()

    def test_record_completion(self, client, org):
        client.force_login(org["manager"])
        url = reverse("staff:person-training", args=[org["worker"].pk])
        client.post(url, {"action": "set", "level": org["levels"][1].pk, "due_on": in_days(3)})
        response = client.post(url, {"action": "complete", "completed_on": in_days(0)})
        assert response.status_code == 302
        assignment = TrainingAssignment.objects.get()
        assert assignment.completed_on == in_days(0)
        assert assignment.completed_recorded_by == org["manager"]


class TestQuestionDiscussed:
    @pytest.mark.parametrize("role", ROLES)
    def test_only_the_line_manager_marks_it(self, client, org, role):
        question = services.ask_guidance_question(
            actor=org["worker"], document_id=org["document"].pk, question="Q"
        )
        url = reverse("staff:question-discussed", args=[question.pk])
        client = client_as(client, org, role)
        response = client.post(url)
        question.refresh_from_db()
        if role == "anonymous":
            assert is_sign_in_redirect(response)
        elif role == "manager":
            assert response.status_code == 302 and question.discussed_by == org["manager"]
        elif role in TEAM_VIEWERS:
            assert response.status_code == 404
        else:
            assert response.status_code == 403
        if role != "manager":
            assert question.discussed_at is None

    def test_get_is_refused(self, client, org):
        question = services.ask_guidance_question(
            actor=org["worker"], document_id=org["document"].pk, question="Q"
        )
        client.force_login(org["manager"])
        response = client.get(reverse("staff:question-discussed", args=[question.pk]))
        assert response.status_code == 405


class TestTrainingLevelsInAdmin:
    def test_roles_are_ticked_from_the_role_list(self, client, org):
        client.force_login(org["admin"])
        response = client.post(
            "/admin/staff/traininglevel/add/",
            {"name": "Specialist", "description": "", "roles": ["dpo", "hr"], "position": 5},
        )
        assert response.status_code == 302
        from staff.models import TrainingLevel

        assert sorted(TrainingLevel.objects.get(name="Specialist").roles) == ["dpo", "hr"]


class TestPublishInAdmin:
    URL = "/admin/staff/guidancedocument/add/"

    def test_admin_publishes_a_new_version_from_a_text_file(self, client, org):
        client.force_login(org["admin"])
        upload = SimpleUploadedFile("g.txt", "Version two text, Cymraeg: ŵ ŷ".encode())
        response = client.post(
            self.URL,
            {"audience": Engagement.EMPLOYEE, "title": "Guidance", "body": "", "text_file": upload},
        )
        assert response.status_code == 302
        latest = GuidanceDocument.objects.filter(audience=Engagement.EMPLOYEE).first()
        assert latest.version == 2 and latest.body == "Version two text, Cymraeg: ŵ ŷ"
        assert latest.published_by == org["admin"]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"%PDF-1.7\n...", "not a plain-text file"),
            (b"\x89PNG\r\n\x1a\n\x00\x00", "not a plain-text file"),
            ("caf\xe9".encode("latin-1"), "not UTF-8"),
        ],
    )
    def test_anything_but_plain_text_is_refused(self, client, org, content, message):
        client.force_login(org["admin"])
        upload = SimpleUploadedFile("g.txt", content)
        response = client.post(
            self.URL,
            {"audience": Engagement.EMPLOYEE, "title": "G", "body": "", "text_file": upload},
        )
        assert response.status_code == 200 and message in response.content.decode()
        assert GuidanceDocument.objects.count() == 1

    def test_too_large_is_refused(self, client, org, settings):
        settings.GUIDANCE_MAX_UPLOAD_BYTES = 10
        client.force_login(org["admin"])
        upload = SimpleUploadedFile("g.txt", b"x" * 11)
        response = client.post(
            self.URL,
            {"audience": Engagement.EMPLOYEE, "title": "G", "body": "", "text_file": upload},
        )
        assert "too large" in response.content.decode()
        assert GuidanceDocument.objects.count() == 1

    def test_published_versions_are_read_only(self, client, org):
        client.force_login(org["admin"])
        url = f"/admin/staff/guidancedocument/{org['document'].pk}/change/"
        assert client.get(url).status_code == 200  # shown, read-only
        assert client.post(url, {"title": "Changed", "body": "Changed"}).status_code == 403
        org["document"].refresh_from_db()
        assert org["document"].title == "Confidentiality guidance"
        delete = client.post(
            f"/admin/staff/guidancedocument/{org['document'].pk}/delete/", {"post": "yes"}
        )
        assert delete.status_code == 403
        assert GuidanceDocument.objects.filter(pk=org["document"].pk).exists()
