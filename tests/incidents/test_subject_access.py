"""Subject access exports (incidents.subject_access): what the ZIP holds for a member of staff
and for a service-user reference, the marks for redaction review, the access log, who may
make one (page and command), and bad input."""

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from incidents import audit, retention, services, subject_access
from incidents.models import AccessLogEntry, Case, CaseStatus, ReportKind, SubjectAccessExport
from incidents.retention_models import RetentionRule
from oncall.selectors import people_paged_for
from staff.models import User

URL = "/subject-access/"
REASON = "SAR received 28 Nov 2026, our ref DPO-0042"
PDF = b"%PDF-1.7\n" + bytes(range(256)) + b"\nSubject access test file."
TEXT = "Notes from the visit, with a Welsh \u0175.\n".encode()
NAMES = {
    "worker": "Cara Jones",
    "other_worker": "Olu Adebayo",
    "manager": "Mina Patel",
    "manager2": "Owen Price",
    "hr": "Hari Shah",
    "dpo": "Dana Evans",
    "safeguarding": "Sian Lloyd",
    "admin": "Alex Morgan-Hughes",
}
URGENT_NARRATIVE = "I told PC Morgan at once. Mina Patel said to ring 999 first."
CONCERN_NARRATIVE = "Cara Jones left a care plan on the bus."
UNRELATED_NARRATIVE = "Unrelated words qq7 about another family."
MENTION_NARRATIVE = "Visited SU-8 with a neighbour; SU-7 was there too."


@pytest.fixture
def named(people):
    for key, name in NAMES.items():
        User.objects.filter(pk=people[key].pk).update(full_name=name)
        people[key].refresh_from_db()
    return people


@pytest.fixture
def held(named, rota, django_capture_on_commit_callbacks):
    """Cara Jones reports an urgent disclosure about SU-7 (Mina Patel is paged and takes it,
    writes a note and attaches two files); Olu Adebayo raises a concern about Cara; Olu also
    reports something that has nothing to do with Cara or SU-7; a manager's note elsewhere
    mentions SU-7."""
    worker, other, manager = named["worker"], named["other_worker"], named["manager"]
    with django_capture_on_commit_callbacks(execute=True):
        urgent = services.submit_report(
            reporter=worker,
            kind=ReportKind.URGENT_DISCLOSURE,
            grounds=["crime"],
            narrative=URGENT_NARRATIVE,
            service_user_ref="su-7",
            who_was_told="PC Morgan",
        )
        concern = services.submit_report(
            reporter=other,
            kind=ReportKind.CONCERN_COLLEAGUE,
            narrative=CONCERN_NARRATIVE,
            details={"colleague": "Cara Jones", "occurred": "Tuesday"},
        )
        unrelated = services.submit_report(
            reporter=other,
            kind=ReportKind.WORRYING_INFORMATION,
            narrative=UNRELATED_NARRATIVE,
            service_user_ref="SU-99",
        )
        mention = services.submit_report(
            reporter=other,
            kind=ReportKind.WORRYING_INFORMATION,
            narrative=MENTION_NARRATIVE,
            service_user_ref="SU-8",
        )
    assert manager.pk in people_paged_for(owner_type="incidents.case", owner_id=urgent.id)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_case(case=urgent, actor=manager)
    services.add_note(case=urgent, actor=manager, text="Spoke to Cara Jones and Owen Price.")
    services.assign_reviewer(case=urgent, actor=manager, reviewer=named["manager2"])
    pdf = services.add_attachment(
        case=urgent, actor=manager, upload=SimpleUploadedFile("scan.pdf", PDF)
    )
    text = services.add_attachment(
        case=urgent, actor=manager, upload=SimpleUploadedFile("../../visit notes.txt", TEXT)
    )
    for case in (urgent, concern, unrelated, mention):
        case.refresh_from_db()
    return {
        "urgent": urgent,
        "concern": concern,
        "unrelated": unrelated,
        "mention": mention,
        "pdf": pdf,
        "text": text,
    }


def export(people, **kwargs):
    kwargs.setdefault("reason", REASON)
    result = subject_access.export_subject_access(actor=people["dpo"], via="command", **kwargs)
    return result, zipfile.ZipFile(io.BytesIO(result.file.read()))


