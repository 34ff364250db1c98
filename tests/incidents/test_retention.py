"""Retention: closed cases are anonymised once their rule's period is over, never while open or
under a legal hold; a dry run changes nothing; each purge leaves a record without personal
data, and the audit chains still verify. Cases are built through the services, and time moves
with freezegun."""

import importlib
import io
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from config import crypto
from incidents import retention, services
from incidents.models import (
    AccessLogEntry,
    Attachment,
    BreakGlass,
    Case,
    CaseNote,
    CaseStatus,
    ReportKind,
    TimelineEvent,
    TimelineKind,
)
from incidents.retention import (
    DEFAULT_RULES,
    PurgeTrigger,
    RetentionError,
    add_months,
    place_legal_hold,
    purge_expired,
    rule_for,
)
from incidents.retention_models import LegalHold, PurgeRecord, RetentionRule
from incidents.tasks import purge_expired as purge_expired_task

NARRATIVE = "Dai Colleague read out Mrs Example's address, 4 Secret Lane, on the bus."
COLLEAGUE = "Dai Colleague"
SERVICE_USER = "SU-4242"
NOTE = "Spoke to Dai Colleague; Mrs Example's daughter phoned on 07700 900999."
WHO_WAS_TOLD = "Mr Bystander"
FILE_CONTENT = b"Incident form: Mrs Example, 4 Secret Lane, 07700 900999\n"


@pytest.fixture(autouse=True)
def default_rules(db):
    """The seeded defaults (a transactional test elsewhere may have emptied the table)."""
    for kind, outcome, months, basis in DEFAULT_RULES:
        RetentionRule.objects.get_or_create(
            kind=kind, outcome=outcome, defaults={"keep_months": months, "basis": basis}
        )


@pytest.fixture
def concern(people, rota, django_capture_on_commit_callbacks):
    """concern(outcome=..., close=True): a concern about a colleague, reported by `worker`,
    owned by the on-call `manager`, with a note and an attachment, taken to `outcome` and closed
    now (or left open)."""

    def make(*, outcome="no_breach", close=True, kind=ReportKind.CONCERN_COLLEAGUE):
        manager = people["manager"]
        extra = (
            {"details": {"colleague": COLLEAGUE}}
            if kind == ReportKind.CONCERN_COLLEAGUE
            else {"grounds": ["abuse_or_harm"], "who_was_told": WHO_WAS_TOLD}
        )
        with django_capture_on_commit_callbacks(execute=True):
            case = services.submit_report(
                reporter=people["worker"],
                kind=kind,
                narrative=NARRATIVE,
                service_user_ref=SERVICE_USER,
                **extra,
            )
        if kind == ReportKind.URGENT_DISCLOSURE:
            with django_capture_on_commit_callbacks(execute=True):
                services.acknowledge_case(case=case, actor=manager)
        case.refresh_from_db()
        services.add_note(case=case, actor=manager, text=NOTE)
        services.add_attachment(
            case=case,
            actor=manager,
            upload=SimpleUploadedFile("dai-colleague-statement.txt", FILE_CONTENT),
        )
        if close:
            services.start_review(case=case, actor=manager)
            services.record_outcome(case=case, actor=manager, outcome=outcome)
            services.close_case(case=case, actor=manager)
        case.refresh_from_db()
        return case

    return make


