"""Cases built the way production builds them: through the services."""

import pytest

from incidents import services
from incidents.models import ReportKind

NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her."


@pytest.fixture(autouse=True)
def _no_idle_sign_out(settings):
    """These tests move the clock by hours or days to fire case clocks; the idle sign-out on
    case pages and the session's own age (tested in tests/staff/test_sign_in.py) would otherwise
    end their sessions."""
    settings.SESSION_IDLE_SECONDS = 30 * 24 * 3600
    settings.SESSION_COOKIE_AGE = 30 * 24 * 3600


@pytest.fixture
def make_case(people, rota, django_capture_on_commit_callbacks):
    """make_case(shape, to=stage): a case reported by `worker`, taken by the paged `manager`
    as far as `to` ("reported", "under_review", "outcome", "referred")."""

    shapes = {
        "crime": {"kind": ReportKind.URGENT_DISCLOSURE, "grounds": ["crime"]},
        "safeguarding": {"kind": ReportKind.URGENT_DISCLOSURE, "grounds": ["abuse_or_harm"]},
        "breach": {
            "kind": ReportKind.INAPPROPRIATE_BREACH,
            "urgent": True,
            "details": {
                "how_known": "self",
                "intent": "accidental",
                "information": "A care plan",
                "personal_data": "yes",
            },
        },
    }

    def make(shape="crime", *, to="reported", outcome="advice_given"):
        with django_capture_on_commit_callbacks(execute=True):
            case = services.submit_report(
                reporter=people["worker"],
                narrative=NARRATIVE,
                service_user_ref="SU-1",
                **shapes[shape],
            )
        manager = people["manager"]
        if to in ("under_review", "outcome", "referred"):
            services.start_review(case=case, actor=manager)
        if to == "outcome":
            services.record_outcome(case=case, actor=manager, outcome=outcome)
        if to == "referred":
            services.record_outcome(case=case, actor=manager, outcome="disciplinary")
        case.refresh_from_db()
        return case

    return make


@pytest.fixture(autouse=True)
def _attachments_in_tmp(settings, tmp_path):
    settings.ATTACHMENTS_DIR = tmp_path / "attachments"
