"""Case lists per role: one query each, always within need-to-know."""

from datetime import timedelta

import pytest
from freezegun import freeze_time

from incidents.selectors import CASE_LISTS, case_list_for


@pytest.mark.parametrize("which", CASE_LISTS)
def test_each_list_is_one_query(make_case, people, which, django_assert_num_queries):
    make_case(to="under_review")
    make_case("breach", to="referred")
    with django_assert_num_queries(1):
        list(case_list_for(people["manager"], which))


def test_lists_by_role(make_case, people):
    reviewing = make_case(to="under_review")
    referred = make_case("breach", to="referred")
    safeguarding = make_case("safeguarding")

    def refs(user, which):
        return {c.reference for c in case_list_for(people[user], which)}

    assert refs("manager", "mine") == {reviewing.reference, referred.reference}
    assert refs("manager", "review") == {reviewing.reference}
    assert refs("hr", "referred") == {referred.reference}
    assert refs("hr", "all") == {referred.reference}
    assert refs("admin", "all") == set()
    assert refs("safeguarding", "all") == {safeguarding.reference}
    clock = safeguarding.clocks.get(kind="safeguarding_referral")
    with freeze_time(clock.due_at + timedelta(minutes=1)):
        assert refs("safeguarding", "overdue") == {safeguarding.reference}
        assert refs("hr", "overdue") == set()