def read_json(archive, name):
    return json.loads(archive.read(name).decode("utf-8"))


def is_marked(value) -> bool:
    return isinstance(value, dict) and value.get("redaction_review") is True


def resolve(data, pointer: str):
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data


def unmarked_strings(data):
    """Every string in `data` that is not inside a mark for redaction review."""
    if is_marked(data):
        return
    if isinstance(data, dict):
        for value in data.values():
            yield from unmarked_strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from unmarked_strings(value)
    elif isinstance(data, str):
        yield data


def assert_no_unmarked(archive, names):
    """No data file (the manifest and the list of marks aside) carries any of `names` unmarked."""
    for file in archive.namelist():
        if not file.endswith(".json") or file in ("manifest.json", "redactions.json"):
            continue
        for text in unmarked_strings(read_json(archive, file)):
            for name in names:
                assert name.lower() not in text.lower(), (file, text)


def by_reference(cases_json, reference):
    return next(c for c in cases_json if c["reference"] == reference)


class TestStaffSubject:
    def test_holds_their_cases_decrypted_with_files_and_nothing_unrelated(self, named, held):
        result, archive = export(named, staff=named["worker"])
        names = set(archive.namelist())
        assert {
            "README.txt",
            "manifest.json",
            "redactions.json",
            "subject.json",
            "cases.json",
            "paging.json",
            "guidance_and_training.json",
            "access_log.json",
        } <= names
        cases = read_json(archive, "cases.json")
        references = {c["reference"] for c in cases}
        assert references == {held["urgent"].reference, held["concern"].reference}

        urgent = by_reference(cases, held["urgent"].reference)
        assert urgent["why_included"] == ["named_in_text", "reporter"]  # the note names her
        assert urgent["report"]["narrative"]["value"] == URGENT_NARRATIVE  # decrypted
        assert urgent["reported_at"].endswith("+00:00")  # ISO 8601, UTC
        assert urgent["notes"][0]["text"]["value"] == "Spoke to Cara Jones and Owen Price."
        # Every attachment, decrypted, byte for byte, at the path cases.json gives.
        files = {a["sha256"]: a["file"]["value"] for a in urgent["attachments"]}
        assert archive.read(files[held["pdf"].sha256]) == PDF
        assert archive.read(files[held["text"].sha256]) == TEXT
        assert all(p.startswith(f"attachments/{held['urgent'].reference}/") for p in files.values())
        assert not any(".." in name or name.startswith("/") for name in names)

        concern = by_reference(cases, held["concern"].reference)
        assert concern["why_included"] == ["named_in_text"]

        everything = b"".join(archive.read(name) for name in names).decode(errors="replace")
        assert UNRELATED_NARRATIVE not in everything
        assert held["unrelated"].reference not in everything
        assert "SU-99" not in everything

        subject = read_json(archive, "subject.json")
        assert subject["account"]["email"] == "worker@example.org"
        assert subject["account"]["mobile_phone"] == "+447700900201"
        assert result.record.subject_user == named["worker"]

    def test_third_parties_are_marked_and_the_subjects_own_data_is_not(self, named, held):
        _result, archive = export(named, staff=named["worker"])
        cases = read_json(archive, "cases.json")
        urgent = by_reference(cases, held["urgent"].reference)
        concern = by_reference(cases, held["concern"].reference)

        # Their own: their name as reporter, the concern's words about them, the colleague
        # field naming them.
        assert urgent["reporter"] == "Cara Jones"
        assert concern["report"]["narrative"] == CONCERN_NARRATIVE
        assert concern["report"]["details"]["colleague"] == "Cara Jones"
        assert concern["report"]["details"]["occurred"] == "Tuesday"

        # Others: staff by account, names in structured fields and in free text, the
        # service user, the reporter of the concern about them, every file.
        assert urgent["owner"] == {
            "value": "Mina Patel",
            "redaction_review": True,
            "reason": "another member of staff (case owner)",
        }
        narrative = urgent["report"]["narrative"]
        assert is_marked(narrative)
        assert narrative["third_parties"] == ["Mina Patel", "PC Morgan"]
        assert is_marked(urgent["report"]["who_was_told"])
        assert urgent["report"]["service_user_ref"]["value"] == "SU-7"
        assert is_marked(urgent["report"]["service_user_ref"])
        note = urgent["notes"][0]
        assert is_marked(note["author"]) and note["author"]["value"] == "Mina Patel"
        assert note["text"]["third_parties"] == ["Owen Price"]
        assert "Cara Jones" not in note["text"]["third_parties"]
        assert all(is_marked(a["file"]) for a in urgent["attachments"])
        # The timeline names people by staff id; the export gives the name, marked.
        assigned = next(e for e in urgent["timeline"] if e["kind"] == "reviewer_assigned")
        assert assigned["data"] == {"reviewer_id": named["manager2"].id}
        assert assigned["person"]["value"] == "Owen Price" and is_marked(assigned["person"])
        assert urgent["anonymised_at"] is None
        assert is_marked(concern["reporter"]) and concern["reporter"]["value"] == "Olu Adebayo"

        # redactions.json lists every mark, each pointer leading to it.
        redactions = read_json(archive, "redactions.json")
        assert redactions
        for entry in redactions:
            target = resolve(read_json(archive, entry["file"]), entry["path"])
            assert is_marked(target) and target["value"] == entry["value"], entry
        marked_paths = {(e["file"], e["path"]) for e in redactions}
        index = cases.index(urgent)
        assert ("cases.json", f"/{index}/owner") in marked_paths
        assert ("cases.json", f"/{index}/report/narrative") in marked_paths
        assert ("cases.json", f"/{index}/reporter") not in marked_paths
        manifest = read_json(archive, "manifest.json")
        assert manifest["redaction_marks"] == len(redactions)
        # Nowhere (timeline, access log, pages, notes...) is another person left unmarked.
        others = [n for k, n in NAMES.items() if k != "worker"] + ["PC Morgan", "SU-7"]
        assert_no_unmarked(archive, others)
        readme = archive.read("README.txt").decode()
        assert "redaction_review" in readme and REASON in readme

    def test_a_file_name_in_a_case_they_only_handled_is_marked(self, named, held):
        services.add_attachment(
            case=held["concern"],
            actor=named["manager"],
            upload=SimpleUploadedFile("Mrs Example care plan.txt", TEXT),
        )
        _result, archive = export(named, staff=named["manager"])
        concern = by_reference(read_json(archive, "cases.json"), held["concern"].reference)
        [attachment] = concern["attachments"]
        assert attachment["uploaded_by"] == "Mina Patel"  # the upload itself is hers
        name = attachment["original_name"]
        assert is_marked(name) and "not about them" in name["reason"]

    def test_a_case_they_only_handled_is_marked_as_about_others(self, named, held):
        _result, archive = export(named, staff=named["manager"])
        cases = read_json(archive, "cases.json")
        # The concern about Cara went to Mina as the manager on call; it does not name her.
        concern = by_reference(cases, held["concern"].reference)
        assert concern["why_included"] == ["owner"]
        assert concern["owner"] == "Mina Patel"
        narrative = concern["report"]["narrative"]
        assert is_marked(narrative) and "not about them" in narrative["reason"]
        assert narrative["third_parties"] == ["Cara Jones"]
        assert is_marked(concern["report"]["details"]["colleague"])
        assert is_marked(concern["reporter"])
        # The urgent case names her, she was paged, took it, wrote in it: her own note is
        # hers, the reporter's words are marked for the names in them.
        urgent = by_reference(cases, held["urgent"].reference)
        assert {"owner", "paged", "note_author", "uploaded_a_file", "named_in_text"} <= set(
            urgent["why_included"]
        )
        assert urgent["notes"][0]["author"] == "Mina Patel"
        assert urgent["report"]["narrative"]["third_parties"] == ["PC Morgan"]
        paging = read_json(archive, "paging.json")
        assert held["urgent"].reference in {p["case_reference"] for p in paging["alert_pages"]}
        assert any(m["to"] == "+447700900101" for m in paging["messages_sent"])

    def test_every_case_read_is_access_logged_with_the_export_and_its_reason(self, named, held):
        before = AccessLogEntry.objects.count()
        result, _archive = export(named, staff=named["worker"])
        rows = list(AccessLogEntry.objects.filter(action="subject_access"))
        assert AccessLogEntry.objects.count() == before + 2
        assert {r.case_id for r in rows} == {held["urgent"].id, held["concern"].id}
        assert {r.user_id for r in rows} == {named["dpo"].id}
        assert {r.basis for r in rows} == {"subject_access"}
        assert {r.path for r in rows} == {
            f"manage.py subject_access_export?export={result.record.pk}"
        }
        record = SubjectAccessExport.objects.get()
        assert record.reason == REASON and record.requested_by == named["dpo"]
        assert sorted(record.case_references) == sorted(
            [held["urgent"].reference, held["concern"].reference]
        )
        assert record.sha256 and record.size and record.redaction_marks > 0
        checked, broken = audit.verify_chains()
        assert broken == [] and checked > 0

    def test_queries_do_not_grow_with_the_number_of_cases(
        self, named, held, django_capture_on_commit_callbacks
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def count():
            with CaptureQueriesContext(connection) as captured:
                export(named, staff=named["worker"])
            return len(captured.captured_queries)

        before = count()
        for n in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                case = services.submit_report(
                    reporter=named["worker"],
                    kind=ReportKind.URGENT_DISCLOSURE,
                    grounds=["crime"],
                    narrative=f"Another disclosure {n}; Owen Price knows.",
                    service_user_ref=f"SU-{n}",
                )
            services.add_note(case=case, actor=named["manager"], text="Seen.")
            services.add_attachment(
                case=case, actor=named["manager"], upload=SimpleUploadedFile("a.txt", TEXT)
            )
        assert count() == before

    def test_a_lost_attachment_file_is_listed_not_fatal(self, named, held, settings):
        (settings.ATTACHMENTS_DIR / held["pdf"].stored_name).unlink()
        _result, archive = export(named, staff=named["worker"])
        missing = read_json(archive, "manifest.json")["attachments_missing"]
        assert len(missing) == 1 and missing[0].endswith("-scan.pdf")
        assert missing[0] not in archive.namelist()
        cases = read_json(archive, "cases.json")
        text = by_reference(cases, held["urgent"].reference)["attachments"][1]["file"]["value"]
        assert archive.read(text) == TEXT

    def test_an_anonymised_case_is_listed_without_what_retention_removed(self, named, held):
        case = held["urgent"]
        closed_at = timezone.now() - timedelta(days=400)
        Case.objects.filter(pk=case.pk).update(
            status=CaseStatus.CLOSED, outcome="no_breach", closed_at=closed_at
        )
        rule, _created = RetentionRule.objects.get_or_create(
            kind="", outcome="no_breach", defaults={"keep_months": 12, "basis": "test"}
        )
        record = retention.anonymise_case(
            case_id=case.pk, rule=rule, run=uuid.uuid4(), trigger="command", now=timezone.now()
        )
        assert record is not None

        _result, archive = export(named, staff=named["worker"])
        urgent = by_reference(read_json(archive, "cases.json"), case.reference)
        assert urgent["anonymised_at"] is not None
        assert urgent["notes"] == [] and urgent["attachments"] == []
        everything = b"".join(archive.read(name) for name in archive.namelist()).decode(
            errors="replace"
        )
        assert URGENT_NARRATIVE not in everything
        assert "Spoke to Cara Jones and Owen Price." not in everything
        assert not any(name.startswith("attachments/") for name in archive.namelist())

    def test_a_name_field_naming_them_and_someone_else_is_marked(self, named, held):
        """A structured field is the subject's own only when it names nobody else: "Cara Jones
        and Rhys Bowen" names Rhys, whom the system has no account for, as well."""
        with_both = services.submit_report(
            reporter=named["other_worker"],
            kind=ReportKind.CONCERN_COLLEAGUE,
            narrative="Two colleagues discussed a service user in the canteen.",
            details={"colleague": "Cara Jones and Rhys Bowen", "occurred": "Friday"},
        )
        _result, archive = export(named, staff=named["worker"])
        cases = read_json(archive, "cases.json")
        colleague = by_reference(cases, with_both.reference)["report"]["details"]["colleague"]
        assert is_marked(colleague) and colleague["value"] == "Cara Jones and Rhys Bowen"
        # Her name alone is still hers.
        concern = by_reference(cases, held["concern"].reference)
        assert concern["report"]["details"]["colleague"] == "Cara Jones"
        assert_no_unmarked(archive, ["Rhys Bowen"])

    def test_the_local_authority_reference_is_the_service_users(self, named, held):
        Case.objects.filter(pk=held["urgent"].pk).update(local_authority_reference="LA-55501")
        _result, archive = export(named, staff=named["worker"])
        urgent = by_reference(read_json(archive, "cases.json"), held["urgent"].reference)
        assert is_marked(urgent["local_authority_reference"])
        assert urgent["local_authority_reference"]["value"] == "LA-55501"
        assert_no_unmarked(archive, ["LA-55501"])
        # The service user's own export: theirs, not marked.
        _result, archive = export(named, service_user_ref="SU-7")
        urgent = by_reference(read_json(archive, "cases.json"), held["urgent"].reference)
        assert urgent["local_authority_reference"] == "LA-55501"

    def test_sms_others_sent_from_a_shared_phone_are_marked(self, named, held):
        """Mina and Owen share the on-call handset: what Owen texted from it is his, not hers,
        and a text the shared phone sent without a code cannot be told apart."""
        from notifications.models import InboundMessage

        mina, owen = named["manager"], named["manager2"]
        User.objects.filter(pk=owen.pk).update(phone=mina.phone)
        shared = str(mina.phone)
        InboundMessage.objects.create(
            provider_sid="SM-mina", from_number=shared, body="12A", sender=mina, reply="ok"
        )
        InboundMessage.objects.create(
            provider_sid="SM-owen",
            from_number=shared,
            body="Owen here, at the dentist until 3",
            sender=owen,
            reply="Concernline did not understand.",
        )
        InboundMessage.objects.create(
            provider_sid="SM-who", from_number=shared, body="ACK", reply="This phone is shared."
        )

        _result, archive = export(named, staff=mina)
        received = read_json(archive, "paging.json")["messages_received"]
        by_text = {(r["text"]["value"] if is_marked(r["text"]) else r["text"]): r for r in received}
        assert set(by_text) == {"12A", "Owen here, at the dentist until 3", "ACK"}
        assert by_text["12A"]["text"] == "12A" and by_text["12A"]["our_answer"] == "ok"
        owens = by_text["Owen here, at the dentist until 3"]
        assert is_marked(owens["text"]) and is_marked(owens["our_answer"])
        assert owens["sent_by"]["value"] == "Owen Price" and is_marked(owens["sent_by"])
        assert is_marked(by_text["ACK"]["text"])
        marked = {e["value"] for e in read_json(archive, "redactions.json")}
        assert "Owen here, at the dentist until 3" in marked


class TestServiceUserSubject:
    def test_holds_the_cases_naming_the_reference_with_everyone_else_marked(self, named, held):
        result, archive = export(named, service_user_ref=" su-7 ")
        cases = read_json(archive, "cases.json")
        assert {c["reference"] for c in cases} == {
            held["urgent"].reference,
            held["mention"].reference,
        }
        urgent = by_reference(cases, held["urgent"].reference)
        assert urgent["why_included"] == ["service_user_reference"]
        assert urgent["report"]["service_user_ref"] == "SU-7"  # theirs: not marked
        assert is_marked(urgent["reporter"]) and urgent["reporter"]["value"] == "Cara Jones"
        assert is_marked(urgent["owner"])
        assert urgent["report"]["narrative"]["value"] == URGENT_NARRATIVE
        assert urgent["report"]["narrative"]["third_parties"] == ["Mina Patel", "PC Morgan"]
        files = {a["sha256"]: a["file"]["value"] for a in urgent["attachments"]}
        assert archive.read(files[held["pdf"].sha256]) == PDF

        mention = by_reference(cases, held["mention"].reference)
        assert mention["why_included"] == ["named_in_text"]
        assert mention["report"]["service_user_ref"]["value"] == "SU-8"
        assert mention["report"]["narrative"]["third_parties"] == ["SU-8"]

        everything = b"".join(archive.read(n) for n in archive.namelist()).decode("latin-1")
        assert UNRELATED_NARRATIVE not in everything and CONCERN_NARRATIVE not in everything
        assert "paging.json" not in archive.namelist()
        assert_no_unmarked(archive, [*NAMES.values(), "PC Morgan", "SU-8"])
        assert read_json(archive, "subject.json")["service_user_reference"] == "SU-7"
        logged = set(
            AccessLogEntry.objects.filter(action="subject_access").values_list("case_id", flat=True)
        )
        assert logged == {held["urgent"].id, held["mention"].id}
        assert result.record.service_user_ref == "SU-7"


def sign_in(client, user):
    client.force_login(user)
    return client


class TestPage:
    def test_the_dpo_downloads_the_zip(self, client, named, held):
        sign_in(client, named["dpo"])
        page = client.get(URL)
        assert page.status_code == 200 and "reason" in page.content.decode()
        response = client.post(URL, {"staff_email": "WORKER@example.org", "reason": REASON})
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        assert response["Cache-Control"] == "no-store"
        assert "attachment;" in response["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        cases = read_json(archive, "cases.json")
        assert {c["reference"] for c in cases} == {
            held["urgent"].reference,
            held["concern"].reference,
        }
        rows = AccessLogEntry.objects.filter(action="subject_access")
        assert rows.count() == 2
        assert all(r.ip_address == "127.0.0.1" for r in rows)
        record = SubjectAccessExport.objects.get()
        assert {r.path for r in rows} == {f"{URL}?export={record.pk}"}
        assert record.via == "page" and record.reason == REASON
        listed = client.get(URL).content.decode()
        assert REASON in listed and "worker@example.org" in listed

    def test_the_page_and_its_errors_are_in_welsh_for_a_welsh_speaker(self, client, named, held):
        User.objects.filter(pk=named["dpo"].pk).update(language="cy")
        sign_in(client, named["dpo"])
        assert "Mynediad gwrthrych at ddata" in client.get(URL).content.decode()
        response = client.post(URL, {"service_user_ref": "SU-404", "reason": REASON})
        assert response.status_code == 400
        assert "Nid oes unrhyw adroddiad" in response.content.decode()

    @pytest.mark.parametrize(
        "who", ["worker", "other_worker", "manager", "manager2", "hr", "safeguarding", "admin"]
    )
    def test_everyone_else_is_refused_with_a_403(self, client, named, held, who):
        sign_in(client, named[who])
        for response in (
            client.get(URL),
            client.post(URL, {"staff_email": "worker@example.org", "reason": REASON}),
            client.post(URL, {"service_user_ref": "SU-7", "reason": REASON}),
        ):
            assert response.status_code == 403, who
            body = response.content.decode()
            assert "data protection officer" in body
            assert URGENT_NARRATIVE not in body
        assert SubjectAccessExport.objects.count() == 0
        assert not AccessLogEntry.objects.filter(action="subject_access").exists()

    def test_a_superuser_with_the_dpo_role_may(self, client, named, held):
        admin = named["admin"]
        User.objects.filter(pk=admin.pk).update(role="dpo")
        admin.refresh_from_db()
        sign_in(client, admin)
        assert client.get(URL).status_code == 200

    def test_anonymous_callers_are_sent_to_sign_in(self, client, held):
        for response in (client.get(URL), client.post(URL, {"service_user_ref": "SU-7"})):
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
        assert SubjectAccessExport.objects.count() == 0

    def test_an_unverified_dpo_is_sent_to_the_second_factor(self, client, named, held, settings):
        settings.SECOND_FACTOR_REQUIRED = True
        sign_in(client, named["dpo"])
        response = client.post(URL, {"staff_email": "worker@example.org", "reason": REASON})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("two-factor-setup"))
        assert SubjectAccessExport.objects.count() == 0

    def test_an_inactive_dpo_is_refused(self, named):
        dpo = named["dpo"]
        dpo.is_active = False
        with pytest.raises(subject_access.SubjectAccessRefused):
            subject_access.export_subject_access(
                actor=dpo, staff=named["worker"], reason=REASON, via="page"
            )

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"staff_email": "worker@example.org"}, "reason", "Say why"),
            ({"staff_email": "worker@example.org", "reason": "   "}, "reason", "Say why"),
            ({"staff_email": "worker@example.org", "reason": "short"}, "reason", "at least"),
            ({"staff_email": "nobody@example.org", "reason": REASON}, "staff_email", "No member"),
            ({"staff_email": "not an email", "reason": REASON}, "staff_email", "valid email"),
            ({"service_user_ref": "SU-12345", "reason": REASON}, "service_user_ref", "No report"),
            ({"service_user_ref": "<b>x</b>", "reason": REASON}, "service_user_ref", "e.g."),
            ({"service_user_ref": "S" * 40, "reason": REASON}, "service_user_ref", "at most"),
            ({"reason": REASON}, "staff_email", "not both"),
            (
                {"staff_email": "worker@example.org", "service_user_ref": "SU-7", "reason": REASON},
                "staff_email",
                "not both",
            ),
            ({"staff_email": "dpo@example.org", "reason": REASON}, "staff_email", "own data"),
        ],
    )
    def test_bad_input_is_a_form_error(self, client, named, held, data, field, message):
        sign_in(client, named["dpo"])
        response = client.post(URL, data)
        assert response.status_code == 400
        form = response.context["form"]
        assert field in form.errors, form.errors
        assert message in " ".join(form.errors[field])
        assert f'id="id_{field}_error"' in response.content.decode()
        assert SubjectAccessExport.objects.count() == 0
        assert not AccessLogEntry.objects.filter(action="subject_access").exists()


