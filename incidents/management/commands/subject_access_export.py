"""Write a subject access export (incidents.subject_access) to a file, for the DPO's operator.

    manage.py subject_access_export --dpo DPO_EMAIL (--staff EMAIL | --service-user REF)
        --reason "..." --output export.zip

The export is made in the DPO's name (--dpo): it is recorded and access-logged exactly as
one made on the page. The file is created new (never overwritten), readable by its owner only.
"""

import os
import shutil

from django.core.management.base import BaseCommand, CommandError

from config.errors import ConcernlineError
from incidents import subject_access
from staff.models import User


class Command(BaseCommand):
    help = "Export everything held about a member of staff or a service user reference (DPO)."

    def add_arguments(self, parser):
        subject = parser.add_mutually_exclusive_group(required=True)
        subject.add_argument("--staff", metavar="EMAIL", help="the member of staff's email")
        subject.add_argument("--service-user", metavar="REF", help="the service user reference")
        parser.add_argument("--reason", required=True, help="why: the request's date and ref")
        parser.add_argument("--output", required=True, help="the ZIP file to create")
        parser.add_argument(
            "--dpo", required=True, metavar="EMAIL", help="the DPO the export is made for"
        )

    def handle(self, *args, staff, service_user, reason, output, dpo, **options):
        actor = User.objects.filter(email__iexact=dpo.strip()).first()
        if actor is None or not subject_access.may_export(actor):
            raise CommandError(f"{dpo} is not an active data protection officer's account.")
        if os.path.exists(output):
            raise CommandError(f"{output} already exists; give a new file name.")
        try:
            person = subject_access.find_staff_member(staff) if staff else None
            export = subject_access.export_subject_access(
                actor=actor,
                staff=person,
                service_user_ref=service_user or "",
                reason=reason,
                via="command",
            )
        except ConcernlineError as exc:
            details = "; ".join(str(v) for v in (exc.extra or {}).values())
            raise CommandError(details or exc.message) from None
        try:
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CommandError(f"Cannot create {output}: {exc.strerror}.") from None
        with os.fdopen(descriptor, "wb") as out:
            shutil.copyfileobj(export.file, out)
        export.file.close()
        record = export.record
        self.stdout.write(
            f"Wrote {output}: export {record.pk}, {len(record.case_references)} cases, "
            f"{record.files} files, {record.redaction_marks} marks for redaction review "
            f"(sha256 {record.sha256})."
        )
