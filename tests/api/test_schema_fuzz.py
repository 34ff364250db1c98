"""Property-based tests of the API from its own OpenAPI schema (schemathesis): whatever a
phone sends, the answer is never a 5xx and always matches the schema. Bounded, so the suite
stays quick; the schema is served by the app itself over HTTP."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks

from tests.conftest import make_person

EXAMPLES = 15

# Teach the generator what a UUID (the report's client token) looks like.
schemathesis.openapi.format("uuid", st.uuids().map(str))


@pytest.fixture
def api_schema(live_server, transactional_db):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def token(transactional_db, rota):
    from tests.conftest import api_client_for

    person = make_person("fuzz@example.org", phone="+447700900555")
    client = api_client_for(person)
    return client._credentials["HTTP_AUTHORIZATION"]


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_fails_and_keeps_to_its_schema(case, token, settings_for_fuzz):
    # What the API promises: never a 5xx, and every answer (success or error) is one the schema
    # documents, in the documented shape and content type. DRF's lenient parsing (a number taken
    # for a text field) is not held against it.
    case.call_and_validate(
        headers={"Authorization": token},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )


@pytest.fixture
def settings_for_fuzz(settings):
    """Generous rate limits: the fuzzer is one client sending many requests quickly."""
    for rule in settings.RATE_LIMITS.values():
        rule["per_person"] = rule["per_address"] = 10_000
    return settings
