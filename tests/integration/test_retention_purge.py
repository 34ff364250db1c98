"""The nightly retention purge on a real Celery worker, over real Redis and PostgreSQL: the task
beat sends is picked up from the broker and anonymises an expired case, files included."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from config import crypto
from incidents import services
from incidents.models import Case, CaseNote, ReportKind
from incidents.retention import DEFAULT_RULES
from incidents.retention_models import PurgeRecord, PurgeTrigger, RetentionRule
from incidents.tasks import purge_expired

from .conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NARRATIVE = "Dai Colleague read out a service user's address on the bus."


def test_a_worker_runs_the_nightly_purge(people, rota, start_worker, settings, tmp_path):
    for kind, outcome, months, basis in DEFAULT_RULES:
        RetentionRule.objects.get_or_create(
            kind=kind, outcome=outcome, defaults={"keep_months": months, "basis": basis}
        )
    # Where the worker keeps attachments (VAR_DIR is tmp_path for it).
    settings.ATTACHMENTS_DIR = tmp_path / "attachments"
    manager = people["manager"]
    case = services.submit_report(
        reporter=people["worker"],
        kind=ReportKind.CONCERN_COLLEAGUE,
        narrative=NARRATIVE,
        details={"colleague": "Dai Colleague"},
    )
    case.refresh_from_db()
    assert case.owner == manager
    services.add_note(case=case, actor=manager, text="Spoke to Dai.")
    attachment = services.add_attachment(
        case=case, actor=manager, upload=SimpleUploadedFile("statement.txt", b"Dai's statement")
    )
    stored = settings.ATTACHMENTS_DIR / attachment.stored_name
    services.start_review(case=case, actor=manager)
    services.record_outcome(case=case, actor=manager, outcome="no_breach")
    services.close_case(case=case, actor=manager)
    # Closed thirteen months ago (the worker runs on today's clock).
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=400))
    assert stored.exists()

    start_worker()
    purge_expired.apply_async()
    wait_for(
        lambda: PurgeRecord.objects.filter(case=case).exists(),
        timeout=30,
        what="the worker to anonymise the expired case",
    )

    record = PurgeRecord.objects.get(case=case)
    assert record.trigger == PurgeTrigger.NIGHTLY and record.files_deleted == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT narrative FROM incidents_report WHERE case_id = %s", [case.id])
        (narrative,) = cursor.fetchone()
    assert crypto.decrypt_bytes(narrative.encode()) == b""
    assert not CaseNote.objects.filter(case=case).exists()
    assert not stored.exists()
