"""Property-based tests of the API from its own OpenAPI schema (schemathesis): whatever a
phone sends, the answer is never a 5xx and always matches the schema. Bounded, so the suite
stays quick; the schema is served by the app itself over HTTP.

A fuzz that is turned away at the door proves nothing, so the run also counts what every
operation answered and fails unless the signed-in operations really did their work: reports
filed, reports read, tokens listed and revoked, the on-call rota read."""

import zlib
from collections import Counter, defaultdict

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks

from incidents.models import ReportKind
from incidents.services import submit_report
from staff.services import issue_api_token
from tests.conftest import make_person

EXAMPLES = 15

# Teach the generator what a UUID (the report's client token) looks like.
schemathesis.openapi.format("uuid", st.uuids().map(str))


@pytest.fixture
def api_schema(live_server, transactional_db):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


schema = schemathesis.pytest.from_fixture("api_schema")

# What the signed-in operations must have answered at least once in a run, or the fuzz was
# starved (refused at the door, say) and its green means nothing.
MUST_SUCCEED = {
    ("POST", "/api/v1/reports/"): {201},
    ("GET", "/api/v1/reports/{reference}/"): {200},
    ("POST", "/api/v1/reports/{reference}/information/"): {201},
    ("GET", "/api/v1/oncall/now/"): {200},
    ("GET", "/api/v1/auth/tokens/"): {200},
    ("DELETE", "/api/v1/auth/tokens/{token_id}/"): {200},
}
# The one operation that answers 401 by design: a wrong email or password.
SIGN_IN = ("POST", "/api/v1/auth/token/")


class Caller:
    """A care worker's phone. Every request carries a token of its own, so no example can
    revoke the credential that later ones sign in with; and half the examples aim their path
    parameters at the caller's own records, so the operations are fuzzed past "not found"."""

    def __init__(self):
        self.person = make_person("fuzz@example.org", phone="+447700900555")
        self.report = submit_report(
            reporter=self.person,
            kind=ReportKind.CONCERN_COLLEAGUE,
            narrative="Left notes on a bus.",
            details={"colleague": "B. Staff"},
        )

    def authorization(self) -> str:
        _token, key = issue_api_token(user=self.person, name="fuzz")
        return f"Token {key}"

    def aim(self, case) -> None:
        # Each choice is made from the generated value itself, so a replayed example is the
        # same request.
        for name, value in case.path_parameters.items():
            if not chance((value, case.body), 1 / 2):
                continue
            if name == "reference":
                case.path_parameters[name] = self.report.reference
            elif name == "token_id":
                spare, _key = issue_api_token(user=self.person, name="fuzz spare")
                case.path_parameters[name] = spare.id
        # Random bodies seldom make a whole report (each kind has questions of its own), so a
        # share of them are completed into one around the generated text.
        whole = WHOLE_BODIES.get((case.method.upper(), case.operation.path))
        if whole and case.media_type == "application/json":
            text_field, body, share = whole
            if chance(case.body, share):
                generated = case.body.get(text_field) if isinstance(case.body, dict) else None
                if isinstance(generated, str):
                    body = {**body, text_field: generated}
                case.body = body


def chance(value, share: float) -> bool:
    """True for about `share` of all values; always the same for one value."""
    return zlib.crc32(repr(value).encode()) % 1000 < share * 1000


# Whole bodies for the operations that create, the generated field kept in them, and the share
# of examples completed: one report in ten (of hundreds a run), and two in three of the additions
# aimed at the caller's report.
WHOLE_BODIES = {
    ("POST", "/api/v1/reports/"): (
        "narrative",
        {"kind": ReportKind.WORRYING_INFORMATION, "narrative": "Left notes on a bus."},
        1 / 10,
    ),
    ("POST", "/api/v1/reports/{reference}/information/"): (
        "text",
        {"text": "The notes were found again."},
        2 / 3,
    ),
}


@pytest.fixture
def caller(transactional_db, rota):
    return Caller()


@pytest.fixture
def answers():
    """The status codes each operation answered, checked once every operation has run (so a
    starved run shows as an error in the test's teardown)."""
    seen: dict[tuple[str, str], Counter] = defaultdict(Counter)
    yield seen
    starved = {
        f"{method} {path}": dict(seen[(method, path)])
        for (method, path), wanted in MUST_SUCCEED.items()
        if not wanted & set(seen[(method, path)])
    }
    assert not starved, f"never answered with success: {starved}"
    refused = {
        f"{method} {path}": codes[401]
        for (method, path), codes in seen.items()
        if (method, path) != SIGN_IN and codes[401]
    }
    assert not refused, f"signed-in requests refused with 401: {refused}"


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_fails_and_keeps_to_its_schema(case, caller, answers, settings_for_fuzz):
    # What the API promises: never a 5xx, and every answer (success or error) is one the schema
    # documents, in the documented shape and content type. DRF's lenient parsing (a number taken
    # for a text field) is not held against it.
    caller.aim(case)
    response = case.call_and_validate(
        headers={"Authorization": caller.authorization()},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
    answers[(case.method.upper(), case.operation.path)][response.status_code] += 1


@pytest.fixture
def settings_for_fuzz(settings):
    """Generous rate limits: the fuzzer is one client sending many requests quickly. New rules
    in place of the old, so the limits go back as they were after the test."""
    settings.RATE_LIMITS = {
        name: {**rule, "per_person": 10_000, "per_address": 10_000}
        for name, rule in settings.RATE_LIMITS.items()
    }
    return settings