class TestCommand:
    def test_writes_the_export_for_the_dpo(self, named, held, tmp_path):
        output = tmp_path / "sar.zip"
        out = io.StringIO()
        call_command(
            "subject_access_export",
            "--dpo",
            "dpo@example.org",
            "--service-user",
            "SU-7",
            "--reason",
            REASON,
            "--output",
            str(output),
            stdout=out,
        )
        assert "Wrote" in out.getvalue() and "marks for redaction review" in out.getvalue()
        assert output.stat().st_mode & 0o777 == 0o600
        archive = zipfile.ZipFile(output)
        cases = read_json(archive, "cases.json")
        assert held["urgent"].reference in {c["reference"] for c in cases}
        record = SubjectAccessExport.objects.get()
        assert record.via == "command" and record.requested_by == named["dpo"]
        paths = set(
            AccessLogEntry.objects.filter(action="subject_access").values_list("path", flat=True)
        )
        assert paths == {f"manage.py subject_access_export?export={record.pk}"}

    def test_staff_by_email(self, named, held, tmp_path):
        output = tmp_path / "staff.zip"
        call_command(
            "subject_access_export",
            "--dpo=dpo@example.org",
            "--staff=worker@example.org",
            f"--reason={REASON}",
            f"--output={output}",
            stdout=io.StringIO(),
        )
        subject = read_json(zipfile.ZipFile(output), "subject.json")
        assert subject["account"]["full_name"] == "Cara Jones"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--dpo=hr@example.org", "--staff=worker@example.org"], "not an active data"),
            (["--dpo=admin@example.org", "--staff=worker@example.org"], "not an active data"),
            (["--dpo=dpo@example.org", "--staff=nobody@example.org"], "No member of staff"),
            (["--dpo=dpo@example.org", "--service-user=SU-404"], "No report"),
            (["--dpo=dpo@example.org", "--staff=worker@example.org", "--reason=x"], "Say why"),
        ],
    )
    def test_bad_input_is_a_plain_error(self, named, held, tmp_path, args, message):
        output = tmp_path / "out.zip"
        if not any(a.startswith("--reason") for a in args):
            args = [*args, f"--reason={REASON}"]
        with pytest.raises(CommandError) as caught:
            call_command("subject_access_export", *args, f"--output={output}")
        assert message in str(caught.value)
        assert not output.exists()
        assert SubjectAccessExport.objects.count() == 0

    def test_never_overwrites_a_file(self, named, held, tmp_path):
        output = tmp_path / "taken.zip"
        output.write_bytes(b"already here")
        with pytest.raises(CommandError, match="already exists"):
            call_command(
                "subject_access_export",
                "--dpo=dpo@example.org",
                "--service-user=SU-7",
                f"--reason={REASON}",
                f"--output={output}",
            )
        assert output.read_bytes() == b"already here"
        assert SubjectAccessExport.objects.count() == 0
