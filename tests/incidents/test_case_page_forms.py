"""The case page's forms on a weak signal: a note sent twice is one note."""

import re
import threading
import uuid

import pytest
from django.db import connection
from django.urls import reverse

from incidents import services
from incidents.models import CaseNote, TimelineKind

NOTE = "Rang the reporter back; she is safe tonight."


def page_of(client, case):
    return client.get(reverse("incidents:case-detail", args=[case.reference]))


def note_token(body: str) -> str:
    """The client_token the page's note form carries."""
    form = re.search(r'action="/cases/[^"]+/notes/">(.*?)</form>', body, re.S).group(1)
    return re.search(r'name="client_token" value="([^"]+)"', form).group(1)


class TestANoteSentTwice:
    def test_a_double_tap_adds_one_note_and_says_so_calmly(self, client, make_case, people):
        case = make_case()
        client.force_login(people["manager"])
        token = note_token(page_of(client, case).content.decode())
        url = reverse("incidents:case-note", args=[case.reference])

        first = client.post(url, {"text": NOTE, "client_token": token})
        second = client.post(url, {"text": NOTE, "client_token": token})

        assert first.status_code == second.status_code == 302
        assert second["Location"] == reverse("incidents:case-detail", args=[case.reference])
        assert CaseNote.objects.filter(case=case).count() == 1
        assert case.timeline.filter(kind=TimelineKind.NOTE_ADDED).count() == 1
        page = client.get(second["Location"]).content.decode()
        assert page.count(NOTE) == 1
        assert "Your note was added already. It is shown once." in page
        assert 'class="error"' not in page

    def test_each_page_carries_a_fresh_token_so_a_second_note_is_kept(
        self, client, make_case, people
    ):
        """The same words written again on a page loaded again are a second note, on purpose."""
        case = make_case()
        client.force_login(people["manager"])
        url = reverse("incidents:case-note", args=[case.reference])
        first = note_token(page_of(client, case).content.decode())
        client.post(url, {"text": NOTE, "client_token": first})
        second = note_token(page_of(client, case).content.decode())
        assert uuid.UUID(first) != uuid.UUID(second)
        client.post(url, {"text": NOTE, "client_token": second})
        assert CaseNote.objects.filter(case=case).count() == 2

    def test_a_note_without_a_token_is_still_taken(self, client, make_case, people):
        """A page served before the token existed still adds its note."""
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(
            reverse("incidents:case-note", args=[case.reference]), {"text": NOTE}
        )
        assert response.status_code == 302
        assert CaseNote.objects.get(case=case).client_token is None


class TestAddNoteWithAToken:
    def test_the_same_token_again_is_already_done(self, make_case, people):
        case = make_case()
        token = uuid.uuid4()
        services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        with pytest.raises(services.AlreadyDone):
            services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        assert CaseNote.objects.filter(case=case).count() == 1

    def test_the_token_is_checked_only_after_the_access_check(self, make_case, people):
        """Someone who may not write on the case learns nothing from a token."""
        case = make_case()
        token = uuid.uuid4()
        services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
        with pytest.raises(services.NotAllowed):
            services.add_note(case=case, actor=people["hr"], text=NOTE, client_token=token)


@pytest.mark.django_db(transaction=True)
def test_two_taps_at_the_same_moment_add_one_note(make_case, people):
    """Each tap in its own connection, at once: the case's lock puts one after the other, so
    the second sees the first's note (no IntegrityError from the constraint behind it)."""
    case = make_case()
    token = uuid.uuid4()
    start = threading.Barrier(2)
    outcomes = []

    def tap():
        try:
            start.wait()
            services.add_note(case=case, actor=people["manager"], text=NOTE, client_token=token)
            outcomes.append("added")
        except services.AlreadyDone:
            outcomes.append("already")
        except Exception as exc:  # surfaced below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == ["added", "already"]
    assert CaseNote.objects.filter(case=case).count() == 1
