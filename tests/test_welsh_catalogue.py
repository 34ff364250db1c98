"""The Welsh catalogue is complete: every string translated, none fuzzy, the same
placeholders on both sides, and the compiled .mo in step with the .po."""

import json
import re
from pathlib import Path

import pytest
from django.utils import translation

PO = Path(__file__).resolve().parents[1] / "locale" / "cy" / "LC_MESSAGES" / "django.po"
# %(name)s / %(n)d, {{ var }}, {name}, and HTML tags: what must survive translation exactly.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\{.*?\}\}|\{\w*\}|</?[a-zA-Z][^>]*>")


def entries() -> list[dict]:
    """The .po's entries as dicts: msgid, msgid_plural, msgstr / msgstr[n], flags."""
    found = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        entry, key = {"flags": set()}, None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            if line.startswith("#~"):
                entry["obsolete"] = True
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                key = match.group(1)
                entry[key] = json.loads(match.group(2))
            elif line.startswith('"') and key:
                entry[key] += json.loads(line)
        if entry.get("msgid"):
            found.append(entry)
    return found


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def translations(entry: dict) -> dict[str, str]:
    return {key: value for key, value in entry.items() if key.startswith("msgstr")}


def test_the_catalogue_is_parsed():
    parsed = entries()
    assert len(parsed) > 500
    danger = "If someone is in immediate danger, phone 999 or 112 now."
    assert any(e["msgid"] == danger for e in parsed)


def test_every_string_is_translated_and_none_is_fuzzy_or_obsolete():
    problems = []
    for entry in entries():
        if "fuzzy" in entry["flags"] or entry.get("obsolete"):
            problems.append(("fuzzy or obsolete", entry["msgid"]))
        if not all(value.strip() for value in translations(entry).values()):
            problems.append(("empty", entry["msgid"]))
        if "msgid_plural" in entry and len(translations(entry)) != 6:
            problems.append(("needs the six Welsh plural forms", entry["msgid"]))
    assert problems == []


def test_placeholders_match_between_english_and_welsh():
    problems = []
    for entry in entries():
        expected = placeholders(entry["msgid"])
        for key, value in translations(entry).items():
            if placeholders(value) != expected:
                problems.append((entry["msgid"], key, value))
        if "msgid_plural" in entry and placeholders(entry["msgid_plural"]) != expected:
            problems.append((entry["msgid"], "msgid_plural", entry["msgid_plural"]))
    assert problems == []


def test_a_yesno_filter_argument_keeps_its_three_parts():
    (entry,) = [e for e in entries() if e["msgid"] == "yes,no,—"]
    assert entry["msgstr"].count(",") == 2


def test_the_compiled_catalogue_matches_the_source():
    """Run compilemessages after editing the .po: Django reads only the .mo."""
    stale = []
    with translation.override("cy"):
        for entry in entries():
            if "msgid_plural" in entry:
                for n, key in ((1, "msgstr[1]"), (7, "msgstr[5]")):
                    if translation.ngettext(entry["msgid"], entry["msgid_plural"], n) != entry[key]:
                        stale.append(entry["msgid"])
            elif translation.gettext(entry["msgid"]) != entry["msgstr"]:
                stale.append(entry["msgid"])
    assert stale == []


@pytest.mark.parametrize(
    ("english", "welsh"),
    [
        (
            "If someone is in immediate danger, phone 999 or 112 now.",
            "Os oes rhywun mewn perygl uniongyrchol, ffoniwch 999 neu 112 nawr.",
        ),
        ("Call 999", "Ffoniwch 999"),
        (
            "This cannot wait: page the on-call manager now",
            "Ni all hyn aros: galwch y rheolwr ar alwad nawr",
        ),
    ],
)
def test_the_safety_lines_say_what_they_must(english, welsh):
    with translation.override("cy"):
        assert translation.gettext(english) == welsh
