"""Writing an export as a ZIP: the JSON files, redactions.json, the attachments decrypted,
manifest.json and README.txt."""

import hashlib
import json
import zipfile

from cryptography.fernet import InvalidToken
from django.core.serializers.json import DjangoJSONEncoder

from ..models import SubjectAccessExport
from ..services import read_attachment
from .cases import Bundle
from .marks import redactions_in
from .values import iso


def _json_bytes(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=2, cls=DjangoJSONEncoder)
    return (text + "\n").encode("utf-8")


README = """Concernline subject access export {export_id}
{rule}

Subject:        {subject}
Made:           {made_at} (UTC) by {made_by}, {via}
Reason given:   {reason}
Cases included: {case_count}{case_list}
Marks for redaction review: {mark_count} (see redactions.json)

THIS IS THE REVIEW COPY. Do not send it to the requester as it stands: first work
through every entry in redactions.json and decide, for each, whether to disclose,
redact or withhold it (UK GDPR art. 15(4); DPA 2018 sch. 2 para. 16, information
about other individuals).

Files
{file_list}

How the marks work
Where a value may identify someone other than the subject, it is replaced in place by

    {{"value": <the original>, "redaction_review": true, "reason": "<why>",
     "third_parties": [<the names found, for free text>]}}

redactions.json lists every mark again as {{"file", "path", "reason", "value"}}, where
"path" is a JSON pointer (RFC 6901) into that file, e.g. /0/report/narrative is the
narrative of the first case in cases.json. Values not marked are the subject's own
data or carry no other person's identity.

Marked automatically: other members of staff (every account's name), names given in a
report's structured fields (the colleague named, who asked for information, who received
it), other service users' references, those names wherever they appear in free text,
every attached file (its contents are not read), and, in a staff export, the content of
cases the subject only handled (owner, reviewer, paged) rather than reported or was named
in. Not found automatically: people the system has no record of, nicknames or first
names alone, and descriptions that identify someone without naming them. Read every
free-text field and every file before disclosing.

Conventions: UTF-8 JSON; times in UTC as ISO 8601 (2026-11-30T14:05:00+00:00); dates as
YYYY-MM-DD; codes (kind, status, outcome) with an English label beside them. Attachments
are decrypted copies, byte for byte as uploaded; each one's sha256 is in cases.json.
Reading this export was recorded in each case's access log (action "subject_access",
path ending ?export={export_id}).
"""


def _readme(export: SubjectAccessExport, bundle: Bundle, subject: str, file_lines, marks) -> str:
    refs = [case.reference for case in bundle.cases]
    return README.format(
        export_id=export.pk,
        rule="=" * 44,
        subject=subject,
        made_at=iso(export.at),
        made_by=f"{export.requested_by.full_name} <{export.requested_by.email}>",
        via=_via_words(export.via),
        reason=export.reason.replace("\n", " "),
        case_count=len(refs),
        case_list=(": " + ", ".join(refs)) if refs else "",
        mark_count=marks,
        file_list="\n".join(file_lines),
    )


def _via_words(via: str) -> str:
    return "from the Concernline page" if via == "page" else "with manage.py subject_access_export"


FILE_NOTES = {
    "README.txt": "this file",
    "manifest.json": "the export: who, when, why, and every file's size and sha256",
    "redactions.json": "every value marked for redaction review, with where it is",
    "subject.json": "the subject: account, sign-ins, paging preferences (staff); the reference",
    "cases.json": "each case the subject is in and why: report, notes, timeline, access log",
    "paging.json": "rotas, pages and alerts, every SMS, call and email to them or their number",
    "guidance_and_training.json": "guidance signed, questions asked, training",
    "access_log.json": "the cases they looked at, and any break-glass",
}


def write_zip(out, *, export: SubjectAccessExport, bundle: Bundle, subject: str) -> dict:
    """Write the export to the file object `out`; returns counts for the export record."""
    manifest_files = []
    file_lines = []
    marks = redactions_in(bundle.files)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, data: bytes, note: str) -> None:
            archive.writestr(name, data)
            manifest_files.append(
                {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
            file_lines.append(f"  {name:<28} {note}")

        for name, data in bundle.files.items():
            put(name, _json_bytes(data), FILE_NOTES.get(name, ""))
        put("redactions.json", _json_bytes(marks), FILE_NOTES["redactions.json"])
        missing = []
        for path, attachment, reference in bundle.attachments:
            try:
                contents = read_attachment(attachment)
            except InvalidToken:
                contents = None  # no key listed opens it (rotate_keys names such files)
            if contents is None:
                missing.append(path)
                continue
            put(path, contents, f"an attachment of case {reference}")
        manifest = {
            "export_id": export.pk,
            "made_at": iso(export.at),
            "made_by": {
                "name": export.requested_by.full_name,
                "email": export.requested_by.email,
            },
            "via": export.via,
            "reason": export.reason,
            "subject": {
                "kind": export.subject_kind,
                "email": export.subject_user.email if export.subject_user else None,
                "service_user_reference": export.service_user_ref or None,
            },
            "cases": [case.reference for case in bundle.cases],
            "redaction_marks": len(marks),
            "attachments_missing": missing,
            "files": list(manifest_files),
        }
        file_lines.insert(0, f"  {'manifest.json':<28} {FILE_NOTES['manifest.json']}")
        file_lines.insert(0, f"  {'README.txt':<28} {FILE_NOTES['README.txt']}")
        archive.writestr("manifest.json", _json_bytes(manifest))
        readme = _readme(export, bundle, subject, file_lines, len(marks))
        archive.writestr("README.txt", readme.encode("utf-8"))
    return {"files": len(manifest_files) + 2, "redaction_marks": len(marks)}
