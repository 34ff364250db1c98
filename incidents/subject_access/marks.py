"""Marks for redaction review: what in an export is the subject's and what is someone else's."""

import re

from staff.models import User


def mark(value, reason: str, third_parties=None) -> dict:
    marked = {"value": value, "redaction_review": True, "reason": reason}
    if third_parties:
        marked["third_parties"] = sorted(set(third_parties))
    return marked


def _name_pattern(name: str) -> str:
    words = name.split()
    return r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"


def compile_names(names) -> re.Pattern | None:
    names = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    if not names:
        return None
    return re.compile("|".join(_name_pattern(n) for n in names), re.IGNORECASE)


class Marker:
    """Decides what is the subject's and what is someone else's, and marks the latter."""

    def __init__(self, *, subject_user: User | None, subject_ref: str, third_party_names):
        self.subject_user = subject_user
        self.subject_ref = subject_ref
        own = []
        if subject_user is not None:
            own = [n for n in (subject_user.full_name, subject_user.email) if n]
        if subject_ref:
            own.append(subject_ref)
        self._own = compile_names(own)
        # Matched case-insensitively; reported in the spelling the text uses.
        self._others = compile_names(
            n for n in third_party_names if not self.is_subject_text(n) and len(n.strip()) > 1
        )

    def is_subject_text(self, text: str) -> bool:
        return bool(text) and self._own is not None and bool(self._own.search(text))

    def names_only_subject(self, text: str) -> bool:
        """`text` is the subject's own name (or email, or reference) and nothing more: with
        those taken out, no word is left that could name someone else."""
        if not self.is_subject_text(text):
            return False
        return re.search(r"\w", self._own.sub(" ", text)) is None

    def third_parties_in(self, text: str) -> list[str]:
        """Names of others in `text`, leaving out any that are part of the subject's own
        name (another "Sam" inside "Sam Jones" is not a third party)."""
        if not text or self._others is None:
            return []
        own = [m.span() for m in self._own.finditer(text)] if self._own else []
        return sorted(
            {
                m.group(0)
                for m in self._others.finditer(text)
                if not any(start <= m.start() and m.end() <= end for start, end in own)
            }
        )

    def person(self, user: User | None, what: str):
        """A member of staff: the subject plainly, anyone else marked."""
        if user is None:
            return None
        name = user.full_name or user.email
        if self.subject_user is not None and user.pk == self.subject_user.pk:
            return name
        return mark(name, f"another member of staff ({what})")

    def text(self, text: str, *, written_by: str = "", not_about_subject: bool = False):
        """Free text: marked when it names a third party the system knows, or, in a staff
        export, when it is content about others the subject only handled."""
        if not text:
            return text
        found = self.third_parties_in(text)
        if not_about_subject:
            return mark(
                text,
                "content about others: the subject handled this case, it is not about them",
                found,
            )
        if found:
            reason = "free text naming third parties"
            if written_by:
                reason = f"{reason} ({written_by})"
            return mark(text, reason, found)
        return text

    def name_field(self, value: str, what: str):
        """A structured field that names a person: marked unless it names the subject alone
        ("Cara Jones and her sister Ann" names someone else too)."""
        if not value or self.names_only_subject(value):
            return value
        return mark(value, f"third party named in the report ({what})")

    def service_user_ref(self, ref: str):
        if not ref or ref == self.subject_ref:
            return ref
        return mark(ref, "service user reference (a third party)")

    def data(self, value):
        """Timeline data and the like: any string naming a third party is marked."""
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            found = self.third_parties_in(value)
            if found:
                return mark(value, "names a third party", found)
        return value


def redactions_in(files: dict[str, object]) -> list[dict]:
    """Every mark, as (file, JSON pointer (RFC 6901), reason, value): the reviewer's list."""
    found = []

    def walk(value, file, pointer):
        if isinstance(value, dict):
            if value.get("redaction_review") is True and "value" in value:
                entry = {"file": file, "path": pointer, "reason": value["reason"]}
                if value.get("third_parties"):
                    entry["third_parties"] = value["third_parties"]
                entry["value"] = value["value"]
                found.append(entry)
                return
            for key, inner in value.items():
                token = str(key).replace("~", "~0").replace("/", "~1")
                walk(inner, file, f"{pointer}/{token}")
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, file, f"{pointer}/{index}")

    for name, data in files.items():
        walk(data, name, "")
    return found
