"""The report serializers share one bound set of fields (incidents.api.SharedFields) instead
of DRF's deep copy for every request; each serializer's data and errors stay its own."""

import threading

import pytest

from incidents.api import ReportCreateSerializer, ReporterViewSerializer


def test_the_fields_are_made_once_per_class():
    assert ReportCreateSerializer().fields is ReportCreateSerializer(data={}).fields
    assert ReporterViewSerializer().fields is ReporterViewSerializer().fields
    assert list(ReportCreateSerializer().fields)[:2] == ["kind", "narrative"]


@pytest.mark.parametrize("given", [{"partial": True}, {"context": {"request": None}}])
def test_context_and_partial_validation_are_refused(given):
    """The shared fields would see the first serializer's (none, never partial): refused
    rather than silently ignored."""
    with pytest.raises(TypeError):
        ReportCreateSerializer(data={"narrative": "x"}, **given)


def test_the_schema_does_not_describe_the_sharing():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "description" not in schema["components"]["schemas"]["ReportCreate"]


def test_each_serializer_keeps_its_own_data_and_errors_across_threads():
    """A guard on the sharing: nothing of one request's data or errors is kept in the shared
    fields, whichever thread validates at the same moment."""
    good = {"kind": "concern_colleague", "narrative": "Left notes.", "colleague": "B."}
    bad = {"kind": "no_such_kind", "narrative": "", "grounds": ["nope"]}
    results = {}
    start = threading.Barrier(8)

    def run(n):
        start.wait()
        for _ in range(50):
            serializer = ReportCreateSerializer(data=good if n % 2 else bad)
            valid = serializer.is_valid()
            results.setdefault(n, set()).add(
                (valid, tuple(sorted(serializer.errors)), serializer.validated_data.get("kind"))
            )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, seen in results.items():
        if n % 2:
            assert seen == {(True, (), "concern_colleague")}
        else:
            assert seen == {(False, ("grounds", "kind", "narrative"), None)}
