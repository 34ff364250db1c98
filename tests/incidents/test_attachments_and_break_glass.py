"""Attachments (type by content, size limit, outside the web root, served as downloads) and
break-glass access (reason, time limit, log, email to the DPO)."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.templatetags.static import static
from django.urls import reverse
from freezegun import freeze_time

from incidents import services
from incidents.access import Basis, bases_for
from incidents.models import AccessLogEntry, Attachment, BreakGlass, Case, TimelineKind

from .conftest import NARRATIVE

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n..."
TEXT = "Notes from the call, with a Welsh ŵ.\n".encode()


class TestAttachments:
    @pytest.mark.parametrize(
        ("name", "content", "expected"),
        [
            ("scan.pdf", PDF, "application/pdf"),
            ("photo.png", PNG, "image/png"),
            ("photo.jpg", JPEG, "image/jpeg"),
            ("notes.txt", TEXT, "text/plain"),
            # The name says nothing: a PDF called .txt is a PDF.
            ("innocent.txt", PDF, "application/pdf"),
        ],
    )
    def test_accepted_by_content(self, make_case, people, settings, name, content, expected):
        case = make_case()
        attachment = services.add_attachment(
            case=case, actor=people["manager"], upload=SimpleUploadedFile(name, content)
        )
        assert attachment.content_type == expected and attachment.size == len(content)
        stored = settings.ATTACHMENTS_DIR / attachment.stored_name
        assert stored.read_bytes() != content  # encrypted at rest
        assert services.read_attachment(attachment) == content
        assert attachment.stored_name != name and "/" not in attachment.stored_name
        assert case.timeline.filter(kind=TimelineKind.ATTACHMENT_ADDED).exists()

    @pytest.mark.parametrize(
        "content",
        [b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 20, b"PK\x03\x04zip", b"\x7fELF\x02\x01\x00"],
    )
    def test_other_types_are_refused(self, make_case, people, settings, content):
        case = make_case()
        with pytest.raises(services.ConcernlineError) as caught:
            services.add_attachment(
                case=case, actor=people["manager"], upload=SimpleUploadedFile("a.pdf", content)
            )
        assert "file" in caught.value.extra
        assert Attachment.objects.count() == 0
        assert not settings.ATTACHMENTS_DIR.exists() or not any(settings.ATTACHMENTS_DIR.iterdir())

    def test_size_is_limited(self, make_case, people, settings):
        settings.ATTACHMENT_MAX_BYTES = 100
        case = make_case()
        with pytest.raises(services.ConcernlineError):
            services.add_attachment(
                case=case, actor=people["manager"], upload=SimpleUploadedFile("a.txt", b"a" * 101)
            )
        assert Attachment.objects.count() == 0

    def test_someone_without_a_basis_cannot_attach_and_leaves_no_file(
        self, make_case, people, settings
    ):
        case = make_case()
        with pytest.raises(services.NotAllowed):
            services.add_attachment(
                case=case, actor=people["hr"], upload=SimpleUploadedFile("a.pdf", PDF)
            )
        folder = settings.ATTACHMENTS_DIR
        assert not folder.exists() or not any(folder.iterdir())
        assert Attachment.objects.count() == 0

    def test_stored_outside_the_web_root(self):
        root = django_settings.BASE_DIR.resolve()
        attachments = django_settings.ATTACHMENTS_DIR
        static_root = getattr(django_settings, "STATIC_ROOT", None)
        assert static_root is None or not str(attachments).startswith(str(static_root))
        assert "static" not in attachments.parts and root / "static" not in attachments.parents

    def test_upload_and_download_through_the_page(self, client, make_case, people):
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(
            reverse("incidents:case-attach", args=[case.reference]),
            {"file": SimpleUploadedFile("photo.png", PNG, content_type="text/html")},
        )
        assert response.status_code == 302
        attachment = Attachment.objects.get()
        assert attachment.content_type == "image/png"  # what was sent as the type is ignored
        seen = AccessLogEntry.objects.latest("id").id  # the log is append-only: look past it
        response = client.get(
            reverse("incidents:attachment-download", args=[case.reference, attachment.id])
        )
        assert response.status_code == 200
        assert response["Content-Disposition"] == 'attachment; filename="photo.png"'
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"".join(response.streaming_content) == PNG
        entry = AccessLogEntry.objects.get(id__gt=seen)
        assert entry.action == "download" and entry.user == people["manager"]

    def test_an_attachment_of_another_case_is_404(self, client, make_case, people):
        mine = make_case()
        other = make_case("breach")
        attachment = services.add_attachment(
            case=other, actor=people["dpo"], upload=SimpleUploadedFile("a.pdf", PDF)
        )
        client.force_login(people["manager"])
        url = reverse("incidents:attachment-download", args=[mine.reference, attachment.id])
        assert client.get(url).status_code == 404


class TestBreakGlass:
    REASON = "Police are on the phone about an immediate risk; the owner is unreachable."

    @pytest.mark.parametrize("role", ["admin", "hr", "manager2"])
    def test_opens_the_case_for_a_while_logs_and_tells_the_dpo(
        self, client, make_case, people, role, django_capture_on_commit_callbacks
    ):
        case = make_case()
        user = people[role]
        client.force_login(user)
        detail = reverse("incidents:case-detail", args=[case.reference])
        assert client.get(detail).status_code == 404

        url = reverse("incidents:case-break-glass", args=[case.reference])
        assert client.get(url).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"reason": self.REASON})
        assert response.status_code == 302 and response["Location"] == detail
        glass = BreakGlass.objects.get()
        assert glass.user == user and glass.reason == self.REASON
        assert AccessLogEntry.objects.get(action="break_glass").user == user
        assert case.timeline.filter(kind=TimelineKind.BREAK_GLASS, actor=user).exists()
        (email,) = mail.outbox
        assert email.to == [people["dpo"].email]
        assert case.reference in email.body and user.email in email.body
        assert NARRATIVE not in email.body and self.REASON not in email.body

        body = client.get(detail).content.decode()
        assert "break-glass" in body and NARRATIVE.replace("'", "&#x27;") in body
        assert AccessLogEntry.objects.filter(action="view", basis="break_glass").count() == 1

        with freeze_time(glass.expires_at + timedelta(seconds=1)):
            assert client.get(detail).status_code == 404
            assert Basis.BREAK_GLASS not in bases_for(user, case)

    def test_needs_a_reason(self, client, make_case, people):
        case = make_case()
        client.force_login(people["admin"])
        url = reverse("incidents:case-break-glass", args=[case.reference])
        response = client.post(url, {"reason": "because"})
        assert response.status_code == 200 and 'id="id_reason_error"' in response.content.decode()
        assert BreakGlass.objects.count() == 0 and mail.outbox == []

    @pytest.mark.parametrize("role", ["worker", "other_worker"])
    def test_care_workers_cannot(self, client, make_case, people, role):
        case = make_case()
        client.force_login(people[role])
        url = reverse("incidents:case-break-glass", args=[case.reference])
        assert client.get(url).status_code == 404
        assert client.post(url, {"reason": self.REASON}).status_code == 404
        assert BreakGlass.objects.count() == 0

    def test_unknown_reference_is_404(self, client, people, db):
        client.force_login(people["admin"])
        url = reverse("incidents:case-break-glass", args=["C-2099-9999"])
        # The form alone does not say whether the case exists.
        assert client.get(url).status_code == 200
        assert client.post(url, {"reason": self.REASON}).status_code == 404
        assert BreakGlass.objects.count() == 0 and AccessLogEntry.objects.count() == 0

    def test_anonymous_is_sent_to_sign_in(self, client, make_case):
        case = make_case()
        url = reverse("incidents:case-break-glass", args=[case.reference])
        assert client.get(url)["Location"].startswith(reverse("login"))

    def test_the_dpo_sees_it_in_the_access_log(self, client, make_case, people):
        case = make_case()
        services.break_glass(case=case, actor=people["admin"], reason=self.REASON)
        client.force_login(people["dpo"])
        body = client.get(reverse("incidents:case-access-log", args=[case.reference])).content
        assert self.REASON in body.decode()


class TestOutcomes:
    ROLES_ALLOWED = {"hr", "manager", "manager2"}

    @pytest.fixture
    def cases(self, make_case, people):
        from staff.models import Team

        team = Team.objects.create(name="=North")  # a formula in waiting
        people["worker"].team = team
        people["worker"].save()
        return [
            make_case(to="outcome", outcome="advice_given"),
            make_case("breach", to="referred"),
            make_case("safeguarding"),
        ]

    @pytest.mark.parametrize(
        "role",
        ["worker", "other_worker", "manager", "manager2", "hr", "dpo", "safeguarding", "admin"],
    )
    def test_page_and_export_by_role(self, client, cases, people, role):
        client.force_login(people[role])
        page = client.get(reverse("incidents:outcomes"))
        export = client.get(reverse("incidents:outcomes-export"))
        if role in self.ROLES_ALLOWED:
            assert page.status_code == 200 and export.status_code == 200
            assert AccessLogEntry.objects.filter(action="export", user=people[role]).count() == 3
        else:
            assert page.status_code == 404 and export.status_code == 404
            assert AccessLogEntry.objects.count() == 0

    def test_anonymous(self, client, db):
        for name in ("incidents:outcomes", "incidents:outcomes-export"):
            assert client.get(reverse(name))["Location"].startswith(reverse("login"))

    def test_page_counts_and_charts(self, client, cases, people):
        client.force_login(people["hr"])
        body = client.get(reverse("incidents:outcomes")).content.decode()
        # Charts without inline style or script (the site's one script is report.js, for drafts).
        assert "<meter" in body and "style=" not in body
        assert re.findall(r"<script[^>]*>", body) == [
            f'<script src="{static("concernline/report.js")}" defer>'
        ]
        assert "Advice given" in body and "Refer to the disciplinary procedure" in body
        assert "=North" in body
        assert NARRATIVE not in body and "SU-1" not in body

    def test_csv_content(self, client, cases, people):
        client.force_login(people["hr"])
        response = client.get(reverse("incidents:outcomes-export"))
        assert response["Content-Type"].startswith("text/csv")
        assert response["Content-Disposition"].startswith("attachment")
        text = response.content.decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["reference"] for r in rows] == [c.reference for c in cases]
        first, referred, open_case = rows
        assert first["outcome"] == "advice_given" and first["status"] == "outcome_recorded"
        assert float(first["hours_to_outcome"]) >= 0
        assert referred["outcome"] == "disciplinary" and referred["hr_stage"] == "referred"
        assert open_case["outcome"] == "" and open_case["hours_to_outcome"] == ""
        assert first["team"] == "'=North"  # never a live formula in a spreadsheet
        for secret in (NARRATIVE, "SU-1", "Secret Lane", people["worker"].full_name):
            assert secret not in text
        logged = AccessLogEntry.objects.filter(action="export")
        assert {e.case_id for e in logged} == {c.id for c in cases}
        assert {e.basis for e in logged} == {"outcomes_report"}

    def test_overdue_clocks_are_counted(self, client, cases, people):
        case = Case.objects.get(safeguarding=True)
        clock = case.clocks.get(kind="safeguarding_referral")
        client.force_login(people["hr"])
        with freeze_time(clock.due_at + timedelta(minutes=5)):
            body = client.get(reverse("incidents:outcomes")).content.decode()
            text = client.get(reverse("incidents:outcomes-export")).content.decode()
        assert "Safeguarding referral (24 hours)" in body
        row = next(r for r in csv.DictReader(io.StringIO(text)) if r["reference"] == case.reference)
        assert "safeguarding_referral" in row["overdue_clocks"]

    def test_summary_takes_a_fixed_number_of_queries(self, cases, django_assert_num_queries):
        from incidents.selectors import outcomes_summary

        with django_assert_num_queries(2):
            summary = outcomes_summary()
        assert summary["total"] == 3 and summary["with_outcome"] == 2


class TestBreachLog:
    def test_dpo_reaches_any_cases_access_log_by_reference(self, client, make_case, people):
        case = make_case("crime")  # not a breach: the DPO may not open it, only its log
        client.force_login(people["dpo"])
        response = client.get(reverse("incidents:breach-log"), {"reference": case.reference})
        log_url = reverse("incidents:case-access-log", args=[case.reference])
        assert response["Location"] == log_url
        assert client.get(log_url).status_code == 200
        detail = reverse("incidents:case-detail", args=[case.reference])
        assert client.get(detail).status_code == 404

    def test_only_the_dpo(self, client, make_case, people):
        case = make_case("breach")
        for role in ("manager", "hr", "admin", "worker", "safeguarding"):
            client.force_login(people[role])
            assert client.get(reverse("incidents:breach-log")).status_code == 404
        client.force_login(people["dpo"])
        assert AccessLogEntry.objects.count() == 0
        body = client.get(reverse("incidents:breach-log")).content.decode()
        assert case.reference in body and NARRATIVE not in body
        entry = AccessLogEntry.objects.get()
        assert (entry.case, entry.user, entry.basis) == (case, people["dpo"], "dpo")