def raw_report(case) -> dict:
    """The report's columns as the database holds them, decrypted by hand."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT narrative, details, service_user_ref, who_was_told "
            "FROM incidents_report WHERE case_id = %s",
            [case.id],
        )
        narrative, details, service_user_ref, who_was_told = cursor.fetchone()
    return {
        "narrative": crypto.decrypt_bytes(narrative.encode()).decode(),
        "details": crypto.decrypt_bytes(details.encode()).decode(),
        "service_user_ref": service_user_ref,
        "who_was_told": who_was_told,
    }


def stored_files(case) -> list:
    return [settings.ATTACHMENTS_DIR / a.stored_name for a in case.attachments.all()]


def later(months: int, days: int = 1):
    return freeze_time(add_months(timezone.now(), months) + timedelta(days=days))


def audit_rows(case) -> list[tuple]:
    timeline = TimelineEvent.objects.filter(case=case).order_by("id").values_list("id", "hash")
    log = AccessLogEntry.objects.filter(case=case).order_by("id").values_list("id", "hash")
    return list(timeline) + list(log)


class TestRules:
    def test_the_seeded_defaults_are_the_documented_ones(self):
        migration = importlib.import_module("incidents.migrations.0008_retention")
        assert migration.DEFAULT_RULES == DEFAULT_RULES
        rules = {(r.kind, r.outcome): r.keep_months for r in RetentionRule.objects.all()}
        assert rules[("", "no_breach")] == 12
        assert rules[("", "disciplinary")] == 72
        assert rules[("urgent_disclosure", "")] == 120

    def test_the_most_specific_rule_wins(self):
        rules = list(RetentionRule.objects.all())
        no_breach = Case(kind=ReportKind.CONCERN_COLLEAGUE, outcome="no_breach")
        assert rule_for(no_breach, rules).keep_months == 12
        # The kind's rule beats a rule for the outcome alone: safeguarding is kept longer.
        urgent = Case(kind=ReportKind.URGENT_DISCLOSURE, outcome="no_breach")
        assert rule_for(urgent, rules).keep_months == 120
        exact = RetentionRule.objects.create(
            kind=ReportKind.URGENT_DISCLOSURE, outcome="no_breach", keep_months=36, basis="x"
        )
        assert rule_for(urgent, [*rules, exact]) == exact
        other = Case(kind=ReportKind.DISCLOSURE_REQUEST, outcome="")
        assert rule_for(other, rules).keep_months == 72  # the catch-all

    def test_no_rule_keeps_the_case(self, concern):
        case = concern()
        RetentionRule.objects.all().delete()
        with later(1200):
            assert purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND).anonymised == []
        assert raw_report(case)["narrative"] == NARRATIVE

    def test_months_are_calendar_months(self):
        at = timezone.now().replace(year=2025, month=1, day=31)
        assert add_months(at, 1).date().isoformat() == "2025-02-28"
        assert add_months(at, 12).date().isoformat() == "2026-01-31"
        assert add_months(at, -2).date().isoformat() == "2024-11-30"


class TestDryRun:
    def test_lists_what_would_go_and_why_and_changes_nothing(self, concern):
        case = concern()
        files = stored_files(case)
        before = audit_rows(case)
        out = io.StringIO()
        with later(12):
            call_command("purge_expired", "--dry-run", stdout=out)
        text = out.getvalue()
        assert f"would anonymise {case.reference}" in text
        assert "any kind/no_breach, 12 months" in text
        assert f"closed {case.closed_at:%Y-%m-%d}" in text
        assert "Nothing was changed" in text
        assert NARRATIVE not in text and COLLEAGUE not in text
        case.refresh_from_db()
        assert case.anonymised_at is None
        assert raw_report(case)["narrative"] == NARRATIVE
        assert CaseNote.objects.filter(case=case).count() == 1
        assert all(path.exists() for path in files) and files
        assert not PurgeRecord.objects.exists()
        assert audit_rows(case) == before


class TestPurge:
    def test_anonymises_the_expired_case_and_nothing_else(self, concern, people):
        expired = concern()
        open_case = concern(close=False)
        held = concern()
        place_legal_hold(case=held, actor=people["dpo"], reason="Tribunal 1234/2026")
        with later(6):
            unexpired = concern()  # closed six months after the others
        expired_files = stored_files(expired)
        untouched = [open_case, held, unexpired]
        untouched_files = {c.id: stored_files(c) for c in untouched}

        with later(12):
            result = purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)

        assert [r.case_id for r in result.anonymised] == [expired.id]
        assert [i.case.id for i in result.held] == [held.id]
        expired.refresh_from_db()
        assert expired.anonymised_at is not None and expired.status == CaseStatus.CLOSED
        raw = raw_report(expired)
        assert raw == {"narrative": "", "details": "{}", "service_user_ref": "", "who_was_told": ""}
        assert not CaseNote.objects.filter(case=expired).exists()
        assert not Attachment.objects.filter(case=expired).exists()
        assert not any(path.exists() for path in expired_files) and expired_files
        # Kept as it was: reference, kind, outcome, dates.
        assert expired.kind == ReportKind.CONCERN_COLLEAGUE and expired.outcome == "no_breach"

        for case in untouched:
            case.refresh_from_db()
            assert case.anonymised_at is None
            assert raw_report(case)["narrative"] == NARRATIVE
            assert COLLEAGUE in raw_report(case)["details"]
            assert CaseNote.objects.get(case=case).text == NOTE
            assert all(path.exists() for path in untouched_files[case.id])

    def test_open_cases_are_never_anonymised(self, concern):
        case = concern(close=False)
        with later(1200):
            assert purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND).anonymised == []
        assert raw_report(case)["narrative"] == NARRATIVE

    def test_safeguarding_disclosures_are_kept_ten_years(self, concern):
        case = concern(kind=ReportKind.URGENT_DISCLOSURE)
        with later(119):
            purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        assert raw_report(case)["who_was_told"] == WHO_WAS_TOLD
        with later(120):
            purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        assert raw_report(case) == {
            "narrative": "",
            "details": "{}",
            "service_user_ref": "",
            "who_was_told": "",
        }

    def test_writes_a_purge_record_without_personal_data(self, concern, people):
        case = concern()
        with later(12):
            result = purge_expired(dry_run=False, trigger=PurgeTrigger.NIGHTLY)
        record = PurgeRecord.objects.get(case=case)
        assert record.case_reference == case.reference
        assert (record.kind, record.outcome) == (ReportKind.CONCERN_COLLEAGUE, "no_breach")
        assert (record.rule_kind, record.rule_outcome, record.keep_months) == ("", "no_breach", 12)
        assert record.rule == RetentionRule.objects.get(kind="", outcome="no_breach")
        assert record.closed_at == case.closed_at
        assert record.expired_at == add_months(case.closed_at, 12)
        assert record.run == result.run and record.trigger == PurgeTrigger.NIGHTLY
        assert (record.notes_removed, record.attachments_removed, record.files_deleted) == (1, 1, 1)
        values = " ".join(str(getattr(record, f.attname)) for f in record._meta.concrete_fields)
        for personal in (NARRATIVE, COLLEAGUE, SERVICE_USER, "Secret Lane", "07700"):
            assert personal not in values
        for person in people.values():
            assert person.full_name not in values and person.email not in values
        event = case.timeline.get(kind=TimelineKind.ANONYMISED)
        assert event.actor is None and event.data["purge_record_id"] == record.id

    def test_the_audit_chains_still_verify_and_are_not_rewritten(self, concern, people):
        case = concern()
        services.break_glass(case=case, actor=people["hr"], reason=f"{COLLEAGUE} asked me")
        before = audit_rows(case)
        with later(12):
            purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        after = audit_rows(case)
        # Every row written before is still there, unchanged; one event was added.
        assert set(before) <= set(after) and len(after) == len(before) + 1
        out = io.StringIO()
        call_command("verify_audit", stdout=out)
        assert out.getvalue().startswith("OK:")
        assert BreakGlass.objects.get(case=case).reason == ""

    def test_the_audit_trail_holds_nothing_the_purge_would_have_to_remove(
        self, concern, people, django_capture_on_commit_callbacks
    ):
        """Timeline data names people by staff id; free text (the local authority's
        reference) stays on the case, which is anonymised."""
        case = concern(kind=ReportKind.URGENT_DISCLOSURE, close=False)  # paged, acknowledged
        manager = people["manager"]
        services.assign_reviewer(case=case, actor=manager, reviewer=people["manager2"])
        services.record_safeguarding_referral(
            case=case, actor=people["safeguarding"], reference="LA-Smith-77"
        )
        timeline = list(case.timeline.values_list("data", flat=True))
        assert case.timeline.filter(kind=TimelineKind.PAGE_SENT).exists()
        text = repr(timeline) + repr(list(AccessLogEntry.objects.filter(case=case).values()))
        for personal in (NARRATIVE, SERVICE_USER, WHO_WAS_TOLD, "LA-Smith-77", NOTE):
            assert personal not in text
        for person in people.values():
            assert person.full_name not in text

    def test_running_again_does_nothing_more(self, concern):
        case = concern()
        with later(12):
            first = purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
            second = purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        assert len(first.anonymised) == 1 and second.anonymised == []
        assert PurgeRecord.objects.filter(case=case).count() == 1
        assert case.timeline.filter(kind=TimelineKind.ANONYMISED).count() == 1

    def test_one_case_failing_does_not_stop_the_others(self, concern):
        stuck, fine = concern(), concern()
        # A file the purge cannot delete: a directory where the attachment's file was.
        path = stored_files(stuck)[0]
        path.unlink()
        path.mkdir()
        (path / "inside").write_bytes(b"x")
        out, err = io.StringIO(), io.StringIO()
        with later(12), pytest.raises(CommandError, match=stuck.reference):
            call_command("purge_expired", stdout=out, stderr=err)
        assert f"anonymised {fine.reference}" in out.getvalue()
        fine.refresh_from_db()
        stuck.refresh_from_db()
        assert fine.anonymised_at is not None
        # All or nothing for the stuck case: it is tried again the next night.
        assert stuck.anonymised_at is None and raw_report(stuck)["narrative"] == NARRATIVE
        assert CaseNote.objects.filter(case=stuck).exists()
        assert not PurgeRecord.objects.filter(case=stuck).exists()

    def test_nothing_more_is_added_to_an_anonymised_case(self, concern, people):
        case = concern()
        with later(12):
            purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        with pytest.raises(services.IllegalTransition):
            services.add_note(case=case, actor=people["manager"], text="More about Dai")
        with pytest.raises(services.IllegalTransition):
            services.add_attachment(
                case=case, actor=people["manager"], upload=SimpleUploadedFile("a.txt", b"text")
            )

    def test_the_case_page_says_it_was_anonymised(self, client, concern, people):
        case = concern()
        with later(12):
            purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
            client.force_login(people["manager"])
            response = client.get(reverse("incidents:case-detail", args=[case.reference]))
        body = response.content.decode()
        assert response.status_code == 200 and "Anonymised on" in body
        assert NARRATIVE not in body and COLLEAGUE not in body and SERVICE_USER not in body


class TestLegalHold:
    @pytest.mark.parametrize("who", ["dpo", "admin"])
    def test_the_dpo_or_an_administrator_places_and_lifts_it(self, concern, people, who):
        case = concern()
        hold = place_legal_hold(case=case, actor=people[who], reason="Claim ET/1234")
        assert (hold.placed_by, hold.lifted_at) == (people[who], None)
        event = case.timeline.get(kind=TimelineKind.LEGAL_HOLD_PLACED)
        assert event.actor == people[who] and "ET/1234" not in str(event.data)
        with later(12):
            assert purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND).anonymised == []
            retention.lift_legal_hold(hold=hold, actor=people[who])
            assert case.timeline.filter(kind=TimelineKind.LEGAL_HOLD_LIFTED).exists()
            result = purge_expired(dry_run=False, trigger=PurgeTrigger.COMMAND)
        assert [r.case_id for r in result.anonymised] == [case.id]
        hold.refresh_from_db()
        assert hold.lifted_by == people[who] and hold.reason == ""  # cleared with the case

    @pytest.mark.parametrize("who", ["worker", "manager", "hr", "safeguarding"])
    def test_nobody_else_may(self, concern, people, who):
        case = concern()
        with pytest.raises(RetentionError):
            place_legal_hold(case=case, actor=people[who], reason="Claim")
        hold = place_legal_hold(case=case, actor=people["dpo"], reason="Claim")
        with pytest.raises(RetentionError):
            retention.lift_legal_hold(hold=hold, actor=people[who])
        assert LegalHold.objects.get(case=case).lifted_at is None

    def test_one_hold_at_a_time_and_a_reason_is_needed(self, concern, people):
        case = concern(close=False)
        with pytest.raises(RetentionError):
            place_legal_hold(case=case, actor=people["dpo"], reason="   ")
        place_legal_hold(case=case, actor=people["dpo"], reason="Claim")
        with pytest.raises(RetentionError):
            place_legal_hold(case=case, actor=people["admin"], reason="Another claim")

    def test_a_hold_placed_after_the_list_was_made_still_stops_the_purge(self, concern, people):
        case = concern()
        with later(12):
            [item] = retention.expired_cases()
            place_legal_hold(case=case, actor=people["dpo"], reason="Claim")
            record = retention.anonymise_case(
                case_id=case.id,
                rule=item.rule,
                run=uuid.uuid4(),
                trigger=PurgeTrigger.COMMAND,
                now=timezone.now(),
            )
        assert record is None and raw_report(case)["narrative"] == NARRATIVE


class TestNightly:
    def test_beat_runs_the_purge_nightly(self):
        entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-cases"]
        assert entry["task"] == "incidents.purge_expired"
        assert entry["schedule"].hour == {3} and entry["schedule"].minute == {15}

    def test_the_task_anonymises_expired_cases(self, concern):
        case = concern()
        with later(12):
            summary = purge_expired_task.delay().get()
        assert summary["anonymised"] == 1 and summary["dry_run"] is False
        assert PurgeRecord.objects.get(case=case).trigger == PurgeTrigger.NIGHTLY


class TestPage:
    URL = "/retention/"

    @pytest.mark.parametrize("who", ["dpo", "admin"])
    def test_the_dpo_and_administrators_see_it(self, client, people, concern, who):
        case = concern()
        place_legal_hold(case=case, actor=people["dpo"], reason="Claim ET/99")
        client.force_login(people[who])
        response = client.get(reverse("incidents:retention"))
        body = response.content.decode()
        assert response.status_code == 200
        assert case.reference in body and "Claim ET/99" in body
        assert NARRATIVE not in body and COLLEAGUE not in body

    @pytest.mark.parametrize("who", ["worker", "other_worker", "manager", "hr", "safeguarding"])
    def test_everyone_else_is_refused(self, client, people, concern, who):
        case = concern()
        hold = place_legal_hold(case=case, actor=people["dpo"], reason="Claim ET/99")
        client.force_login(people[who])
        assert client.get(reverse("incidents:retention")).status_code == 404
        response = client.post(
            reverse("incidents:retention"), {"reference": case.reference, "reason": "x"}
        )
        assert response.status_code == 404
        lift = reverse("incidents:legal-hold-lift", args=[hold.id])
        assert client.post(lift).status_code == 404
        hold.refresh_from_db()
        assert hold.lifted_at is None and LegalHold.objects.count() == 1

    def test_shows_what_the_next_run_would_anonymise_and_changes_nothing(
        self, client, people, concern
    ):
        due, held, fresh = concern(), concern(), concern(outcome="advice_given")
        place_legal_hold(case=held, actor=people["dpo"], reason="Claim ET/7")
        with later(12):
            client.force_login(people["dpo"])
            body = client.get(reverse("incidents:retention")).content.decode()
        section = body.split("Due at the next run")[1].split("Retention rules")[0]
        assert due.reference in section and held.reference in section
        assert "kept: legal hold" in section and fresh.reference not in section
        assert not PurgeRecord.objects.exists()
        assert raw_report(due)["narrative"] == NARRATIVE

    def test_anonymous_is_sent_to_sign_in(self, client, db):
        response = client.get(reverse("incidents:retention"))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

    def test_place_and_lift_through_the_page(self, client, people, concern):
        case = concern()
        client.force_login(people["dpo"])
        response = client.post(
            reverse("incidents:retention"),
            {"reference": case.reference.lower(), "reason": "Claim ET/5"},
        )
        assert response.status_code == 302
        hold = LegalHold.objects.get(case=case, lifted_at__isnull=True)
        assert hold.placed_by == people["dpo"] and hold.reason == "Claim ET/5"
        logged = AccessLogEntry.objects.filter(case=case, user=people["dpo"], basis="legal_hold")
        assert logged.count() == 1
        client.force_login(people["admin"])
        response = client.post(reverse("incidents:legal-hold-lift", args=[hold.id]))
        assert response.status_code == 302
        hold.refresh_from_db()
        assert hold.lifted_by == people["admin"]
        # Lifting twice is a message, not an error page.
        again = client.post(reverse("incidents:legal-hold-lift", args=[hold.id]), follow=True)
        assert again.status_code == 200 and "already been lifted" in again.content.decode()

    def test_bad_input_is_a_clear_400(self, client, people, concern):
        case = concern()
        client.force_login(people["dpo"])
        for data in (
            {"reference": "C-1999-9999", "reason": "Claim"},
            {"reference": case.reference, "reason": ""},
            {"reference": "x" * 500, "reason": "y" * 5000},
        ):
            response = client.post(reverse("incidents:retention"), data)
            assert response.status_code == 400, data
        assert not LegalHold.objects.exists()
        missing = client.post(reverse("incidents:legal-hold-lift", args=[999999]))
        assert missing.status_code == 404
