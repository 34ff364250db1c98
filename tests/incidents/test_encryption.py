"""Narratives, details, notes and attachments are encrypted at rest: what the database and
the attachments folder hold reveals nothing, and keys rotate without losing a report."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from incidents import services
from incidents.models import Attachment, CaseNote, Report
from tests.incidents.conftest import NARRATIVE

SECRET_WORDS = ("Example", "Secret Lane", "care plan", "son hits", "SU-7 diary")


def raw_rows(table: str) -> str:
    """Every column of every row as the database holds it: what a dump would show."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(t)::text FROM {table} AS t")  # noqa: S608
        return "\n".join(row[0] for row in cursor.fetchall())


def assert_reveals_nothing(text: str) -> None:
    for word in SECRET_WORDS:
        assert word not in text


@pytest.fixture
def case_with_everything(make_case, people):
    case = make_case("breach", to="under_review")
    services.add_note(case=case, actor=people["manager"], text="Checked the SU-7 diary")
    services.add_report_information(
        case=case, actor=people["worker"], text="Mrs Example phoned again"
    )
    services.add_attachment(
        case=case,
        actor=people["manager"],
        upload=SimpleUploadedFile("notes.txt", b"Secret Lane, the care plan", "text/plain"),
    )
    return case


def test_the_raw_columns_show_no_narrative_details_or_notes(case_with_everything):
    for table in ("incidents_report", "incidents_casenote"):
        assert_reveals_nothing(raw_rows(table))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT narrative, details FROM incidents_report WHERE case_id = %s",
            [case_with_everything.id],
        )
        narrative, details = cursor.fetchone()
    assert narrative.startswith("gAAAAA") and details.startswith("gAAAAA")  # Fernet tokens


def test_the_application_reads_them_back(case_with_everything):
    report = Report.objects.get(case=case_with_everything)
    assert report.narrative == NARRATIVE
    assert report.details["information"] == "A care plan"
    assert sorted(CaseNote.objects.values_list("text", flat=True)) == [
        "Checked the SU-7 diary",
        "Mrs Example phoned again",
    ]


def test_an_attachment_on_disk_is_not_plaintext(case_with_everything, settings, client, people):
    attachment = Attachment.objects.get(case=case_with_everything)
    on_disk = (settings.ATTACHMENTS_DIR / attachment.stored_name).read_bytes()
    assert_reveals_nothing(on_disk.decode())
    client.force_login(people["manager"])
    response = client.get(
        reverse(
            "incidents:attachment-download", args=[case_with_everything.reference, attachment.id]
        )
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"Secret Lane, the care plan"


def test_a_changed_token_does_not_read_as_something_else(case_with_everything):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE incidents_casenote SET text = overlay(text placing 'A' from 40 for 1)"
        )
    with pytest.raises(InvalidToken):
        list(CaseNote.objects.values_list("text", flat=True))


def read_everything(case, settings) -> tuple:
    report = Report.objects.get(case=case)
    attachment = Attachment.objects.get(case=case)
    return (
        report.narrative,
        report.details,
        sorted(CaseNote.objects.filter(case=case).values_list("text", flat=True)),
        services.read_attachment(attachment),
    )


def test_keys_rotate_and_the_old_key_can_go(case_with_everything, settings):
    before = read_everything(case_with_everything, settings)
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_keys", "--batch-size", "1", stdout=out)
    assert "Re-encrypted 3 rows and 1 attachment files." in out.getvalue()
    call_command("rotate_keys", stdout=StringIO())  # again: nothing breaks

    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert read_everything(case_with_everything, settings) == before
    assert_reveals_nothing(raw_rows("incidents_report") + raw_rows("incidents_casenote"))

    settings.FIELD_ENCRYPTION_KEYS = [old]  # the retired key opens nothing any more
    with pytest.raises(InvalidToken):
        Report.objects.get(case=case_with_everything)
    with pytest.raises(InvalidToken):
        services.read_attachment(Attachment.objects.get(case=case_with_everything))


def test_rotation_stops_clearly_on_a_value_no_key_opens(case_with_everything, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="incidents_report row .* cannot be decrypted"):
        call_command("rotate_keys", stdout=StringIO())


def test_the_service_api_still_takes_and_gives_a_dict(people, rota):
    case = services.submit_report(
        reporter=people["worker"],
        kind="disclosure_request",
        narrative="A solicitor asked for Mrs Example's records",
        details={"requester": "A solicitor", "purpose": "A claim", "consent": "not_asked"},
    )
    assert Report.objects.get(case=case).details == {
        "requester": "A solicitor",
        "purpose": "A claim",
        "consent": "not_asked",
    }
    assert_reveals_nothing(raw_rows("incidents_report"))
