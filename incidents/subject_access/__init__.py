"""Subject access (UK GDPR article 15): everything Concernline holds about one member of staff
or one service-user reference, as one ZIP for the DPO, with every third party marked for
redaction review.

`export_subject_access()` is the one entry point (the DPO's page and the
`subject_access_export` command both call it). It refuses anyone but the DPO, finds the
subject, reads what is held, records a `SubjectAccessExport` (who, why, which cases) and one
access-log row per case read (through incidents.access, action "subject_access", path naming
the export), then writes the ZIP. The ZIP is the information-governance officer's review copy,
never what goes to the requester as it stands: see README.txt inside it.

A third party is marked where the system can recognise one: another member of staff (by
account), a name given in a structured field of a report (the colleague, who asked, who was
told), another service-user reference, and those names wherever they appear in free text. A
mark replaces the value in place with
`{"value": ..., "redaction_review": true, "reason": ..., "third_parties": [...]}` and is
listed again, with its JSON pointer, in redactions.json.
"""

import hashlib
import re
import tempfile
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from staff.models import User

from .. import access
from ..models import AccessAction, SubjectAccessExport, SubjectKind
from .archive import write_zip
from .cases import (
    Bundle,
    cases_json,
    load_cases,
    service_user_case_ids,
    staff_case_roles,
    third_party_names,
)
from .marks import Marker, mark, redactions_in
from .staff_data import access_json, account_json, guidance_json, paging_json

__all__ = [
    "BASIS",
    "REASON_MIN_LENGTH",
    "Export",
    "SubjectAccessInvalid",
    "SubjectAccessRefused",
    "collect_for_service_user",
    "collect_for_staff",
    "export_subject_access",
    "find_staff_member",
    "mark",
    "may_export",
    "normalise_ref",
    "redactions_in",
]

# The access-log basis of every row an export writes: the DPO's statutory duty to answer.
BASIS = "subject_access"
REASON_MIN_LENGTH = 10
# Exports are built in memory up to this size, then in a temporary file.
SPOOL_BYTES = 32 * 1024 * 1024


class SubjectAccessRefused(ConcernlineError):
    status_code = 403
    code = "forbidden"


class SubjectAccessInvalid(ConcernlineError):
    """Bad input: `extra` maps the form field (staff, service_user_ref, reason) to the message."""

    status_code = 400
    code = "invalid"


def may_export(user: User) -> bool:
    return access.may_export_subject_access(user)


def normalise_ref(ref: str) -> str:
    """Service-user references are stored stripped and upper-case (services.submit_report)."""
    return (ref or "").strip().upper()


def collect_for_staff(subject: User) -> Bundle:
    roles = staff_case_roles(subject)
    cases = load_cases(roles)
    m = Marker(subject_user=subject, subject_ref="", third_party_names=third_party_names(cases))
    bundle = Bundle(cases=cases)
    bundle.files["subject.json"] = account_json(subject, m)
    bundle.files["cases.json"] = cases_json(cases, roles, m, bundle)
    bundle.files["paging.json"] = paging_json(subject, m)
    bundle.files["guidance_and_training.json"] = guidance_json(subject, m)
    bundle.files["access_log.json"] = access_json(subject, m)
    return bundle


def collect_for_service_user(ref: str) -> Bundle:
    ids = service_user_case_ids(ref)
    cases = load_cases(ids)
    roles = {
        case.id: {
            "service_user_reference" if case.report.service_user_ref == ref else "named_in_text"
        }
        for case in cases
    }
    m = Marker(subject_user=None, subject_ref=ref, third_party_names=third_party_names(cases))
    bundle = Bundle(cases=cases)
    bundle.files["subject.json"] = {
        "service_user_reference": ref,
        "cases": [case.reference for case in cases],
    }
    bundle.files["cases.json"] = cases_json(cases, roles, m, bundle)
    return bundle


# -- The use case --------------------------------------------------------------------------


@dataclass
class Export:
    record: SubjectAccessExport
    file: object  # a file object positioned at 0, holding the ZIP
    filename: str


def find_staff_member(email: str) -> User:
    email = (email or "").strip()
    user = User.objects.filter(email__iexact=email).first() if email else None
    if user is None:
        raise SubjectAccessInvalid(
            _("No member of staff has that email address."),
            extra={"staff": _("No member of staff has that email address.")},
        )
    return user


def export_subject_access(
    *,
    actor: User,
    reason: str,
    staff: User | None = None,
    service_user_ref: str = "",
    via: str,
    request: HttpRequest | None = None,
) -> Export:
    """Everything held about `staff` or `service_user_ref`, as a ZIP, for the DPO `actor`.

    Refuses anyone but the DPO (SubjectAccessRefused); bad input raises SubjectAccessInvalid
    with the field it concerns. The export record and one access-log row per case commit
    together before the ZIP is written, so a read is never left unrecorded."""
    if not may_export(actor):
        raise SubjectAccessRefused(
            _("Only the data protection officer can export what Concernline holds about someone.")
        )
    reason = (reason or "").strip()
    ref = normalise_ref(service_user_ref)
    errors = {}
    if len(reason) < REASON_MIN_LENGTH:
        errors["reason"] = _("Say why, e.g. the request's date and your reference for it.")
    if (staff is None) == (not ref):
        errors["staff"] = _("Choose a member of staff or enter a service user reference.")
    elif staff is not None and staff.pk == actor.pk:
        errors["staff"] = _(
            "You cannot export your own data: another data protection officer must do it."
        )
    elif ref and (len(ref) > 32 or not re.fullmatch(r"[A-Z0-9][A-Z0-9 /._-]*", ref)):
        errors["service_user_ref"] = _("Enter a service user reference, e.g. SU-1042.")
    if errors:
        raise SubjectAccessInvalid(next(iter(errors.values())), extra=errors)

    # Labels and reasons inside the export are in English, whoever asks.
    with translation.override("en"):
        if staff is not None:
            bundle = collect_for_staff(staff)
            subject = f"{staff.full_name} <{staff.email}> (member of staff)"
        else:
            bundle = collect_for_service_user(ref)
            subject = f"service user reference {ref}"
    if staff is None and not bundle.cases:
        message = _("No report or note mentions that service user reference.")
        raise SubjectAccessInvalid(message, extra={"service_user_ref": message})

    with translation.override("en"):
        with transaction.atomic():
            record = SubjectAccessExport.objects.create(
                requested_by=actor,
                subject_kind=SubjectKind.STAFF if staff is not None else SubjectKind.SERVICE_USER,
                subject_user=staff,
                service_user_ref=ref,
                reason=reason,
                via=via,
                case_references=[case.reference for case in bundle.cases],
            )
            # The path names the export, so each row leads to its recorded reason.
            where = request.path if request is not None else "manage.py subject_access_export"
            access.log_many(
                user=actor,
                cases=bundle.cases,
                action=AccessAction.SUBJECT_ACCESS,
                basis=BASIS,
                request=request,
                path=f"{where}?export={record.pk}",
            )

        # Handed to the caller (the response or the command), which closes it.
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        counts = write_zip(out, export=record, bundle=bundle, subject=subject)
    out.seek(0)
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: out.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    out.seek(0)
    record.size, record.sha256 = size, digest.hexdigest()
    for name, value in counts.items():
        setattr(record, name, value)
    record.save(update_fields=["size", "sha256", *counts])
    stamp = timezone.localtime(record.at).strftime("%Y%m%d")
    return Export(record=record, file=out, filename=f"subject-access-{record.pk}-{stamp}.zip")
